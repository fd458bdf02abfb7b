"""Real datasets as numpy arrays: find, download, verify and cache MNIST, Fashion-MNIST, CIFAR-10 and image folders."""
from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import sys
import tarfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from kdeep.data.folders import folder_classes, is_image_folder, load_folder
from kdeep.errors import DataError
from kdeep.io import atomic_path

Arrays = tuple[np.ndarray, np.ndarray]
Splits = tuple[Arrays, Arrays]

IDX_FILES = {  # split -> (images file, labels file), the standard IDX names (gzipped or raw)
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_DOWNLOADS = tuple(f"{stem}.gz" for pair in IDX_FILES.values() for stem in pair)  # what a mirror serves
CIFAR_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR_BATCHES = {"train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)), "test": ("test_batch.bin",)}
IMAGE_MAGIC, LABEL_MAGIC = 0x00000803, 0x00000801  # IDX: unsigned bytes, 3 resp. 1 dimensions
DOWNLOAD_TIMEOUT_S = 30


@dataclass(frozen=True)
class DatasetSpec:
    """What a named dataset is and where its published files live.

    Attributes:
        name: the name `load` takes.
        layout: "idx" (four IDX files) or "cifar-binary" (the CIFAR-10 binary release).
        image_shape: (height, width, channels) of one image.
        counts: (train, test) number of images in the published release.
        class_names: one name per label.
        mirrors: base URLs tried in order; a file's URL is mirror + file name.
        sha256: downloaded file name -> sha256 of its *decompressed* content (gzip bytes differ between copies).
        md5: downloaded file name -> md5 of the file as published (for archives nobody re-compresses).
        source: one line on where the data comes from and its license.
    """

    name: str
    layout: str
    image_shape: tuple[int, int, int]
    counts: tuple[int, int]
    class_names: tuple[str, ...]
    mirrors: tuple[str, ...]
    sha256: dict[str, str]
    md5: dict[str, str]
    source: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def download_files(self) -> tuple[str, ...]:
        """The files fetched from a mirror (and kept in the cache)."""
        if self.layout == "idx":
            return IDX_DOWNLOADS
        return (CIFAR_ARCHIVE,)


def _idx(name: str, class_names: tuple[str, ...], mirrors: tuple[str, ...], sha256: tuple[str, ...],
         source: str) -> DatasetSpec:
    """The table entry of a 28x28x1 IDX dataset; `sha256` lists the four files' digests in IDX_DOWNLOADS order."""
    return DatasetSpec(name=name, layout="idx", image_shape=(28, 28, 1), counts=(60000, 10000),
                       class_names=class_names, mirrors=mirrors, sha256=dict(zip(IDX_DOWNLOADS, sha256, strict=True)),
                       md5={}, source=source)


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        _idx("mnist", tuple(str(digit) for digit in range(10)),
             mirrors=("https://storage.googleapis.com/cvdf-datasets/mnist/",
                      "https://ossci-datasets.s3.amazonaws.com/mnist/",
                      "http://yann.lecun.com/exdb/mnist/"),
             sha256=("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                     "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                     "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                     "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
             source="MNIST handwritten digits (Yann LeCun, Corinna Cortes, Christopher Burges), CC BY-SA 3.0"),
        _idx("fashion_mnist", ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
             mirrors=("https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
                      "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
             sha256=("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                     "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                     "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                     "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
             source="Fashion-MNIST (Zalando Research), MIT license"),
        DatasetSpec(
            name="cifar10",
            layout="cifar-binary",
            image_shape=(32, 32, 3),
            counts=(50000, 10000),
            class_names=("airplane", "automobile", "bird", "cat", "deer",
                         "dog", "frog", "horse", "ship", "truck"),
            mirrors=("https://www.cs.toronto.edu/~kriz/",),
            sha256={},
            md5={CIFAR_ARCHIVE: "c32a1d4ab5d03f1284b67883e8d87530"},  # as listed on the dataset's page
            source="CIFAR-10 binary release (Alex Krizhevsky, Vinod Nair, Geoffrey Hinton)",
        ),
    )
}


def list_datasets() -> list[str]:
    """Returns the names `load` accepts."""
    return sorted(DATASETS)


def get_spec(name: str) -> DatasetSpec:
    """Returns the table entry of a dataset, or raises DataError listing the known names."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}: choose one of {', '.join(list_datasets())}, or give a folder "
                        "with one subfolder of images per class")
    return DATASETS[name]


# --------------------------------------------------------------------------------------------- where to look


def cache_dir() -> Path:
    """The download cache root: $KDEEP_CACHE_DIR, else ~/.kdeep/datasets."""
    return Path(os.environ.get("KDEEP_CACHE_DIR") or Path.home() / ".kdeep" / "datasets").expanduser()


def mirrors_for(spec: DatasetSpec) -> tuple[str, ...]:
    """Mirror base URLs in order: $KDEEP_DATA_MIRRORS (comma-separated, replaces the table) or the table's."""
    override = os.environ.get("KDEEP_DATA_MIRRORS", "").strip()
    urls = tuple(url.strip() for url in override.split(",") if url.strip()) if override else spec.mirrors
    return tuple(url if url.endswith("/") else url + "/" for url in urls)


def search_dirs(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders `load` looks in, in order: data_dir (and data_dir/<name>), $KDEEP_DATA_DIR/<name>, the cache.

    Raises:
        DataError: `data_dir` is given and is not a folder (a mistyped path is named, not silently skipped).
    """
    dirs = []
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            raise DataError(f"data_dir {folder} is not a folder: pass a folder holding the dataset's files (or "
                            f"{name}/ with them), or leave --data-dir out to use KDEEP_DATA_DIR and the cache")
        dirs += [folder, folder / name]
    if os.environ.get("KDEEP_DATA_DIR"):
        dirs.append(Path(os.environ["KDEEP_DATA_DIR"]).expanduser() / name)
    dirs.append(cache_dir() / name)
    return dirs


def _first_existing(folder: Path, names: Sequence[str]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def _idx_file(folder: Path, stem: str) -> Path | None:
    return _first_existing(folder, (f"{stem}.gz", stem))


def _cifar_source(folder: Path) -> Path:
    """Where the CIFAR-10 batches are: the archive, the extracted cifar-10-batches-bin/, or the folder itself."""
    for candidate in (folder / CIFAR_ARCHIVE, folder / "cifar-10-batches-bin"):
        if candidate.exists():
            return candidate
    return folder


def _has_any(spec: DatasetSpec, folder: Path) -> bool:
    """True when the folder holds at least one file of this dataset (then it must hold all of them)."""
    if not folder.is_dir():
        return False
    if (folder / f"{spec.name}.npz").is_file():
        return True
    if spec.layout == "idx":
        return any(_idx_file(folder, stem) for pair in IDX_FILES.values() for stem in pair)
    source = _cifar_source(folder)
    return source != folder or any((folder / f).is_file() for files in CIFAR_BATCHES.values() for f in files)


# ------------------------------------------------------------------------------------------------ file readers


def _read_bytes(path: Path, sha256: str | None = None) -> bytes:
    """The file's content, gunzipped when it is gzip (detected by its magic, not its name).

    Args:
        path: the file.
        sha256: when given, the content's expected hash (a mismatch raises DataError naming the file).
    """
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}") from error
    try:
        content = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (EOFError, OSError, zlib.error) as error:
        raise DataError(f"{path}: truncated or corrupt gzip file ({error}); delete it and fetch it again") from error
    if sha256 and (actual := hashlib.sha256(content).hexdigest()) != sha256:
        raise DataError(f"{path}: content sha256 {actual[:12]}... is not the published {sha256[:12]}...")
    return content


def read_idx(path: Path, expected_magic: int, sha256: str | None = None) -> np.ndarray:
    """Reads one IDX file (gzipped or raw) of unsigned bytes.

    Args:
        path: the file.
        expected_magic: IMAGE_MAGIC (3 dims) or LABEL_MAGIC (1 dim).
        sha256: the expected hash of the (decompressed) content, if known.

    Returns:
        A uint8 array shaped by the header's dimensions.
    """
    content = _read_bytes(path, sha256)
    if len(content) < 4:
        raise DataError(f"{path}: truncated IDX file ({len(content)} bytes, no header)")
    magic = int.from_bytes(content[:4], "big")
    if magic != expected_magic:
        kind = "images" if expected_magic == IMAGE_MAGIC else "labels"
        raise DataError(f"{path}: wrong IDX magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
                        f"({kind}); the file is corrupt or not an IDX {kind} file")
    ndim = expected_magic & 0xFF
    header = 4 + 4 * ndim
    if len(content) < header:
        raise DataError(f"{path}: truncated IDX header ({len(content)} of {header} bytes)")
    dims = tuple(int.from_bytes(content[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(dims))
    if len(content) - header != size:
        state = "truncated" if len(content) - header < size else "has trailing bytes"
        raise DataError(f"{path}: {state}: header {dims} needs {size} bytes of data, the file has "
                        f"{len(content) - header}; delete it and fetch it again")
    return np.frombuffer(content, np.uint8, size, header).reshape(dims).copy()


def _check_pair(spec: DatasetSpec, images: np.ndarray, labels: np.ndarray, images_file: str | Path,
                labels_file: str | Path) -> Arrays:
    """Validates one split (image size, counts, label range); returns uint8 NHWC images and int64 labels."""
    if images.ndim == 3 and spec.image_shape[2] == 1:
        images = images[..., None]
    if images.shape[1:] != spec.image_shape:
        raise DataError(f"{images_file}: wrong image size {images.shape[1:]}, {spec.name} images are "
                        f"{spec.image_shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{labels_file}: {labels.shape[0] if labels.ndim else 0} labels for {len(images)} "
                        f"images in {images_file}: image/label count mismatch")
    bad = labels[(labels < 0) | (labels >= spec.num_classes)]
    if bad.size:
        raise DataError(f"{labels_file}: label {int(bad[0])} out of range 0..{spec.num_classes - 1}")
    return np.ascontiguousarray(images, np.uint8), labels.astype(np.int64)


def _missing(path: Path, what: str) -> DataError:
    return DataError(f"missing file {path} ({what}); the folder has part of the dataset: add the file or "
                     "remove the folder")


def _load_idx(spec: DatasetSpec, folder: Path, verify: bool) -> Splits:
    splits = []
    for split, (images_stem, labels_stem) in IDX_FILES.items():
        images_file, labels_file = _idx_file(folder, images_stem), _idx_file(folder, labels_stem)
        for found, stem in ((images_file, images_stem), (labels_file, labels_stem)):
            if found is None:
                raise _missing(folder / f"{stem}.gz", f"{split} split of {spec.name}, gzipped or raw IDX")
        hashes = [spec.sha256.get(f.name) if verify else None for f in (images_file, labels_file)]
        splits.append(_check_pair(spec, read_idx(images_file, IMAGE_MAGIC, hashes[0]),
                                  read_idx(labels_file, LABEL_MAGIC, hashes[1]), images_file, labels_file))
    return tuple(splits)


def _parse_cifar_batch(spec: DatasetSpec, content: bytes, where: str) -> Arrays:
    """One CIFAR-10 binary batch: records of 1 label byte + 3072 pixel bytes (R, G, B planes of 32x32)."""
    height, width, channels = spec.image_shape
    record = 1 + height * width * channels
    if not content or len(content) % record:
        raise DataError(f"{where}: truncated CIFAR-10 batch ({len(content)} bytes is not a whole number of "
                        f"{record}-byte records); delete it and fetch it again")
    records = np.frombuffer(content, np.uint8).reshape(-1, record)
    images = records[:, 1:].reshape(-1, channels, height, width).transpose(0, 2, 3, 1)
    return _check_pair(spec, images, records[:, 0], where, where)


def _cifar_batches(source: Path) -> dict[str, tuple[bytes, str]]:
    """Batch file name -> (content, where it came from), read from the archive or the extracted folder."""
    names = [name for files in CIFAR_BATCHES.values() for name in files]
    if source.is_dir():
        for name in names:
            if not (source / name).is_file():
                raise _missing(source / name, "a batch of the CIFAR-10 binary release")
        return {name: ((source / name).read_bytes(), str(source / name)) for name in names}
    try:
        with tarfile.open(source, "r:gz") as archive:  # members are read, never extracted to disk
            members = {Path(m.name).name: m for m in archive.getmembers() if m.isfile()}
            for name in names:
                if name not in members:
                    raise _missing(source / name, "a batch of the CIFAR-10 binary release")
            return {name: (archive.extractfile(members[name]).read(), f"{source}:{name}") for name in names}
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise DataError(f"{source}: truncated or corrupt archive ({error}); delete it and fetch it again") \
            from error


def _load_cifar(spec: DatasetSpec, folder: Path) -> Splits:
    batches = _cifar_batches(_cifar_source(folder))
    splits = []
    for files in CIFAR_BATCHES.values():
        parts = [_parse_cifar_batch(spec, *batches[name]) for name in files]
        splits.append((np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])))
    return tuple(splits)


def _load_npz(spec: DatasetSpec, path: Path) -> Splits:
    """Keras's layout: one .npz with x_train, y_train, x_test, y_test."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    except KeyError as error:
        raise DataError(f"{path}: missing array {error} (Keras layout: x_train, y_train, x_test, y_test)") \
            from error
    except (OSError, ValueError, zlib.error) as error:
        raise DataError(f"{path}: not a readable .npz file ({error}); delete it and fetch it again") from error
    return tuple(_check_pair(spec, arrays[f"x_{s}"], arrays[f"y_{s}"], f"{path}:x_{s}", f"{path}:y_{s}")
                 for s in IDX_FILES)


def _load_folder(spec: DatasetSpec, folder: Path, verify: bool = False) -> Splits:
    """Loads whichever layout the folder holds; verify: check the published content hashes too."""
    npz = folder / f"{spec.name}.npz"
    if npz.is_file():
        return _load_npz(spec, npz)
    return _load_idx(spec, folder, verify) if spec.layout == "idx" else _load_cifar(spec, folder)


# ------------------------------------------------------------------------------------- download and verification


def _verify_download(spec: DatasetSpec, path: Path) -> None:
    """Raises DataError unless a downloaded file has the published hashes (those the table knows)."""
    if spec.sha256.get(path.name):
        _read_bytes(path, spec.sha256[path.name])
    if spec.md5.get(path.name):
        digest = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as file:
            while chunk := file.read(1 << 24):
                digest.update(chunk)
        if digest.hexdigest() != spec.md5[path.name]:
            raise DataError(f"{path}: md5 {digest.hexdigest()} is not the published {spec.md5[path.name]}")


def _verify_cache(spec: DatasetSpec, folder: Path) -> Splits:
    """Loads a cached copy, checking every file's published hashes and the published counts."""
    for name in spec.md5:
        _verify_download(spec, folder / name)
    splits = _load_folder(spec, folder, verify=True)
    counts = tuple(len(x) for (x, _y) in splits)
    if counts != spec.counts:
        raise DataError(f"{folder}: {counts} images, the published {spec.name} has {spec.counts}")
    return splits


def _progress(url: str, done: int, total: int) -> None:
    """Prints download progress to stderr: a live line on a terminal, one line per file otherwise."""
    finished = done == total
    if not (sys.stderr.isatty() or finished):
        return
    size = f"{100 * done // total:3d}% of {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
    print(f"\rkdeep: downloading {url}: {size}", end="\n" if finished else "", file=sys.stderr, flush=True)


def download_file(url: str, destination: Path, progress: Callable[[str, int, int], None] | None = _progress) -> Path:
    """Fetches a URL into a file atomically (kdeep.io.atomic_path: the file only ever holds a whole download).

    Args:
        url: what to fetch.
        destination: the final path; it only ever holds a complete download.
        progress: called as progress(url, bytes_done, bytes_total) while downloading; None for silence.

    Returns:
        The destination path.
    """
    with atomic_path(destination) as temp, open(temp, "wb") as out, \
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        total, done = int(response.headers.get("Content-Length") or 0), 0
        while chunk := response.read(1 << 20):
            out.write(chunk)
            done += len(chunk)
            if progress:
                progress(url, done, total)
        if total and done != total:
            raise OSError(f"connection closed after {done} of {total} bytes")
        out.flush()
    return destination


def _fetch(spec: DatasetSpec, folder: Path) -> list[str]:
    """Downloads every missing or bad file of a dataset into the cache folder.

    Returns:
        Why a file could not be fetched from any mirror (one entry per mirror tried); empty on success.
    """
    for name in spec.download_files:
        target = folder / name
        if target.is_file():
            try:
                _verify_download(spec, target)
                continue
            except DataError as error:
                print(f"kdeep: {error}; fetching it again", file=sys.stderr)
                target.unlink()
        failures = []
        for mirror in mirrors_for(spec):
            try:
                download_file(mirror + name, target)
                _verify_download(spec, target)
                break
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
                failures.append(f"{mirror + name}: {getattr(error, 'reason', error)}")
            except DataError as error:
                failures.append(f"{mirror + name}: {error}")
                target.unlink()
        else:
            return failures
    return []


def locate(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """Returns the first folder (in `search_dirs` order) holding any file of the dataset, or None."""
    spec = get_spec(name)
    return next((d for d in search_dirs(name, data_dir) if _has_any(spec, d)), None)


def load_with_path(name: str, data_dir: str | os.PathLike | None = None, *, download: bool = True) \
        -> tuple[Splits, Path]:
    """Like `load`, and also returns the folder the data came from."""
    spec = get_spec(name)
    cache = cache_dir() / name
    folder = locate(name, data_dir)
    if folder is not None and folder != cache:
        return _load_folder(spec, folder), folder
    if folder == cache:
        try:
            return _verify_cache(spec, cache), cache
        except DataError as error:
            if not download:
                raise
            print(f"kdeep: cached copy is corrupt ({error}); fetching it again", file=sys.stderr)
    failures = _fetch(spec, cache) if download else ["downloads disabled"]
    if not failures:
        return _verify_cache(spec, cache), cache
    looked = ", ".join(str(d) for d in search_dirs(name, data_dir))
    if not os.environ.get("KDEEP_DATA_DIR"):
        looked += ", $KDEEP_DATA_DIR/<name> (not set)"
    raise DataError(f"dataset {name!r} not found: looked in {looked}; download failed ({'; '.join(failures)}). "
                    f"Fix: put the files ({', '.join(spec.download_files)}) in a folder {name}/ and set "
                    f"KDEEP_DATA_DIR to its parent, or pass data_dir=, or connect to the internet")


def load(name: str, data_dir: str | os.PathLike | None = None, *, download: bool = True) -> Splits:
    """Loads a named dataset, or a folder of class subfolders of images, as numpy arrays, downloading and caching
    a named one when no copy is found.

    Looks in order in `data_dir` (or `data_dir/<name>`), `$KDEEP_DATA_DIR/<name>/` and the cache
    `~/.kdeep/datasets/<name>/` (`$KDEEP_CACHE_DIR` overrides the root). A folder may hold the four IDX
    files (gzipped or raw), Keras's `<name>.npz`, or for cifar10 `cifar-10-binary.tar.gz` or its `.bin` batches.

    A name that is not a dataset's but an existing folder is read as a dataset folder
    (`kdeep.data.folders.load_folder`: its train/ and test/ subfolders, else every fifth image of a class held
    out for testing).

    Args:
        name: "mnist", "fashion_mnist", "cifar10", or a folder path.
        data_dir: a folder to look in first.
        download: fetch from the mirrors when no copy is found (mirrors: `$KDEEP_DATA_MIRRORS` overrides).

    Returns:
        ((x_train, y_train), (x_test, y_test)): uint8 NHWC images, int64 labels.
    """
    if name not in DATASETS and is_image_folder(name):
        return load_folder(name)
    return load_with_path(name, data_dir, download=download)[0]


def class_names(dataset: str) -> tuple[str, ...]:
    """The class names of a named dataset (its spec) or of a dataset folder (its sorted subfolders).

    Raises:
        DataError: an unknown name that is no folder, or a folder with fewer than two classes.
    """
    if dataset not in DATASETS and is_image_folder(dataset):
        return folder_classes(dataset)
    return get_spec(dataset).class_names


# ------------------------------------------------------------------------------------------------------ info


def _channel_stats(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel pixel mean and std in [0, 1] units, exact, via a 256-bin histogram (no float copy)."""
    means, stds = [], []
    values = np.arange(256, dtype=np.float64) / 255.0
    for channel in range(images.shape[-1]):
        hist = np.bincount(images[..., channel].ravel(), minlength=256).astype(np.float64)
        mean = float(hist @ values / hist.sum())
        means.append(round(mean, 5))
        stds.append(round(float(np.sqrt(hist @ (values - mean) ** 2 / hist.sum())), 5))
    return means, stds


def info(name: str, data_dir: str | os.PathLike | None = None, *, download: bool = True) -> dict:
    """Summarises a dataset: where it was found, shapes, class counts and pixel statistics.

    Args:
        name: a dataset name (see `list_datasets`).
        data_dir: a folder to look in first, as for `load`.
        download: as for `load`.

    Returns:
        A JSON-ready dict: name, path, source, image_shape, num_classes, class_names, and per split
        ("train", "test"): images shape, labels count, class_counts; plus the train pixel_mean/pixel_std
        per channel in [0, 1] units.
    """
    spec = get_spec(name)
    ((x_train, y_train), (x_test, y_test)), path = load_with_path(name, data_dir, download=download)
    mean, std = _channel_stats(x_train)
    split_info = lambda x, y: {  # noqa: E731
        "images": list(x.shape), "dtype": str(x.dtype), "labels": int(len(y)),
        "class_counts": np.bincount(y, minlength=spec.num_classes).tolist()}
    return {
        "name": name, "path": str(path), "source": spec.source, "image_shape": list(spec.image_shape),
        "num_classes": spec.num_classes, "class_names": list(spec.class_names),
        "train": split_info(x_train, y_train), "test": split_info(x_test, y_test),
        "pixel_mean": mean, "pixel_std": std,
    }
