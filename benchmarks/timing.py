"""Alternating timed runs and their medians, shared by the benchmarks."""
import os
import statistics
import time


def use_data_mirror():
    """Point A2_DATA_DIR at the course's data mirror when it is unset (as the solution runs do); return the mirror
    folder or None (then the data is downloaded)."""
    from coursetools.run_env import find_mirror

    mirror = find_mirror()
    if mirror is not None:
        os.environ.setdefault("A2_DATA_DIR", str(mirror))
    return mirror


def alternate(sides, rounds, warm_up=True, fewer=None):
    """Run every side of ``sides`` (name -> function of no argument) once per round, in turn, reversing the order
    every other round so that neither side always goes first, after one untimed run of each (``warm_up``: the first
    call of a kernel pays for its setup); ``fewer`` (name -> rounds) lets a slow side take part in the first rounds
    only. Return ``(wall, cpu)``: each name -> list of seconds
    per run, wall-clock and this process's CPU time (less sensitive to other jobs taking the cores)."""
    names = list(sides)
    wall, cpu = {name: [] for name in names}, {name: [] for name in names}
    for name in names if warm_up else ():
        sides[name]()
    for round_number in range(rounds):
        for name in names if round_number % 2 == 0 else reversed(names):
            if round_number >= (fewer or {}).get(name, rounds):
                continue
            started, started_cpu = time.perf_counter(), time.process_time()
            sides[name]()
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - started_cpu)
    return wall, cpu


def median(values):
    return statistics.median(values)


def print_sides(wall, cpu):
    """One line per side: every run's wall-clock seconds in the order they ran, their median and best, and the
    median CPU seconds."""
    width = max(len(name) for name in wall)
    for name, values in wall.items():
        runs = " ".join(f"{value:7.2f}" for value in values)
        print(f"{name:<{width}}  {runs}  s | median {median(values):.2f} s, best {min(values):.2f} s "
              f"(CPU median {median(cpu[name]):.2f} s)", flush=True)
