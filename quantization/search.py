"""Mixed precision under an accuracy budget: a weight width per layer from {2, 4, 8, float}, chosen in simulation on
one half of the held-out images (optionally within a measured latency), confirmed in LiteRT on the other half."""
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from kdeep.data.scaling import UNIT_RANGE
from kdeep.errors import QuantizationError
from kdeep.scoring import correct
from quantization import litert
from quantization.sweep import Simulator

LADDER = (None, 8, 4, 2)  # widths a layer steps down through (None: float)
FLOAT_BYTES = 4
LATENCY_SLACK = 0.05  # with a latency table: the fraction of the start's predicted latency a mix may add (timing noise)
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


def drop_bound(lost: int, gained: int, n: int, z: float = CONFIDENCE_Z) -> float:
    """A paired accuracy drop plus `z` standard errors, in percentage points: 100 (lost - gained + z sqrt(lost +
    gained)) / n, from the images whose prediction turned wrong (`lost`) or right (`gained`) against float."""
    return 100 * ((lost - gained) + z * math.sqrt(lost + gained)) / n


@dataclass(frozen=True)
class Confirmation:
    """The chosen mix, deployed, on held-out images the search never saw (LiteRT, not the simulator).

    Attributes:
        images: which images confirmed, in words.
        n: how many.
        float_accuracy: the float Keras model's accuracy on them.
        accuracy: the deployed file's accuracy on them (LiteRT).
        lost, gained: images whose prediction turned wrong / right against float.
    """

    images: str
    n: int
    float_accuracy: float
    accuracy: float
    lost: int
    gained: int

    @property
    def drop_pp(self) -> float:
        """The confirmed drop, percentage points."""
        return 100 * (self.float_accuracy - self.accuracy)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, with drop_pp."""
        return {**dataclasses.asdict(self), "drop_pp": self.drop_pp}


@dataclass
class Mix:
    """The chosen widths, what the search measured on the images that chose (simulated), and the confirmation.

    Attributes:
        bits: {plan key: 2, 4, 8 or None (float)}.
        max_drop_pp: the budget.
        float_accuracy: the float model's accuracy on the images that chose.
        accuracy: the mix's simulated accuracy on them.
        drop_bound_pp: its drop plus `z` standard errors of the paired difference (`drop_bound`: what the budget
            bounds), from `lost` and `gained`.
        lost, gained: images whose prediction turned wrong / right against float.
        z: the standard errors added.
        kernel_bytes: the kernels' bytes at these widths (the rest of the file is not counted).
        n: images that chose.
        evaluations: simulated evaluations the search ran.
        chose_on: which images chose, in words.
        latency_us: the mix's predicted batch-1 latency from the measured per-layer table (None: size only).
        latency_budget_us: the latency the search kept the mix within (None: size only).
        tried: every step tried, {"layer", "bits", "accuracy", "drop_bound_pp", "latency_us", "accepted"}.
        confirmation: the deployed mix on the held-out images that did not choose (`confirm`), once measured.
    """

    bits: dict[str, int | None]
    max_drop_pp: float
    float_accuracy: float
    accuracy: float
    drop_bound_pp: float
    lost: int
    gained: int
    z: float
    kernel_bytes: float
    n: int
    evaluations: int
    chose_on: str = ""
    latency_us: float | None = None
    latency_budget_us: float | None = None
    tried: list[dict] = field(default_factory=list)
    confirmation: Confirmation | None = None

    @property
    def drop_pp(self) -> float:
        """Accuracy lost against float on the images that chose, in percentage points."""
        return 100 * (self.float_accuracy - self.accuracy)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, with drop_pp (the confirmation's too)."""
        fields = {**dataclasses.asdict(self), "drop_pp": self.drop_pp, "simulated": True}
        fields["confirmation"] = self.confirmation.to_dict() if self.confirmation else None
        return fields


def _lower(bits: int | None, lowest: int) -> int | None:
    """The next width down the ladder, or None at `lowest` (no step below)."""
    index = LADDER.index(bits)
    return LADDER[index + 1] if bits != lowest and index + 1 < len(LADDER) else None


class _Scorer:
    """Simulated predictions of mixes on the images that choose, against float: accuracy, lost, gained, bound."""

    def __init__(self, simulator: Simulator, x: np.ndarray, y: np.ndarray, z: float) -> None:
        self.simulator, self.x, self.y, self.z = simulator, x, y, z
        self.float_right = correct(simulator.predict(x, simulator.uniform(None)), y)
        self.evaluations = 1

    def __call__(self, bits: Mapping[str, int | None]) -> tuple[float, float, int, int]:
        """(accuracy, drop bound in pp, lost, gained) of a mix."""
        self.evaluations += 1
        right = correct(self.simulator.predict(self.x, bits), self.y)
        lost, gained = int(np.sum(self.float_right & ~right)), int(np.sum(~self.float_right & right))
        return float(np.mean(right)), drop_bound(lost, gained, len(self.y), self.z), lost, gained


def search(simulator: Simulator, x_val: np.ndarray, y_val: np.ndarray, max_drop: float, *,
           z: float = CONFIDENCE_Z, lowest: Mapping[str, int] | None = None, latency: Any = None,
           latency_slack: float = LATENCY_SLACK, start: Mapping[str, int | None] | None = None,
           chose_on: str = "") -> Mix:
    """Greedily lowers one layer's weight width at a time, the most bytes saved per point lost first, keeping the
    simulated drop on the images that choose within the budget (and, with a latency table, the predicted batch-1
    latency within the start's).

    A mix fits when its drop plus `z` standard errors stays within the budget (`drop_bound`): a mix that changes
    many predictions and nets out near zero on these images is not trusted to do so on others. Each layer's bound
    alone at each width (the rest float) ranks the moves; a move is kept only if the whole mix still fits, else that
    layer stays where it is. The start is every layer at 8 bits when that fits, else every layer float. No layer
    goes below the narrowest width LiteRT runs correctly for its op in dynamic range (the layer plan: 2 bits for
    dense layers, 4 for convolutions, 8 for depthwise ones).

    Args:
        simulator: the model's `Simulator`.
        x_val, y_val: held-out images that choose (never the test set; `quantization.holdout`).
        max_drop: the budget, percentage points of accuracy on those images.
        z: standard errors added to the measured drop before comparing it with the budget (0: the drop alone).
        lowest: {plan key: a narrowest width above the plan's own} (optional).
        latency: a measured per-layer latency table (`quantization.latency.LayerLatency`); with one, a move whose
            predicted batch-1 latency exceeds the start's by more than `latency_slack` (a fraction) is refused.
        latency_slack: the latency the mix may add to the start's, as a fraction of it (5 %: the per-layer
            timings' noise).
        start: the mix to start from (default: every layer at 8 bits); every layer float when it does not fit.
        chose_on: which images `x_val` are, in words (recorded in the result).

    Returns:
        The `Mix` (not yet confirmed: see `confirm`).
    """
    max_drop = check_budget(max_drop)
    floor = {entry.key: max(entry.lowest("dynamic") or 8, (lowest or {}).get(entry.key, 0))
             for entry in simulator.plan}
    y_val = np.asarray(y_val).reshape(-1)
    score = _Scorer(simulator, x_val, y_val, z)
    current = {**simulator.uniform(8), **(start or {})}
    accuracy, bound, lost, gained = score(current)
    if bound > max_drop:
        current, accuracy, bound, lost, gained = simulator.uniform(None), float(np.mean(score.float_right)), 0.0, 0, 0
    budget = None if latency is None else latency.of(current) * (1 + latency_slack)
    alone: dict[tuple[str, int], float] = {}
    stuck: set[str] = set()
    tried = []
    while True:
        moves = [(layer, _lower(current[layer], floor[layer])) for layer in simulator.layers if layer not in stuck]
        moves = [move for move in moves if move[1] is not None]
        if not moves:
            break
        for move in moves:
            if move not in alone:
                alone[move] = max(score({move[0]: move[1]})[1], 0.0)

        def value(move: tuple[str, int]) -> float:
            layer, bits = move
            before = FLOAT_BYTES if current[layer] is None else current[layer] / 8
            return simulator.parameters(layer) * (before - bits / 8) / (alone[move] + 0.01)

        layer, bits = max(moves, key=value)
        candidate = {**current, layer: bits}
        predicted = None if latency is None else latency.of(candidate)
        if budget is not None and predicted > budget:  # slower than allowed: not worth measuring
            tried.append({"layer": layer, "bits": bits, "accuracy": None, "drop_bound_pp": None,
                          "latency_us": predicted, "accepted": False})
            stuck.add(layer)
            continue
        result = score(candidate)
        accepted = result[1] <= max_drop
        tried.append({"layer": layer, "bits": bits, "accuracy": result[0], "drop_bound_pp": result[1],
                      "latency_us": predicted, "accepted": accepted})
        if accepted:
            current, (accuracy, bound, lost, gained) = candidate, result
        else:
            stuck.add(layer)
    return Mix(bits=current, max_drop_pp=max_drop, float_accuracy=float(np.mean(score.float_right)),
               accuracy=accuracy, drop_bound_pp=bound, lost=lost, gained=gained, z=z,
               kernel_bytes=kernel_bytes(simulator, current), n=len(y_val), evaluations=score.evaluations,
               chose_on=chose_on, latency_us=None if latency is None else latency.of(current),
               latency_budget_us=budget, tried=tried)


def confirm(tflite_path: str | Path, images: np.ndarray, labels: np.ndarray, float_outputs: np.ndarray,
            source: str, *, input_range: tuple[float, float] = UNIT_RANGE) -> Confirmation:
    """Scores the deployed mix in LiteRT on held-out images that did not choose it, against the float model.

    Args:
        tflite_path: the exported mix.
        images, labels: the confirming images (uint8, or float in [0, 1]) and labels.
        float_outputs: the float Keras model's outputs on them.
        source: which images these are, in words.
        input_range: the model contract's input range.

    Returns:
        The `Confirmation`.
    """
    right = correct(litert.predict(tflite_path, images, input_range=input_range), labels)
    float_right = correct(float_outputs, labels)
    return Confirmation(source, int(len(right)), float(np.mean(float_right)), float(np.mean(right)),
                        int(np.sum(float_right & ~right)), int(np.sum(~float_right & right)))


def pareto(points: Sequence[dict]) -> list[str]:
    """Names of the points no other point beats on both size and accuracy ({"name", "size_bytes", "accuracy"}).

    Returns:
        The frontier's names, smallest file first.
    """
    frontier = [p for p in points
                if not any(q["size_bytes"] <= p["size_bytes"] and q["accuracy"] >= p["accuracy"]
                           and (q["size_bytes"], q["accuracy"]) != (p["size_bytes"], p["accuracy"]) for q in points)]
    return [p["name"] for p in sorted(frontier, key=lambda p: p["size_bytes"])]
