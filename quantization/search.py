"""Mixed precision under an accuracy budget: a weight width per layer from {2, 4, 8, float}, searched in simulation."""
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from kdeep.errors import QuantizationError
from kdeep.scoring import correct
from quantization.sweep import Simulator

LADDER = (None, 8, 4, 2)  # widths a layer steps down through (None: float)
FLOAT_BYTES = 4
CONFIDENCE_Z = 1.0  # standard errors of the paired validation drop the search adds before it compares with the budget


def check_budget(max_drop: float) -> float:
    """The accuracy budget in percentage points, checked.

    Raises:
        QuantizationError: `max_drop` is not strictly between 0 and 100.
    """
    if not 0 < max_drop < 100:
        raise QuantizationError(f"--max-drop must be between 0 and 100 percentage points (exclusive), "
                                f"got {max_drop:g}; e.g. --max-drop 0.3")
    return float(max_drop)


def kernel_bytes(simulator: Simulator, bits: dict[str, int | None]) -> float:
    """Bytes the quantizable layers' kernels take at these widths (float: 4 bytes, b bits: b/8 bytes, packed)."""
    return sum(simulator.parameters(layer) * (FLOAT_BYTES if bits.get(layer) is None else bits[layer] / 8)
               for layer in simulator.layers)


@dataclass
class Mix:
    """The chosen widths and what the search measured on the validation split (all simulated).

    Attributes:
        bits: {Keras layer name: 2, 4, 8 or None (float)}.
        max_drop_pp: the budget.
        float_accuracy: the float model's validation accuracy.
        accuracy: the mix's simulated validation accuracy.
        drop_bound_pp: its drop plus `z` standard errors of the paired difference (what the budget bounds).
        z: the standard errors added.
        kernel_bytes: the kernels' bytes at these widths (the rest of the file is not counted).
        n: validation images.
        evaluations: simulated evaluations the search ran.
        tried: every step tried, {"layer", "bits", "accuracy", "accepted"}.
    """

    bits: dict[str, int | None]
    max_drop_pp: float
    float_accuracy: float
    accuracy: float
    drop_bound_pp: float
    z: float
    kernel_bytes: float
    n: int
    evaluations: int
    tried: list[dict] = field(default_factory=list)

    @property
    def drop_pp(self) -> float:
        """Validation accuracy lost against float, in percentage points."""
        return 100 * (self.float_accuracy - self.accuracy)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, with drop_pp."""
        return {**dataclasses.asdict(self), "drop_pp": self.drop_pp, "simulated": True}


def _lower(bits: int | None, lowest: int) -> int | None:
    """The next width down the ladder, or None at `lowest` (no step below)."""
    index = LADDER.index(bits)
    return LADDER[index + 1] if bits != lowest and index + 1 < len(LADDER) else None


def search(simulator: Simulator, x_val: np.ndarray, y_val: np.ndarray, max_drop: float, *,
           z: float = CONFIDENCE_Z, lowest: Mapping[str, int] | None = None) -> Mix:
    """Greedily lowers one layer's weight width at a time, the most bytes saved per point lost first, keeping the
    simulated validation drop within the budget.

    A mix fits when its drop plus `z` standard errors stays within the budget: the error of a paired difference
    counts the validation images whose prediction turned right or wrong (sqrt(lost + gained) / n), so a mix that
    changes many predictions and nets out near zero on these images is not trusted to do so on others. Each
    layer's bound alone at each width (the rest float) ranks the moves; a move is kept only if the whole mix still
    fits, else that layer stays where it is. The start is every layer at 8 bits when that fits, else every layer
    float.

    Args:
        simulator: the model's `Simulator`.
        x_val, y_val: the validation split (training images the model did not fit; never the test set).
        max_drop: the budget, percentage points of validation accuracy.
        z: standard errors added to the measured drop before comparing it with the budget (0: the drop alone).
        lowest: {layer: the narrowest width it may take} (default 2 for every layer); the pipeline passes
            `aiedge.lowest_bits` (LiteRT runs 2-bit weights correctly only in dense layers).

    Returns:
        The `Mix`.
    """
    max_drop = check_budget(max_drop)
    floor = dict(lowest or {})
    y_val = np.asarray(y_val).reshape(-1)
    n = len(y_val)
    float_right = correct(simulator.predict(x_val, simulator.uniform(None)), y_val)
    evaluations = 1

    def measure(bits: dict[str, int | None]) -> tuple[float, float]:
        """(accuracy, drop bound in pp) of a mix on the validation split."""
        nonlocal evaluations
        evaluations += 1
        right = correct(simulator.predict(x_val, bits), y_val)
        lost, gained = int(np.sum(float_right & ~right)), int(np.sum(~float_right & right))
        return float(np.mean(right)), 100 * ((lost - gained) + z * math.sqrt(lost + gained)) / n

    current = simulator.uniform(8)
    current_accuracy, bound = measure(current)
    if bound > max_drop:
        current, current_accuracy, bound = simulator.uniform(None), float(np.mean(float_right)), 0.0
    alone: dict[tuple[str, int], float] = {}
    stuck: set[str] = set()
    tried = []
    while True:
        moves = [(layer, _lower(current[layer], floor.get(layer, LADDER[-1]))) for layer in simulator.layers
                 if layer not in stuck]
        moves = [move for move in moves if move[1] is not None]
        if not moves:
            break
        for move in moves:
            if move not in alone:
                alone[move] = max(measure({move[0]: move[1]})[1], 0.0)

        def value(move: tuple[str, int]) -> float:
            layer, bits = move
            before = FLOAT_BYTES if current[layer] is None else current[layer] / 8
            return simulator.parameters(layer) * (before - bits / 8) / (alone[move] + 0.01)

        layer, bits = max(moves, key=value)
        candidate = {**current, layer: bits}
        candidate_accuracy, candidate_bound = measure(candidate)
        accepted = candidate_bound <= max_drop
        tried.append({"layer": layer, "bits": bits, "accuracy": candidate_accuracy, "drop_bound_pp": candidate_bound,
                      "accepted": accepted})
        if accepted:
            current, current_accuracy, bound = candidate, candidate_accuracy, candidate_bound
        else:
            stuck.add(layer)
    return Mix(bits=current, max_drop_pp=max_drop, float_accuracy=float(np.mean(float_right)),
               accuracy=current_accuracy, drop_bound_pp=bound, z=z, kernel_bytes=kernel_bytes(simulator, current),
               n=n, evaluations=evaluations, tried=tried)


def pareto(points: Sequence[dict]) -> list[str]:
    """Names of the points no other point beats on both size and accuracy ({"name", "size_bytes", "accuracy"}).

    Returns:
        The frontier's names, smallest file first.
    """
    frontier = [p for p in points
                if not any(q["size_bytes"] <= p["size_bytes"] and q["accuracy"] >= p["accuracy"]
                           and (q["size_bytes"], q["accuracy"]) != (p["size_bytes"], p["accuracy"]) for q in points)]
    return [p["name"] for p in sorted(frontier, key=lambda p: p["size_bytes"])]
