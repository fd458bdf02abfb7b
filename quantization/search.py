"""Mixed precision under an accuracy budget: a weight width per layer from {2, 4, 8, float} (optionally within a
measured latency), or an activation width per tensor from {16, 8} for a full-integer file (and then weights from
{8, 4}), chosen in simulation on one half of the held-out images, confirmed in LiteRT on the other half."""
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from kdeep.data.scaling import UNIT_RANGE
from kdeep.errors import QuantizationError
from kdeep.scoring import correct
from quantization import litert
from quantization.sweep import Simulator

LADDER = (None, 8, 4, 2)  # widths a layer steps down through (None: float)
ACTIVATION_LADDER = (16, 8)  # activation widths a tensor steps down through: those LiteRT's static kernels run
SEARCHES = ("weights", "activations", "both")  # what a search chooses widths for
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
        tried: every step tried, {"kind" ("weights" or "activations"), "layer" (a plan key, or an activation
            tensor's key), "bits", "accuracy", "drop_bound_pp", "latency_us", "accepted"}.
        confirmation: the deployed mix on the held-out images that did not choose (`confirm`), once measured.
        search: what was chosen: "weights" (activations float), "activations" (weights 8 bits) or "both".
        activation_bits: {activation tensor (`Simulator.activation_tensors`): 8 or 16}; empty when activations
            stay float (the weight search).
        activation_bytes: one image's activation tensors' bytes at these widths (None: float activations).
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
    search: str = "weights"
    activation_bits: dict[str, int | None] = field(default_factory=dict)
    activation_bytes: float | None = None

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


def _lower_activation(bits: int | None) -> int | None:
    """The next activation width down `ACTIVATION_LADDER`, or None at its end."""
    index = ACTIVATION_LADDER.index(bits)
    return ACTIVATION_LADDER[index + 1] if index + 1 < len(ACTIVATION_LADDER) else None


class _Scorer:
    """Simulated predictions of mixes on the images that choose, against float: accuracy, lost, gained, bound."""

    def __init__(self, simulator: Simulator, x: np.ndarray, y: np.ndarray, z: float) -> None:
        self.simulator, self.x, self.y, self.z = simulator, x, y, z
        self.float_right = correct(simulator.predict(x, simulator.uniform(None)), y)
        self.evaluations = 1

    def __call__(self, bits: Mapping[str, int | None],
                 activations: Mapping[str, int | None] | None = None) -> tuple[float, float, int, int]:
        """(accuracy, drop bound in pp, lost, gained) of a mix of weight widths and activation widths (None or
        absent: float)."""
        self.evaluations += 1
        outputs = (self.simulator.predict(self.x, bits, activations) if activations
                   else self.simulator.predict(self.x, bits))
        right = correct(outputs, self.y)
        lost, gained = int(np.sum(self.float_right & ~right)), int(np.sum(~self.float_right & right))
        return float(np.mean(right)), drop_bound(lost, gained, len(self.y), self.z), lost, gained


@dataclass
class _Descent:
    """One greedy descent over one kind of width ("weights": per planned layer; "activations": per tensor).

    Attributes:
        kind: which widths it lowers (the `tried` rows say so).
        lower: (unit, width) -> the next width down, or None.
        saving: (unit, width, lower width) -> bytes saved.
        score: {unit: width} -> (accuracy, bound, lost, gained) of the whole model with these widths.
        base: the widths a move alone is ranked against (the move on top of them).
        admit: {unit: width} -> (within the latency budget, predicted latency in µs); None: every move is
            measured.
    """

    kind: str
    lower: Callable[[str, int | None], int | None]
    saving: Callable[[str, int | None, int | None], float]
    score: Callable[[Mapping[str, int | None]], tuple[float, float, int, int]]
    base: Mapping[str, int | None]
    admit: Callable[[Mapping[str, int | None]], tuple[bool, float | None]] | None = None

    def run(self, current: dict[str, int | None], result: tuple[float, float, int, int], max_drop: float,
            tried: list[dict]) -> tuple[dict[str, int | None], tuple[float, float, int, int]]:
        """Lowers one unit at a time, the most bytes saved per point lost first (each move ranked by its bound
        alone on `base`), keeping a move only if the whole mix's bound stays within `max_drop`; a unit whose move
        is refused stays where it is. Appends every step to `tried`; returns the final widths and their score."""
        alone: dict[tuple[str, int | None], float] = {}
        stuck: set[str] = set()
        while True:
            moves = [(unit, self.lower(unit, bits)) for unit, bits in current.items() if unit not in stuck]
            moves = [move for move in moves if move[1] is not None]
            if not moves:
                return current, result
            for move in moves:
                if move not in alone:
                    alone[move] = max(self.score({**self.base, move[0]: move[1]})[1], 0.0)
            unit, bits = max(moves, key=lambda m: self.saving(m[0], current[m[0]], m[1]) / (alone[m] + 0.01))
            candidate = {**current, unit: bits}
            admitted, predicted = self.admit(candidate) if self.admit else (True, None)
            row = {"kind": self.kind, "layer": unit, "bits": bits, "accuracy": None, "drop_bound_pp": None,
                   "latency_us": predicted, "accepted": False}
            if admitted:  # a move slower than allowed is not worth measuring
                scored = self.score(candidate)
                row.update(accuracy=scored[0], drop_bound_pp=scored[1], accepted=scored[1] <= max_drop)
                if row["accepted"]:
                    current, result = candidate, scored
            tried.append(row)
            if not row["accepted"]:
                stuck.add(unit)


def _weight_descent(simulator: Simulator, score: _Scorer, activations: Mapping[str, int | None], mode: str,
                    lowest: Mapping[str, int] | None, admit: Any = None) -> _Descent:
    """The descent over weight widths, activations fixed at `activations`: no layer below the narrowest width
    LiteRT runs correctly for its op in `mode` (the layer plan), nor below `lowest`."""
    def floor(entry: Any) -> int:
        bits = entry.lowest(mode, activations.get(simulator.input_tensor(entry.key)) if mode == "static" else None)
        return max(bits or 8, (lowest or {}).get(entry.key, 0))

    floors = {entry.key: floor(entry) for entry in simulator.plan}

    def saving(layer: str, bits: int | None, lower: int | None) -> float:
        return simulator.parameters(layer) * ((FLOAT_BYTES if bits is None else bits / 8) - lower / 8)

    return _Descent("weights", lambda layer, bits: _lower(bits, floors[layer]), saving,
                    lambda bits: score(bits, activations), {}, admit)


def search(simulator: Simulator, x_val: np.ndarray, y_val: np.ndarray, max_drop: float, *,
           z: float = CONFIDENCE_Z, lowest: Mapping[str, int] | None = None, latency: Any = None,
           latency_slack: float = LATENCY_SLACK, start: Mapping[str, int | None] | None = None,
           chose_on: str = "") -> Mix:
    """Greedily lowers one layer's weight width at a time, the most bytes saved per point lost first, keeping the
    simulated drop on the images that choose within the budget (and, with a latency table, the predicted batch-1
    latency within the start's); activations stay float (a dynamic-range or weight-only file).

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
    y_val = np.asarray(y_val).reshape(-1)
    score = _Scorer(simulator, x_val, y_val, z)
    current = {**simulator.uniform(8), **(start or {})}
    result = score(current)
    if result[1] > max_drop:
        current, result = simulator.uniform(None), (float(np.mean(score.float_right)), 0.0, 0, 0)
    budget = None if latency is None else latency.of(current) * (1 + latency_slack)

    def admit(candidate: Mapping[str, int | None]) -> tuple[bool, float | None]:
        predicted = latency.of(candidate)
        return predicted <= budget, predicted

    tried: list[dict] = []
    descent = _weight_descent(simulator, score, {}, "dynamic", lowest, admit if latency is not None else None)
    current, result = descent.run(current, result, max_drop, tried)
    return _mix(simulator, score, current, {}, result, max_drop, chose_on, tried, search="weights",
                latency_us=None if latency is None else latency.of(current), latency_budget_us=budget)


def activation_bytes(simulator: Simulator, widths: Mapping[str, int | None]) -> float:
    """Bytes one image's quantized activation tensors take at these widths (float: 4 bytes)."""
    return sum(simulator.activation_size(t) * (FLOAT_BYTES if widths.get(t) is None else widths[t] / 8)
               for t in simulator.activation_tensors)


def mean_weight_bits(simulator: Simulator, bits: Mapping[str, int | None]) -> float:
    """The weight width of a mix, weighted by each layer's kernel parameters (float: 32)."""
    total = sum(simulator.parameters(layer) for layer in simulator.layers)
    return sum(simulator.parameters(layer) * (32 if b is None else b) for layer, b in bits.items()) / total


def mean_activation_bits(simulator: Simulator, widths: Mapping[str, int | None]) -> float:
    """The activation width of a mix, weighted by each tensor's values per image (no widths: float, 32)."""
    if not widths:
        return 32.0
    sizes = {tensor: simulator.activation_size(tensor) for tensor in widths}
    return sum(sizes[t] * (32 if b is None else b) for t, b in widths.items()) / sum(sizes.values())


def search_activations(simulator: Simulator, x_val: np.ndarray, y_val: np.ndarray, max_drop: float, *,
                       weights: bool = False, z: float = CONFIDENCE_Z, lowest: Mapping[str, int] | None = None,
                       chose_on: str = "") -> Mix:
    """Chooses an activation width per tensor (16 or 8 bits, what LiteRT's static kernels run), and with `weights`
    then a weight width per layer (8 or 4, static), under the budget, for a full-integer file.

    Starts from every tensor at 16 bits and every kernel at 8 (`w8a16`), then lowers one tensor at a time to 8
    bits, the most activation bytes per image saved per point lost first (each tensor ranked by its bound alone at
    8 bits, the rest at 16), keeping a move only while the whole mix's bound (`drop_bound`) stays within the budget:
    a `w8a8` file with 16-bit activations only where they are needed. With `weights`, the weight search of `search`
    then runs with the chosen activations fixed, in static mode (4 or 8 bits per layer), on what the budget has
    left. A start that does not fit is kept (nothing wider runs in integers) and its bound reported.

    Args:
        simulator: the model's `Simulator` (with calibration images).
        x_val, y_val, max_drop, z, lowest, chose_on: as `search` takes them.
        weights: also lower weight widths after the activations ("both").

    Returns:
        The `Mix`: `activation_bits` {tensor: 8 or 16} over `Simulator.activation_tensors`, `bits` the kernels'.
    """
    max_drop = check_budget(max_drop)
    y_val = np.asarray(y_val).reshape(-1)
    score = _Scorer(simulator, x_val, y_val, z)
    bits = simulator.uniform(8)
    start = simulator.activation_widths(ACTIVATION_LADDER[0])
    tried: list[dict] = []

    def saving(tensor: str, width: int | None, lower: int | None) -> float:
        return simulator.activation_size(tensor) * (width - lower) / 8

    descent = _Descent("activations", lambda tensor, width: _lower_activation(width), saving,
                       lambda widths: score(bits, widths), start)
    activations, result = descent.run(dict(start), score(bits, start), max_drop, tried)
    if weights:
        bits, result = _weight_descent(simulator, score, activations, "static", lowest).run(bits, result, max_drop,
                                                                                          tried)
    return _mix(simulator, score, bits, activations, result, max_drop, chose_on, tried,
                search="both" if weights else "activations")


def _mix(simulator: Simulator, score: _Scorer, bits: dict[str, int | None], activations: dict[str, int | None],
         result: tuple[float, float, int, int], max_drop: float, chose_on: str, tried: list[dict], *, search: str,
         latency_us: float | None = None, latency_budget_us: float | None = None) -> Mix:
    """The `Mix` of chosen widths and their score on the images that chose."""
    accuracy, bound, lost, gained = result
    return Mix(bits=bits, max_drop_pp=max_drop, float_accuracy=float(np.mean(score.float_right)), accuracy=accuracy,
               drop_bound_pp=bound, lost=lost, gained=gained, z=score.z, kernel_bytes=kernel_bytes(simulator, bits),
               n=len(score.y), evaluations=score.evaluations, chose_on=chose_on, latency_us=latency_us,
               latency_budget_us=latency_budget_us, tried=tried, search=search, activation_bits=activations,
               activation_bytes=activation_bytes(simulator, activations) if activations else None)


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
