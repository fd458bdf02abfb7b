"""The artifact layer: resolves and loads model files with one-line errors, and does every atomic write.

Every file kdeep produces (run directories, reports, .tflite files, downloads, benchmark JSON) is written through
`atomic_path`: a uniquely named temp file in the destination's folder, fsync, then `os.replace`, with the mode the
umask gives. A process killed mid-write leaves the old file (or none), never a truncated one.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from kdeep.contract import Contract, attach, contract_of
from kdeep.errors import ArtifactError, reason

MODEL, ENSEMBLE = "model.keras", "ensemble.keras"
CONTRACT_ENTRY = "kdeep_contract.json"  # the contract inside a .keras zip (Keras ignores other entries)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temp path beside `path` (same suffix) to write; on success it is fsynced and renamed to `path`.

    On an exception (or a kill) the temp file is removed and `path` keeps its old content (or stays absent).

    Args:
        path: the destination; its folder is created if needed.

    Yields:
        The temp file's path (it exists, empty, mode from the umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    temp = Path(name)
    try:
        os.chmod(temp, 0o666 & ~_umask())  # mkstemp's 0600 would make the file private to its writer
        yield temp
        with open(temp, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def write_atomic(path: str | os.PathLike, data: bytes | str) -> Path:
    """Writes bytes, or text as UTF-8, to `path` atomically.

    Returns:
        The destination path.
    """
    with atomic_path(path) as temp:
        temp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Writes `data` as indented, key-sorted JSON atomically (numpy scalars as floats)."""
    return write_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=float) + "\n")


def write_csv(path: str | os.PathLike, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> Path:
    """Writes dict rows under `columns` as CSV atomically (missing values empty)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return write_atomic(path, buffer.getvalue())


def known_fields(cls: type, data: Any) -> dict[str, Any]:
    """The entries of a JSON object that name fields of the dataclass `cls` (what its `from_dict` takes; keys
    written by other versions are dropped)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {key: value for key, value in data.items() if key in names}


class Record:
    """A results dataclass's JSON form: `to_dict` gives its fields, `from_dict` reads them back (keys written by
    other versions dropped). Subclasses with nested dataclasses extend `from_dict`."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any:
        """Reads what `to_dict` wrote."""
        return cls(**known_fields(cls, data))


def output_dir(path: str | os.PathLike, what: str = "output directory") -> Path:
    """Checks that `path` can be a folder kdeep writes into (it is one, or does not exist yet); nothing is created.

    Raises:
        ArtifactError: `path` exists and is not a folder (a file, say), named with the fix.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ArtifactError(f"{what} {path} is a file, not a folder: choose another --out")
    return path


def read_json(path: str | os.PathLike, fix: str) -> Any:
    """Reads a JSON file kdeep wrote.

    Args:
        path: the file.
        fix: what to do when it is unreadable (ends the one-line error).

    Raises:
        ArtifactError: the file is missing, unreadable or not JSON.
    """
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ArtifactError(f"{path} is unreadable ({reason(error)}): {fix}") from None


def save_model(model: Any, path: str | os.PathLike) -> Path:
    """Saves a Keras model as a `.keras` file atomically, with its contract stored inside.

    Args:
        model: a Keras model.
        path: the destination (must end in .keras).

    Returns:
        The destination path.
    """
    with atomic_path(path) as temp:
        model.save(temp)
        with zipfile.ZipFile(temp, "a") as archive:
            archive.writestr(CONTRACT_ENTRY, contract_of(model).to_json())
    return Path(path)


def resolve_model(path: str | os.PathLike, *, tflite: bool = False) -> Path:
    """The model file a user means: a `.keras` file, a run directory's model.keras (else its ensemble.keras),
    or, when `tflite` is allowed, a `.tflite` file.

    Raises:
        ArtifactError: nothing there, a directory with no model, or a file of another kind.
    """
    path = Path(path)
    kinds = "a kdeep run directory, a .keras file" + (" or a .tflite file" if tflite else "")
    if path.is_dir():
        for name in (MODEL, ENSEMBLE):
            if (path / name).is_file():
                return path / name
        raise ArtifactError(f"{path} holds no {MODEL} or {ENSEMBLE}: is the run finished? (rerun its command to "
                            f"resume it) or give {kinds}")
    if not path.is_file():
        raise ArtifactError(f"no model at {path}: give {kinds}")
    if path.suffix == ".keras" or (tflite and path.suffix == ".tflite"):
        return path
    raise ArtifactError(f"{path} is not a model file: give {kinds}")


def resolve_tflite(path: str | os.PathLike) -> Path:
    """A LiteRT model file that exists (its content is checked by the runtime that opens it).

    Raises:
        ArtifactError: nothing there, or a directory.
    """
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"no LiteRT model at {path}: give a .tflite file written by kdeep quantize")
    return path


def unreadable_tflite(path: str | os.PathLike, error: BaseException) -> ArtifactError:
    """The one-line error for a file the LiteRT runtime cannot read (truncated, corrupt, not a model)."""
    return ArtifactError(f"{path} is not a valid LiteRT model ({reason(error)}); re-create it with kdeep quantize")


def load_model(path: str | os.PathLike, *, compile: bool = False) -> Any:
    """Loads the model a path means (see `resolve_model`), with the contract its file stores attached.

    Raises:
        ArtifactError: no model there, or the file is not a readable Keras model (truncated, corrupt).
    """
    import keras

    path = resolve_model(path)
    try:
        model = keras.saving.load_model(path, compile=compile)
        with zipfile.ZipFile(path) as archive:
            stored = archive.read(CONTRACT_ENTRY).decode("utf-8") if CONTRACT_ENTRY in archive.namelist() else None
    except Exception as error:  # Keras raises ValueError, OSError, zipfile.BadZipFile, KeyError, ...
        raise ArtifactError(f"{path} is not a readable Keras model ({type(error).__name__}: {reason(error)}); "
                            f"re-create it (rerun its training command or model.save)") from None
    if stored is not None:
        attach(model, Contract.from_json(stored))
    return model
