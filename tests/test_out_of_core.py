"""Out-of-core SVI: X memory-mapped from a .npy file, or a list of row chunks, read window by window."""

import warnings

import numpy as np
import pytest

import bayes_rglm as br
from bayes_rglm.inference.stream import WINDOW_STEPS, Batches, RowSource
from bayes_rglm.runtime import compilations

N = 6000


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, 3))
    y = rng.poisson(np.exp(0.4 * X[:, 0] - 0.3 * X[:, 1] + 0.2)).astype(float)
    folder = tmp_path_factory.mktemp("ooc")
    np.save(folder / "X.npy", X)
    np.save(folder / "y.npy", y)
    np.save(folder / "Xi.npy", X.astype(np.int64))
    bad = X.copy()
    bad[4321, 2] = np.nan
    np.save(folder / "Xnan.npy", bad)
    return folder, X, y


@pytest.fixture(scope="module")
def mle(files):
    _, X, y = files
    return br.RGLM("poisson").fit(X, y, method="mle")


def _svi(X, y, seed=0, **kw):
    options = {"batch_size": 128, "num_steps": 3000, "progress": False, "seed": seed, **kw}
    return br.RGLM("poisson").fit(X, y, method="svi", **options)


@pytest.mark.parametrize("form", ["memmap", "chunks"])
def test_out_of_core_svi_reaches_the_posterior(files, mle, form):
    folder, _, _ = files
    X = np.load(folder / "X.npy", mmap_mode="r")
    y = np.load(folder / "y.npy", mmap_mode="r")
    if form == "chunks":
        X = [X[:2500], np.asarray(X[2500:])]  # a slice of the map and an in-memory chunk
    z = np.mean([(_svi(X, y, seed).params["w0"] - mle.params["w0"]) / mle.bse["w0"] for seed in (0, 1)], axis=0)
    assert np.all(np.abs(z) < 0.6)


def test_a_refit_compiles_nothing(files):
    folder, _, _ = files
    X, y = np.load(folder / "X.npy", mmap_mode="r"), np.load(folder / "y.npy")
    _svi(X, y, num_steps=300)
    with compilations() as counter:
        fit = _svi(X, y, seed=4, num_steps=520, learning_rate=0.02)
    assert counter.count == 0
    assert fit.info["num_steps"] == 520


def test_windows_give_every_row_the_same_chance():
    source = RowSource.of([np.zeros((1000, 2)), np.zeros((300, 2))])
    windows = source.windows(batch=2)  # windows of 500 rows
    assert [(w[0], w[1], w[2]) for w in windows] == [(0, 0, 500), (0, 500, 1000), (1, 0, 300)]
    steps = np.array([w[3] for w in windows])
    rows = np.array([w[2] - w[1] for w in windows])
    np.testing.assert_allclose(steps / rows, WINDOW_STEPS / 500, rtol=0.01)


def test_a_window_is_read_whole_with_its_own_rows():
    X = np.arange(40.0).reshape(20, 2)
    source = RowSource.of([X[:12], X[12:]])
    rows = {"y": np.arange(20.0), "offset": np.zeros(20), "trials": np.ones(20), "weights": np.ones(20)}
    batches = Batches(source, rows, batch_rows=4, rng=np.random.default_rng(0))
    seen = []
    for _ in range(2):  # one epoch: both chunks' windows, in a random order
        (bX, by, *_), m, steps = batches.next()
        assert bX.shape == (WINDOW_STEPS * 4, 2) and m in (12, 8) and steps >= 1
        assert np.all(by[m:] == 0)  # rows past m are never drawn (X there is left uninitialised)
        np.testing.assert_array_equal(bX[:m, 0], 2 * by[:m])  # each row of X travels with its own y
        seen.extend(by[:m].tolist())
    assert sorted(seen) == list(range(20))


@pytest.mark.parametrize(
    "make, kw, error, match",
    [
        (lambda f: np.load(f / "Xi.npy", mmap_mode="r"), {}, ValueError, "dtype int64"),
        (lambda f: np.load(f / "Xnan.npy", mmap_mode="r"), {}, ValueError, "non-finite value .* row 4321, column 2"),
        (lambda f: [np.zeros((10, 3)), np.zeros((10, 2))], {}, ValueError, "chunk 1 has 2 columns"),
        # Rows are counted over the chunks: the second chunk's row 3 is row 13.
        (
            lambda f: [np.zeros((10, 3)), np.eye(10, 3, -3) * 1e200],
            {"y": np.ones(20)},
            ValueError,
            "1e\\+200 at row 13, column 0",
        ),
        (lambda f: [np.zeros(10)], {}, None, None),  # 1-D chunks are not out-of-core input: the usual checks
        (lambda f: np.load(f / "X.npy", mmap_mode="r"), {"method": "map"}, ValueError, "method='svi'"),
        (lambda f: np.load(f / "X.npy", mmap_mode="r"), {"devices": 1}, ValueError, "one device"),
        (lambda f: np.load(f / "X.npy", mmap_mode="r"), {"batch_size": None}, ValueError, "give batch_size"),
        (lambda f: np.load(f / "X.npy", mmap_mode="r"), {"weights": np.zeros(N)}, ValueError, "finite and positive"),
        (lambda f: np.load(f / "X.npy", mmap_mode="r"), {"y": np.ones(5)}, ValueError, "one value per row"),
    ],
)
def test_bad_out_of_core_input_is_named(files, make, kw, error, match):
    folder, _, y = files
    X = make(folder)
    options = {"method": "svi", "batch_size": 64, "num_steps": 10, "progress": False, **kw}
    y = options.pop("y", y)
    if options["method"] != "svi":
        options = {"method": options["method"]}
    if error is None:
        with pytest.raises((ValueError, TypeError), match="X"):
            br.RGLM("poisson").fit(X, y, **options)
        return
    with pytest.raises(error, match=match), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        br.RGLM("poisson").fit(X, y, **options)


def test_row_slices_of_a_memory_map_are_read_from_the_file(files):
    folder, X, _ = files
    mapped = np.load(folder / "X.npy", mmap_mode="r")
    source = RowSource.of([mapped[1000:3000], mapped[3000:]])
    np.testing.assert_array_equal(source.read(0, 5, 9), X[1005:1009])
    np.testing.assert_array_equal(source.read(1, 0, 3), X[3000:3003])
    float32 = np.load(_save(folder / "X32.npy", X.astype(np.float32)), mmap_mode="r")
    np.testing.assert_array_equal(RowSource.of(float32[10:]).read(0, 0, 2), X[10:12].astype(np.float32))


def _save(path, values):
    np.save(path, values)
    return path


def test_a_spec_fits_npy_files_out_of_core(files, tmp_path, monkeypatch):
    from bayes_rglm import cli

    folder, _, _ = files
    monkeypatch.chdir(folder)
    spec = tmp_path / "big.toml"
    spec.write_text(
        'description = "memory-mapped"\n[data]\ndataset = "npy:X.npy,y.npy"\ntest_size = 0.1\n'
        '[model]\nfamily = "poisson"\n[inference]\nmethod = "svi"\nbatch_size = 256\nnum_steps = 1500\n'
    )
    out = tmp_path / "out"
    assert cli.main(["fit", str(spec), "--out", str(out)]) == 0
    metrics = __import__("json").loads((out / "metrics.json").read_text())
    assert metrics["n_test"] == 600  # the last tenth of the 6,000 rows, held out
    assert metrics["test_lpd"] > -1.5  # the true rates score -1.42 on these rows, a constant rate -1.61
    assert (out / "posterior.nc").exists()


@pytest.mark.parametrize(
    "dataset, extra, match",
    [
        ("npy:X.npy", "", "two .npy files"),
        ("npy:missing.npy,y.npy", "", "does not exist"),
        ("npy:X.npy,y.npy", 'features = ["x0"]\n', "data.features is not available"),
    ],
)
def test_bad_npy_specs_are_named(files, tmp_path, monkeypatch, dataset, extra, match):
    from bayes_rglm.experiment import split_data

    folder, _, _ = files
    monkeypatch.chdir(folder)
    table = {"dataset": dataset}
    if extra:
        table["features"] = ["x0"]
    with pytest.raises(ValueError, match=match):
        split_data(table, classes=False)
