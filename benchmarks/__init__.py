"""Benchmarks that print both sides of a comparison (not timed tests).

    python -m benchmarks.loop    # Parts A/B: the project's training loop vs a plain PyTorch loop
    python -m benchmarks.partc   # Part C: cached fine-tuning vs one backbone pass vs the uncached loop

Each runs in a few minutes on 2 cores with its default arguments (``--help`` lists the sizes). The sides run
alternately in one process, so a machine shared with other jobs slows both alike; the figures are medians.
"""
