"""a2cnn.palette: deterministic k-means, the shipped palette, the course palette comparison."""
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from a2cnn import palette as pal
from a2cnn.palette import compute_palette, load_course_palette, load_palette, match_palettes

# Shipped palette vs the UofT course palette: observed mean matched distance 0.0169 (built from the horse
# mirror, best of 4 k-means runs). Single k-means runs on the same pixels land 0.018-0.05 away (local optima).
COURSE_MATCH_BOUND = 0.03

grid_pixels = st.integers(8, 60).flatmap(
    lambda m: hnp.arrays(np.int64, (m, 3), elements=st.integers(0, 255))).map(lambda a: a / 256.0)


def blobs(seed=0, per_blob=200):
    """Pixels around four well separated colours (on the x/256 grid)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.1, 0.1, 0.1], [0.8, 0.2, 0.2], [0.2, 0.7, 0.3], [0.9, 0.9, 0.9]])
    noise = rng.integers(-5, 6, size=(len(centres), per_blob, 3)) / 256.0
    return (np.round(centres * 256) / 256.0)[:, None] + noise, centres


def test_recovers_separated_clusters():
    points, centres = blobs()
    found = compute_palette(points.reshape(-1, 3), k=4, seed=0)
    assert found.shape == (4, 3) and found.dtype == np.float64
    assert match_palettes(found, centres) < 0.01
    luminance = found @ [0.299, 0.587, 0.114]
    assert (np.diff(luminance) >= 0).all()


def test_is_a_lloyd_fixed_point():
    """Every centre is the mean of the pixels nearest to it."""
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, size=(3000, 3)) / 256.0
    found = compute_palette(pixels, k=5, seed=1)
    nearest = ((pixels[:, None] - found[None]) ** 2).sum(-1).argmin(1)
    for j in range(5):
        np.testing.assert_allclose(found[j], pixels[nearest == j].mean(axis=0), atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(pixels=grid_pixels, k=st.integers(1, 4), seed=st.integers(0, 3), order=st.randoms(use_true_random=False))
def test_deterministic_and_order_free(pixels, k, seed, order):
    distinct = len(np.unique(pixels, axis=0))
    if distinct < k:
        with pytest.raises(ValueError, match="distinct colours"):
            compute_palette(pixels, k=k, seed=seed)
        return
    first = compute_palette(pixels, k=k, seed=seed)
    np.testing.assert_array_equal(compute_palette(pixels, k=k, seed=seed), first)
    shuffled = pixels[order.sample(range(len(pixels)), len(pixels))]
    np.testing.assert_array_equal(compute_palette(shuffled, k=k, seed=seed), first)
    np.testing.assert_array_equal(pal.sort_palette(first), first)


@settings(max_examples=20, deadline=None)
@given(pixels=hnp.arrays(np.float64, st.tuples(st.integers(6, 40), st.just(3)), elements=st.floats(0, 1)),
       order=st.randoms(use_true_random=False))
def test_order_free_off_the_grid(pixels, order):
    if len(np.unique(pixels, axis=0)) < 3:
        return
    shuffled = pixels[order.sample(range(len(pixels)), len(pixels))]
    np.testing.assert_array_equal(compute_palette(shuffled, k=3), compute_palette(pixels, k=3))


def _textbook_update(points, weights, labels, centres):
    """Weighted mean of each cluster, written independently of the module; an empty cluster moves to the point
    worst served by the old centres (highest weight x squared distance; the first such point on ties), each
    point taken at most once."""
    new = centres.copy()
    served = [weights[i] * float(((points[i] - centres[labels[i]]) ** 2).sum()) for i in range(len(points))]
    for j in range(len(centres)):
        members = [i for i in range(len(points)) if labels[i] == j]
        if members:
            mass = sum(weights[i] for i in members)
            new[j] = sum(weights[i] * points[i] for i in members) / mass
    for j in range(len(centres)):
        if not any(labels[i] == j for i in range(len(points))):
            worst = max(range(len(points)), key=lambda i: (served[i], -i))
            new[j] = points[worst]
            served[worst] = 0.0
    return new


def plain_lloyd(points, weights, k, seed):
    """Reference: the module's k-means++ start (the seeding is not what is compared), then textbook Lloyd
    iterations, written here, until no assignment changes."""
    centres = pal._kmeans_pp(points, weights, k, np.random.default_rng(seed))
    previous = None
    while True:
        d2 = ((points[:, None] - centres[None]) ** 2).sum(-1)
        labels = d2.argmin(axis=1)
        if previous is not None and np.array_equal(labels, previous):
            return centres, labels
        previous = labels
        centres = _textbook_update(points, weights, labels, centres)


@pytest.mark.parametrize("seed", range(6))
def test_accelerated_kmeans_equals_plain_lloyd(seed):
    rng = np.random.default_rng(seed)
    # few distinct colours (so that weights differ) or continuous ones
    raw = rng.integers(0, 10, size=(1500, 3)) / 10.0 if seed % 2 else rng.random((1500, 3)) ** 3
    points, weights = pal.unique_colours(raw)
    k = [1, 2, 5, 8, 12, 16][seed]
    centres, labels, distortion, _ = pal.kmeans(points, weights, k, seed=seed)
    ref_centres, ref_labels = plain_lloyd(points, weights, k, seed)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(centres, ref_centres, rtol=0, atol=1e-12)
    expected = np.sum(weights * np.linalg.norm(points - ref_centres[ref_labels], axis=1)) / weights.sum()
    assert distortion == pytest.approx(expected, rel=1e-12)


def test_an_empty_cluster_moves_to_the_worst_served_point():
    rng = np.random.default_rng(7)
    points, weights = pal.unique_colours(rng.integers(0, 6, size=(400, 3)) / 6.0)
    centres = points[:4].copy()
    labels = np.zeros(len(points), dtype=np.int64)  # clusters 1..3 empty
    labels[::2] = 1
    got = pal._update_centres(points, weights, labels, centres)
    np.testing.assert_allclose(got, _textbook_update(points, weights, labels, centres), rtol=0, atol=1e-12)
    assert not np.array_equal(got[2], got[3])  # each empty cluster takes its own point


def test_keeps_the_best_of_several_runs():
    pixels = np.random.default_rng(4).integers(0, 256, size=(2000, 3)) / 256.0
    palette, info = compute_palette(pixels, k=6, seed=0, n_init=5, return_info=True)
    assert len(info["runs"]) == 5 and info["distortion"] == min(info["runs"])
    assert len(set(info["runs"])) > 1  # the runs really differ, so choosing matters
    single = compute_palette(pixels, k=6, seed=0, n_init=1, return_info=True)[1]
    assert single["runs"] == info["runs"][:1]


def test_unique_colours_fast_path_matches_numpy():
    pixels = np.random.default_rng(2).integers(0, 256, size=(500, 3)) / 256.0
    pixels = np.concatenate([pixels, pixels[:100]])
    colours, counts = pal.unique_colours(pixels)
    ref_colours, ref_counts = np.unique(pixels, axis=0, return_counts=True)
    np.testing.assert_array_equal(colours, ref_colours)
    np.testing.assert_array_equal(counts, ref_counts)


def test_duplicates_count_as_weight():
    """Repeating a pixel pulls its cluster's centre towards it, as the full pixel list would."""
    pixels = np.array([[0.0, 0, 0], [0.25, 0, 0], [0.9, 0.9, 0.9]])
    once = compute_palette(pixels, k=2)
    thrice = compute_palette(np.concatenate([pixels, [[0.25, 0, 0]] * 2]), k=2)
    assert once[0, 0] == pytest.approx(0.125) and thrice[0, 0] == pytest.approx(0.1875)


def test_input_errors():
    with pytest.raises(ValueError, match=r"\(M, 3\)"):
        compute_palette(np.zeros((5, 4)), k=2)
    with pytest.raises(ValueError, match="distinct colours"):
        compute_palette(np.zeros((50, 3)), k=2)
    with pytest.raises(ValueError, match="NaN"):
        compute_palette(np.full((5, 3), np.nan), k=1)


def test_match_palettes():
    a = np.random.default_rng(0).random((6, 3))
    assert match_palettes(a, a[::-1]) == 0.0
    shifted = np.clip(a + [0.03, 0.0, 0.04], 0, 1)
    expected = np.linalg.norm(shifted - a, axis=1).mean()
    assert match_palettes(shifted[[2, 0, 1, 5, 4, 3]], a) == pytest.approx(expected)
    with pytest.raises(ValueError, match="same shape"):
        match_palettes(a, a[:5])


def test_shipped_palette():
    shipped = load_palette()
    assert shipped.shape == (24, 3) and shipped.dtype == np.float64
    assert shipped.min() >= 0 and shipped.max() < 1
    assert len(np.unique(shipped, axis=0)) == 24
    np.testing.assert_array_equal(pal.sort_palette(shipped), shipped)
    with open(pal.DEFAULT_PATH, "rb") as handle:  # a plain float64 .npy, no pickle inside
        assert np.lib.format.read_magic(handle) == (1, 0)
        shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
    assert shape == (24, 3) and dtype == np.float64 and not dtype.hasobject


def test_load_palette_refuses_pickles_and_bad_shapes(tmp_path):
    obj = np.empty(2, dtype=object)
    obj[0], obj[1] = np.zeros((24, 3)), 0.0
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, obj, allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):
        load_palette(pickled)
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((24, 4)))
    with pytest.raises(ValueError, match=r"\(K, 3\)"):
        load_palette(wrong)
    with pytest.raises(FileNotFoundError, match="python -m a2cnn.palette"):
        load_palette(tmp_path / "absent.npy")


def _write_fake_batches(folder, rng, horses=None):
    """Six batches of 8 images, labels 7, 3, 7, 3, ...; ``horses`` fixes the horse images per batch."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    horses = horses or {name: rng.integers(0, 8, size=(4, 3072), dtype=np.uint8) * 32 for name in names}
    for name in names:
        data = rng.integers(0, 256, size=(8, 3072), dtype=np.uint8)
        data[0::2] = horses[name] if name != "test_batch" else data[0::2]
        folder.joinpath(name).write_bytes(pickle.dumps({b"data": data, b"labels": [7, 3] * 4}, protocol=2))
    return folder, horses


def test_main_builds_palette_from_training_horses(tmp_path, capsys):
    folder, horses = _write_fake_batches(tmp_path / "cifar-10-batches-py", np.random.default_rng(0))
    out = tmp_path / "p.npy"
    assert pal.main(["--out", str(out), "--k", "5", "--seed", "2", "--batches-dir", str(folder)]) == 0
    written = load_palette(out)
    pixels, images, _ = pal.horse_pixels(folder)
    assert images == 20 and pixels.shape == (20 * 1024, 3)  # 4 horses in each of 5 training batches
    np.testing.assert_array_equal(pixels[:1024], horses["data_batch_1"][0].reshape(3, 1024).T / 256.0)
    np.testing.assert_array_equal(written, compute_palette(pixels, k=5, seed=2))
    assert "20 training horses" in capsys.readouterr().out
    # other classes and the test batch are not used: replacing them leaves the palette unchanged
    _write_fake_batches(folder, np.random.default_rng(1), horses)
    assert pal.main(["--out", str(out), "--k", "5", "--seed", "2", "--batches-dir", str(folder)]) == 0
    np.testing.assert_array_equal(load_palette(out), written)
    # while the seed does matter on data without clear clusters
    assert not np.array_equal(compute_palette(pixels, k=5, seed=3), written)


@pytest.mark.mirror
def test_course_palette_loads(mirror_dir):
    course = load_course_palette(mirror_dir / "palette" / "colour_kmeans24_cat7.npy")
    assert course.shape == (24, 3) and course.dtype == np.float64
    assert 0 <= course.min() and course.max() <= 1


@pytest.mark.mirror
def test_shipped_palette_is_close_to_course_palette(mirror_dir):
    course = load_course_palette(mirror_dir / "palette" / "colour_kmeans24_cat7.npy")
    distance = match_palettes(load_palette(), course)
    print(f"\nshipped palette vs course palette: mean matched distance {distance:.4f}")
    assert distance < COURSE_MATCH_BOUND
    # and it is much closer than a random palette would be
    random = np.random.default_rng(0).random((24, 3))
    assert distance < match_palettes(random, course) / 2


@pytest.mark.mirror
def test_shipped_palette_fits_mirror_horses_as_well_as_course_palette(mirror_dir):
    """On the pixels it was fitted to, the shipped palette's distortion is no worse than the course's."""
    pixels, _, _ = pal.horse_pixels(mirror_dir / "cifar-10-horse" / "cifar-10-batches-py")
    colours, counts = pal.unique_colours(pixels)
    columns = np.ascontiguousarray(colours.T)

    def distortion(p):
        return float(np.sum(counts * np.sqrt(pal._assign(columns, p)[1])) / counts.sum())

    ours = distortion(load_palette())
    course = distortion(load_course_palette(mirror_dir / "palette" / "colour_kmeans24_cat7.npy"))
    print(f"\nmean pixel-to-colour distance on mirror horses: shipped {ours:.5f}, course {course:.5f}")
    assert ours <= course


@pytest.mark.slow  # about 2 CPU-minutes (3 on a loaded 2-core machine): every pixel of 5000 horses, 4 k-means runs
@pytest.mark.mirror
def test_python_m_a2cnn_palette_on_the_mirror_rebuilds_the_shipped_file(mirror_dir, tmp_path, monkeypatch, capsys):
    """The documented recipe (A2_DATA_DIR = the mirror, default settings) gives the shipped file byte for byte."""
    monkeypatch.setenv("A2_DATA_DIR", str(mirror_dir))
    monkeypatch.setenv("A2_OFFLINE", "1")  # never download instead of using the mirror
    out = tmp_path / "palette_kmeans24.npy"
    assert pal.main(["--out", str(out)]) == 0
    assert "24-colour palette from 5000 training horses (horse mirror" in capsys.readouterr().out
    np.testing.assert_array_equal(np.load(out, allow_pickle=False), np.load(pal.DEFAULT_PATH, allow_pickle=False))
    assert out.read_bytes() == pal.DEFAULT_PATH.read_bytes()
