"""Per-layer sensitivity: one planned layer's weights quantized at a time (the rest float), simulated in Keras."""
from typing import Sequence

import numpy as np

from quantization.sweep import Simulator

DROP_PP = 1.0  # the sweep width for sensitivity: the widest where the whole model loses more than this


def sensitivity_width(rows: Sequence[dict], float_accuracy: float, drop_pp: float = DROP_PP) -> int | None:
    """The widest swept weight width (float activations) where the whole simulated model loses more than `drop_pp`.

    Args:
        rows: `sweep.sweep` rows.
        float_accuracy: the float model's accuracy on the same images.
        drop_pp: the loss, in percentage points, that marks the width.

    Returns:
        The width, or None when no swept width loses that much.
    """
    lossy = [r["weight_bits"] for r in rows if r["activation_bits"] is None and r["weight_bits"] is not None
             and 100 * (float_accuracy - r["accuracy"]) > drop_pp]
    return max(lossy, default=None)


def layer_sensitivity(simulator: Simulator, x: np.ndarray, y: np.ndarray, bits: int,
                      float_accuracy: float) -> list[dict]:
    """Accuracy with one layer's weights at `bits` and every other layer float, for each quantizable layer.

    Args:
        simulator: the model's `Simulator`.
        x, y: float images and labels (the sweep's).
        bits: the weight width.
        float_accuracy: the float model's accuracy on `x`.

    Returns:
        Rows {"layer" (plan key: the Keras name, `outer/inner` in a nested model), "bits", "parameters",
        "accuracy", "drop_pp", "n", "simulated": True}, in model order (nested models' layers included).
    """
    rows = []
    for layer in simulator.layers:
        accuracy = simulator.accuracy(x, y, {layer: bits})
        rows.append({"layer": layer, "bits": bits, "parameters": simulator.parameters(layer), "accuracy": accuracy,
                     "drop_pp": 100 * (float_accuracy - accuracy), "n": int(len(x)), "simulated": True})
    return rows


def with_snr(rows: list[dict], snr_rows: Sequence[dict]) -> list[dict]:
    """Adds the LiteRT quantizer's per-layer SNR (dB, {"layer", "snr_db"} rows keyed by plan key) to each row.

    Returns:
        The rows, each with "snr_db" (None for a layer the SNR rows do not name).
    """
    snr = {r["layer"]: r["snr_db"] for r in snr_rows}
    return [{**row, "snr_db": snr.get(row["layer"])} for row in rows]
