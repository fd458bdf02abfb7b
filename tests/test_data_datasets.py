"""kdeep.data loaders: real MNIST/Fashion-MNIST, every accepted layout, corrupt inputs, offline and downloads."""
import contextlib
import gzip
import http.server
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

import kdeep.data
from kdeep.data import datasets
from kdeep.errors import DataError

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test gets its own download cache and no real mirrors, so nothing touches ~/.kdeep or the net."""
    monkeypatch.setenv("KDEEP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KDEEP_DATA_MIRRORS", f"http://127.0.0.1:{_closed_port()}/")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _idx(array: np.ndarray) -> bytes:
    magic = 0x800 | array.ndim
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_idx_set(folder: Path, n_train=20, n_test=10, size=28, gz=True, seed=0) -> dict:
    """A tiny valid IDX dataset (random pixels and labels); returns the arrays written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images_stem, labels_stem = datasets.IDX_FILES[split]
        x = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        y = rng.integers(0, 10, n, dtype=np.uint8)
        for stem, array in ((images_stem, x), (labels_stem, y)):
            content = _idx(array)
            (folder / (stem + ".gz" if gz else stem)).write_bytes(gzip.compress(content) if gz else content)
        arrays[split] = (x, y)
    return arrays


# ----------------------------------------------------------------------------------------------- real data


def test_mnist_shapes_dtypes_and_known_class_counts(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 28, 28, 1) and x_test.shape == (10000, 28, 28, 1)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    assert np.bincount(y_train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == MNIST_TEST_COUNTS
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def test_fashion_mnist_shapes_and_balanced_classes(fashion_mnist):
    (x_train, y_train), (x_test, y_test) = fashion_mnist
    assert x_train.shape == (60000, 28, 28, 1) and x_test.shape == (10000, 28, 28, 1)
    assert x_train.dtype == np.uint8 and y_test.dtype == np.int64
    assert np.bincount(y_train).tolist() == [6000] * 10 and np.bincount(y_test).tolist() == [1000] * 10


def test_data_dir_comes_before_kdeep_data_dir(tmp_path, mnist):
    written = _write_idx_set(tmp_path / "mnist")
    (x_train, y_train), _ = kdeep.data.load("mnist", data_dir=tmp_path)  # data_dir/<name> works too
    assert np.array_equal(x_train[..., 0], written["train"][0]) and len(x_train) != len(mnist[0][0])


# --------------------------------------------------------------------------------------- accepted layouts


def test_raw_idx_and_keras_npz_layouts(tmp_path):
    written = _write_idx_set(tmp_path / "raw", gz=False)
    (x_train, y_train), (x_test, y_test) = kdeep.data.load("mnist", data_dir=tmp_path / "raw")
    assert np.array_equal(x_test[..., 0], written["test"][0]) and np.array_equal(y_test, written["test"][1])
    (tmp_path / "npz").mkdir()
    np.savez(tmp_path / "npz" / "mnist.npz", x_train=x_train[..., 0], y_train=y_train, x_test=x_test[..., 0],
             y_test=y_test)
    (nx_train, ny_train), (nx_test, _) = kdeep.data.load("mnist", data_dir=tmp_path / "npz")
    assert np.array_equal(nx_train, x_train) and np.array_equal(ny_train, y_train) and nx_test.shape == x_test.shape


def _cifar_records(n: int, rng) -> tuple[bytes, np.ndarray, np.ndarray]:
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    planes = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)  # the release stores R, G, B planes
    records = np.concatenate([labels[:, None], planes.reshape(n, -1)], axis=1)
    return records.tobytes(), planes.transpose(0, 2, 3, 1), labels


def test_cifar10_binary_batches_and_archive(tmp_path):
    import tarfile

    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar10" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    expected = {}
    for name in datasets.CIFAR_BATCHES["train"] + datasets.CIFAR_BATCHES["test"]:
        content, images, labels = _cifar_records(3, rng)
        (folder / name).write_bytes(content)
        expected[name] = (images, labels)
    (x_train, y_train), (x_test, y_test) = kdeep.data.load("cifar10", data_dir=tmp_path)
    assert x_train.shape == (15, 32, 32, 3) and x_test.shape == (3, 32, 32, 3) and y_train.dtype == np.int64
    test_images, test_labels = expected["test_batch.bin"]
    assert np.array_equal(x_test, test_images) and np.array_equal(y_test, test_labels)
    assert np.array_equal(x_train[3:6], expected["data_batch_2.bin"][0])

    archive_dir = tmp_path / "archive"
    archive_dir.mkdir()
    with tarfile.open(archive_dir / datasets.CIFAR_ARCHIVE, "w:gz") as archive:
        archive.add(folder, arcname="cifar-10-batches-bin")
    (ax_train, ay_train), _ = kdeep.data.load("cifar10", data_dir=archive_dir)
    assert np.array_equal(ax_train, x_train) and np.array_equal(ay_train, y_train)

    cache = tmp_path / "cache" / "cifar10"  # in the cache, the archive must be the published one
    cache.mkdir(parents=True)
    shutil.copy(archive_dir / datasets.CIFAR_ARCHIVE, cache)
    with pytest.raises(DataError, match=f"{datasets.CIFAR_ARCHIVE}: md5 .* is not the published"):
        kdeep.data.load("cifar10", download=False)

    (folder / "data_batch_3.bin").write_bytes(b"\x00" * 3000)
    with pytest.raises(DataError, match="data_batch_3.bin.*truncated"):
        kdeep.data.load("cifar10", data_dir=tmp_path)


def test_image_folder_resizes_and_labels_by_sorted_class(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(2)
    for cls, sizes in (("cat", [(20, 30), (40, 40)]), ("dog", [(16, 16)])):
        (tmp_path / cls).mkdir()
        for i, (h, w) in enumerate(sizes):
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    x, y, classes = kdeep.data.load_image_folder(tmp_path, (24, 24))
    assert x.shape == (3, 24, 24, 3) and x.dtype == np.uint8 and y.tolist() == [0, 0, 1] and classes == ["cat", "dog"]
    gray, _, _ = kdeep.data.load_image_folder(tmp_path, (8, 10), color_mode="grayscale")
    assert gray.shape == (3, 8, 10, 1)
    with pytest.raises(DataError, match=r"1\.png: wrong image size"):
        kdeep.data.load_image_folder(tmp_path)  # no size given: all must match the first (cat/0.png)
    (tmp_path / "dog" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png: not a readable image"):
        kdeep.data.load_image_folder(tmp_path, (24, 24))


# ---------------------------------------------------------------------------------------------- corrupt inputs


def _corrupt(folder: Path, stem: str, mutate) -> Path:
    path = folder / f"{stem}.gz"
    path.write_bytes(gzip.compress(mutate(gzip.decompress(path.read_bytes()))))
    return path


@pytest.mark.parametrize("stem, mutate, message", [
    ("train-images-idx3-ubyte", lambda b: b"\x00\x00\x08\x02" + b[4:], "wrong IDX magic number"),
    ("t10k-labels-idx1-ubyte", lambda b: b[:-3], "truncated"),
    ("train-labels-idx1-ubyte", lambda b: b[:7] + bytes([19]) + b[8:-1], "count mismatch"),
    ("t10k-labels-idx1-ubyte", lambda b: b[:-1] + bytes([10]), "label 10 out of range"),
])
def test_corrupt_idx_raises_data_error_naming_the_file(tmp_path, stem, mutate, message):
    _write_idx_set(tmp_path)
    path = _corrupt(tmp_path, stem, mutate)
    with pytest.raises(DataError, match=message) as error:
        kdeep.data.load("mnist", data_dir=tmp_path)
    assert str(path) in str(error.value)


def test_truncated_gzip_wrong_size_and_missing_file(tmp_path):
    _write_idx_set(tmp_path / "a")
    path = tmp_path / "a" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match=f"{path}: truncated or corrupt gzip"):
        kdeep.data.load("mnist", data_dir=tmp_path / "a")

    _write_idx_set(tmp_path / "b", size=32)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: wrong image size \(32, 32, 1\)"):
        kdeep.data.load("mnist", data_dir=tmp_path / "b")

    _write_idx_set(tmp_path / "c")
    (tmp_path / "c" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="missing file .*t10k-labels-idx1-ubyte"):
        kdeep.data.load("mnist", data_dir=tmp_path / "c")


def test_offline_with_nothing_cached_names_every_place_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("KDEEP_DATA_DIR", str(tmp_path / "shared"))
    (tmp_path / "mine").mkdir()  # an empty folder of the user's
    with pytest.raises(DataError) as error:
        kdeep.data.load("mnist", data_dir=tmp_path / "mine")
    message = str(error.value)
    for place in (tmp_path / "mine", tmp_path / "shared" / "mnist", tmp_path / "cache" / "mnist"):
        assert str(place) in message
    assert "KDEEP_DATA_DIR" in message and "127.0.0.1" in message
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []  # no half-written download (io's
    # temp files are named .<stem>.<random>.tmp<suffix>) nor anything else left behind


# ----------------------------------------------------------------------------------------------- downloads


@contextlib.contextmanager
def _serve(directory: Path):
    """An http.server on 127.0.0.1 serving a folder; yields its base URL."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(directory), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def mnist_dir():
    """Where the loader finds MNIST ($KDEEP_DATA_DIR/mnist or the download cache), before tests redirect the cache."""
    return datasets.locate("mnist")


@pytest.fixture
def mirror(mnist_dir):
    """A local mirror of the real MNIST files."""
    with _serve(mnist_dir) as url:
        yield url


@pytest.mark.slow
def test_download_verifies_caches_and_refetches_a_corrupt_cache(tmp_path, monkeypatch, mirror, mnist, capsys):
    monkeypatch.delenv("KDEEP_DATA_DIR", raising=False)
    monkeypatch.setenv("KDEEP_DATA_MIRRORS", f"{mirror}missing/,{mirror}")  # first mirror 404s, second works
    (x_train, y_train), (x_test, y_test) = kdeep.data.load("mnist")
    assert np.array_equal(y_train, mnist[0][1]) and np.array_equal(x_test, mnist[1][0])
    cache = tmp_path / "cache" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(datasets.DATASETS["mnist"].download_files)
    assert "kdeep: downloading" in capsys.readouterr().err

    cached = cache / "train-labels-idx1-ubyte.gz"
    cached.write_bytes(gzip.compress(gzip.decompress(cached.read_bytes())[:-1] + b"\x03"))  # valid IDX, wrong data
    (_, y_again), _ = kdeep.data.load("mnist")
    assert np.array_equal(y_again, mnist[0][1])
    assert "corrupt" in capsys.readouterr().err

    cached.write_bytes(b"garbage")
    monkeypatch.setenv("KDEEP_DATA_MIRRORS", f"http://127.0.0.1:{_closed_port()}/")
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz"):
        kdeep.data.load("mnist")


def test_download_rejects_a_mirror_serving_wrong_content(tmp_path, monkeypatch):
    bad = tmp_path / "bad"
    _write_idx_set(bad)  # valid IDX files, but not the published MNIST
    monkeypatch.delenv("KDEEP_DATA_DIR", raising=False)
    with _serve(bad) as url:
        monkeypatch.setenv("KDEEP_DATA_MIRRORS", url)
        with pytest.raises(DataError, match="not the published"):
            kdeep.data.load("mnist")
    assert [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []  # nothing wrong kept, no temp file


def test_a_download_cut_off_midway_leaves_no_file(tmp_path):
    """A server that promises 1,000 bytes and closes after 10: an error, and neither the file nor a temp file."""
    class CutOff(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CutOff)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    folder = tmp_path / "downloads"
    folder.mkdir()
    try:
        with pytest.raises(OSError, match="after 10 of 1000 bytes|IncompleteRead"):
            datasets.download_file(f"http://127.0.0.1:{server.server_address[1]}/x.gz", folder / "x.gz", progress=None)
    finally:
        server.shutdown()
        server.server_close()
    assert list(folder.iterdir()) == []


@pytest.mark.slow
def test_info_matches_the_data(mnist, mnist_dir):
    summary = kdeep.data.info("mnist", data_dir=mnist_dir)
    assert summary["path"] == str(mnist_dir)
    assert summary["train"]["class_counts"] == MNIST_TRAIN_COUNTS and summary["test"]["images"] == [10000, 28, 28, 1]
    pixels = mnist[0][0].astype(np.float32) / 255.0
    assert summary["pixel_mean"][0] == pytest.approx(pixels.mean(), abs=1e-5)
    assert summary["pixel_std"][0] == pytest.approx(pixels.std(), abs=1e-5)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(DataError, match="cifar10, fashion_mnist, mnist"):
        kdeep.data.load("imagenet")
