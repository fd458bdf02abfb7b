"""Quiet by default: TensorFlow's, absl's and the converters' log lines are off unless --verbose or KDEEP_VERBOSE=1."""
from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile
import warnings
from typing import Iterator

VERBOSE_ENV = "KDEEP_VERBOSE"
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
        return True
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    return False


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """Within the block, what Python code prints (the converters' SavedModel listings, the LiteRT quantizer's progress
    bars and size report), its warnings and absl's/TensorFlow's log records below ERROR are dropped. Does nothing
    when verbose (`--verbose`, KDEEP_VERBOSE=1), so those lines stay visible there.
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
                warnings.catch_warnings():
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
