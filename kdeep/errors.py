"""The errors kdeep raises: each message names the thing that is wrong and how to fix it."""


class KdeepError(Exception):
    """Base class: the CLI prints the message on one line and exits with code 2."""


class DataError(KdeepError):
    """A dataset is missing, corrupt or malformed."""


class ModelError(KdeepError):
    """An unknown model name or an impossible model configuration."""


class ConfigError(KdeepError):
    """A bad training, distribution or run-directory configuration."""


class QuantizationError(KdeepError):
    """A conversion or evaluation input is unusable."""


class TrainingError(KdeepError):
    """Training diverged (NaN/inf loss); the run directory keeps the last good epoch."""


class ArtifactError(KdeepError):
    """A file kdeep reads (model, run-directory state, report input) is missing, corrupt or of the wrong kind."""


def reason(error: BaseException, *, last: bool = False, limit: int = 200) -> str:
    """One line of an exception's message for a one-line error: its first line (its last with `last`, where a
    tool ends its trace with the cause, as the TFLite converter does), at most `limit` characters, or the
    exception's type name when the message is empty."""
    lines = str(error).strip().splitlines()
    return (lines[-1] if last else lines[0])[:limit] if lines else type(error).__name__
