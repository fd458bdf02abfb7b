"""Image files and image folders: decode one file to uint8 pixels, and a folder of class subfolders as a dataset.

A dataset folder holds one subfolder of images per class, as `keras.utils.image_dataset_from_directory` reads
them (class index = sorted subfolder name). Its splits: `train/` and `test/` subfolders (each with the class
subfolders) when the folder has them; otherwise every fifth image of each class (sorted by file name: the 5th,
10th, ...) is the test split and the rest the training split, the same on every machine and every run.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kdeep.errors import DataError

IMAGE_FORMATS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")  # what Pillow reads here
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")  # Pillow modes with one colour channel
SPLITS = ("train", "test")
HOLDOUT = 5  # without train/ and test/ subfolders, every HOLDOUT-th image of a class is a test image

Arrays = tuple[np.ndarray, np.ndarray]


def read_image(path: str | os.PathLike, image_size: tuple[int, int] | None = None, channels: int = 3) -> np.ndarray:
    """One image file as uint8 pixels (H, W, channels).

    Any channel count is accepted (grey, grey+alpha, RGB, RGBA, palette, 16-bit): 1 channel is Pillow's
    ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B), 3 is RGB (grey repeated, alpha dropped).

    Args:
        path: a PNG, JPEG, BMP, GIF, TIFF or WebP file.
        image_size: (height, width) to resize to (bilinear), None to keep the file's size.
        channels: 1 or 3.

    Raises:
        DataError: the file is missing, not an image or truncated (the message names it).
    """
    from PIL import Image  # Pillow: a dependency of matplotlib, which kdeep requires

    try:
        with Image.open(path) as image:
            if image_size is not None and image.format == "JPEG":
                image.draft("RGB" if channels == 3 else "L", (image_size[1], image_size[0]))  # decode at 1/2..1/8
            mode = "L" if channels == 1 else "RGB"
            image = image if image.mode == mode else image.convert(mode)
            if image_size is not None and image.size != (image_size[1], image_size[0]):
                image = image.resize((image_size[1], image_size[0]), Image.BILINEAR)
            return np.asarray(image, np.uint8).reshape(image.size[1], image.size[0], channels)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise DataError(f"{path}: not a readable image ({str(error).strip() or type(error).__name__})") from None


def is_image_folder(dataset: str) -> bool:
    """True when a dataset argument names an existing folder (a kdeep dataset name never does)."""
    return Path(dataset).expanduser().is_dir()


def _class_dirs(root: Path) -> list[Path]:
    return sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))


def _split_roots(root: Path) -> dict[str, Path] | None:
    """{split: folder} when `root` holds train/ and/or test/ folders of class subfolders, else None."""
    roots = {split: root / split for split in SPLITS if (root / split).is_dir() and _class_dirs(root / split)}
    return roots or None


def folder_classes(path: str | os.PathLike) -> tuple[str, ...]:
    """The class names of a dataset folder: its subfolders' names, sorted (those of train/, else test/).

    Raises:
        DataError: not a folder, or fewer than two classes.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"image folder {root} not found: give a folder with one subfolder of images per class")
    roots = _split_roots(root)
    base = (roots.get("train") or roots["test"]) if roots else root
    names = tuple(d.name for d in _class_dirs(base))
    if len(names) < 2:
        found = f"only {names[0]!r}" if names else "no subfolders"
        raise DataError(f"{base}: a dataset folder needs one subfolder of images per class, at least two "
                        f"classes ({found}); add a subfolder per class")
    return names


def _files(folder: Path, classes: tuple[str, ...]) -> list[tuple[Path, int]]:
    """(file, label) of every image in the class subfolders of `folder`, sorted by class, then file name."""
    return [(file, label) for label, name in enumerate(classes) if (folder / name).is_dir()
            for file in sorted((folder / name).iterdir()) if file.suffix.lower() in IMAGE_FORMATS]


def _shape(files: list[tuple[Path, int]], where: Path) -> tuple[int, int, int]:
    """The (height, width, channels) every image of a dataset folder shares: 1 channel when all are grey."""
    from PIL import Image

    if not files:
        raise DataError(f"{where}: no images in its class subfolders (formats: {', '.join(IMAGE_FORMATS)}); "
                        "put the images in one subfolder per class")
    sizes, gray = {}, True
    for file, _label in files:
        try:
            with Image.open(file) as image:
                sizes.setdefault(image.size, file)
                gray = gray and image.mode in GRAY_MODES
        except (OSError, ValueError, SyntaxError) as error:
            raise DataError(f"{file}: not a readable image ({str(error).strip() or type(error).__name__}); "
                            "remove or replace it") from None
    if len(sizes) > 1:
        (first, first_file), (other, other_file) = list(sizes.items())[:2]
        raise DataError(f"{other_file}: image size {other[0]}x{other[1]}, {first_file} is {first[0]}x{first[1]}: "
                        "the images of a dataset folder must share one size; resize them")
    width, height = next(iter(sizes))
    return height, width, 1 if gray else 3


def _read(files: list[tuple[Path, int]], shape: tuple[int, int, int]) -> Arrays:
    images = np.empty((len(files), *shape), np.uint8)
    for i, (file, _label) in enumerate(files):
        try:
            images[i] = read_image(file, None, shape[2])
        except DataError as error:
            raise DataError(f"{error}; remove or replace it") from None
    return images, np.array([label for _file, label in files], np.int64)


def load_folder(path: str | os.PathLike) -> tuple[Arrays, Arrays]:
    """A dataset folder as ((x_train, y_train), (x_test, y_test)): uint8 NHWC images, int64 labels.

    Every image is read (a corrupt one is an error naming it); all must share one size; the images have one
    channel when every file is grey, else three (RGB). A split the folder does not have is empty.

    Raises:
        DataError: fewer than two classes, no images, a corrupt image, or images of different sizes.
    """
    root = Path(path).expanduser()
    classes = folder_classes(root)
    roots = _split_roots(root)
    if roots:
        parts = {split: _files(roots[split], classes) if split in roots else [] for split in SPLITS}
    else:
        parts, seen = {"train": [], "test": []}, {}
        for file, label in _files(root, classes):  # sorted by class, then name: the n-th image of its class
            seen[label] = seen.get(label, 0) + 1
            parts["test" if seen[label] % HOLDOUT == 0 else "train"].append((file, label))
    shape = _shape(parts["train"] + parts["test"], root)
    return _read(parts["train"], shape), _read(parts["test"], shape)


def image_files(paths: list[str | os.PathLike]) -> list[str]:
    """The files a list of image files and folders names, as path strings: files as given, folders walked (sorted,
    recursively, hidden entries skipped), in order.

    Raises:
        DataError: a path that does not exist, or a folder with no file at all.
    """
    found: list[str] = []
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            inside = []
            for folder, subfolders, names in os.walk(path):  # strings: a Path per file costs more than a small PNG
                subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
                inside += [os.path.join(folder, name) for name in sorted(names) if not name.startswith(".")]
            if not inside:
                raise DataError(f"{path}: an empty folder; give image files or folders holding them")
            found += inside
        elif path.is_file():
            found.append(str(path))
        else:
            raise DataError(f"{path}: no such file or folder; give image files (PNG, JPEG, ...) or folders of them")
    return found


def load_image_folder(path: str | os.PathLike, image_size: tuple[int, int] | None = None, *,
                      color_mode: str = "rgb") -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Loads a folder with one subfolder of images per class (class index = sorted subfolder order), all of it.

    Reads PNG, JPEG, BMP, GIF, TIFF and WebP (via Pillow) and resizes bilinearly to `image_size`.

    Args:
        path: the folder; its subfolders are the classes.
        image_size: (height, width) to resize to; None requires all images to share one size.
        color_mode: "rgb" (3 channels) or "grayscale" (1 channel).

    Returns:
        (x, y, class_names): uint8 images (N, H, W, C), int64 labels, the class names.
    """
    root = Path(path).expanduser()
    if color_mode not in ("rgb", "grayscale"):
        raise DataError(f"unknown color_mode {color_mode!r}: choose 'rgb' or 'grayscale'")
    if not root.is_dir():
        raise DataError(f"image folder {root} not found: give a folder with one subfolder of images per class")
    class_names = sorted(d.name for d in _class_dirs(root))
    files = _files(root, tuple(class_names))
    if not files:
        raise DataError(f"{root}: no images found in class subfolders (formats: {', '.join(IMAGE_FORMATS)})")
    channels = 3 if color_mode == "rgb" else 1
    size = tuple(image_size) if image_size is not None else None
    images = [read_image(file, size, channels) for file, _label in files]
    for image, (file, _label) in zip(images, files):
        if image.shape != images[0].shape:
            raise DataError(f"{file}: wrong image size {image.shape[:2]}, {files[0][0]} has "
                            f"{images[0].shape[:2]}; pass image_size to resize")
    return np.stack(images), np.array([label for _f, label in files], np.int64), class_names
