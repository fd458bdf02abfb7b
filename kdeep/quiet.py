"""Quiet by default: TensorFlow's, absl's and the converters' log lines are off unless --verbose or KDEEP_VERBOSE=1."""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import io
import logging
import os
import re
import sys
import tempfile
import warnings
from typing import Iterator

VERBOSE_ENV = "KDEEP_VERBOSE"
_DEFAULTED: set[str] = set()  # QUIET_ENV names `quiet_library` set (not the user), undone by set_verbosity(True)
# Set before TensorFlow is imported; a value the user exported wins. "3" silences the C++ log lines that
# TensorFlow writes while it runs (cuInit, SavedModel loader, TFLite converter, coordination service).
QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3"}
QUIET_LOGGERS = ("tensorflow", "absl")  # Python loggers of TensorFlow (tf.get_logger()) and absl
# Native lines that ignore TF_CPP_MIN_LOG_LEVEL: absl's start-up lines (cudart_stub's "Could not find cuda
# drivers" when TensorFlow is imported), the MLIR quantizer's llvm::dbgs() line, LiteRT's delegate line.
NATIVE_NOISE = re.compile(
    rb"[IWE]\d{4} |WARNING: All log messages before absl::InitializeLog\(\)|fully_quantize: \d|"
    rb"INFO: Created TensorFlow Lite .* delegate"
)


def is_verbose() -> bool:
    """Whether TensorFlow's logging is on: KDEEP_VERBOSE=1 (set by `--verbose`)."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def set_verbosity(verbose: bool = False) -> bool:
    """Silences TensorFlow's and absl's logging unless verbose; call it before TensorFlow is imported.

    The environment carries the setting to worker processes (`kdeep launch`). Keras progress bars and
    kdeep's own lines are untouched.

    Args:
        verbose: keep TensorFlow's logging (also turned on by KDEEP_VERBOSE=1 in the environment).

    Returns:
        Whether logging stays verbose.
    """
    if verbose or is_verbose():
        os.environ[VERBOSE_ENV] = "1"
        for name in _DEFAULTED:  # `import kdeep` quieted them before --verbose was read
            os.environ.pop(name, None)
        _DEFAULTED.clear()
        sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _QuietImport)]
        return True
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    return False


def quiet_library() -> None:
    """What `import kdeep` does, so the Python API is as quiet as the CLI: unless verbose, TensorFlow's C++ log
    level defaults to errors (a TF_CPP_MIN_LOG_LEVEL the user exported wins), and the first `import tensorflow`
    after this (kdeep's or the user's) runs with its native start-up lines filtered (`native_stderr_filtered`).
    Neither TensorFlow nor Keras is imported here.
    """
    if is_verbose():
        return
    for name, value in QUIET_ENV.items():
        if name not in os.environ:
            os.environ[name] = value
            _DEFAULTED.add(name)
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` once, with a loader that executes it inside `native_stderr_filtered`, then steps aside."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> object:
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None and not is_verbose():
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    """Runs another loader's `exec_module` with native stderr filtered, then puts that loader back on the module."""

    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> object:
        return self.loader.create_module(spec)

    def exec_module(self, module: object) -> None:
        module.__spec__.loader = module.__loader__ = self.loader  # type: ignore[attr-defined]
        with native_stderr_filtered():
            self.loader.exec_module(module)


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """Within the block, what Python code prints (the converters' SavedModel listings, the LiteRT quantizer's progress
    bars and size report), its warnings and absl's/TensorFlow's log records below ERROR are dropped, and native
    lines matching NATIVE_NOISE too (`native_stderr_filtered`). Does nothing when verbose (`--verbose`,
    KDEEP_VERBOSE=1), so those lines stay visible there.
    """
    if is_verbose():
        yield
        return
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                warnings.catch_warnings(), native_stderr_filtered():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


@contextlib.contextmanager
def native_stderr_filtered() -> Iterator[None]:
    """Holds back what native code writes to stderr (file descriptor 2) and, at the end, writes it out without
    the NATIVE_NOISE lines; Python's own `sys.stderr` stays live. Does nothing when verbose.

    A native crash inside the block loses the held-back lines: rerun with --verbose to see them.
    """
    if is_verbose():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    python_stderr = sys.stderr
    live = None
    if sys.stderr is sys.__stderr__:  # not when a caller (pytest's capsys) has replaced it
        # owns `saved`: log handlers made inside the block (TensorFlow's) keep writing to the real stderr
        live = sys.stderr = open(saved, "w", buffering=1, encoding=python_stderr.encoding, errors="backslashreplace")
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            sys.stderr = python_stderr
            os.dup2(saved, 2)
            if live is None:
                os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().splitlines(keepends=True) if not NATIVE_NOISE.match(line)]
            if kept:
                python_stderr.flush()
                os.write(2, b"".join(kept))
