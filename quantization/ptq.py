"""Post-training quantization options (activation ranges, CLE, AdaRound, bias correction) for the simulator and
the LiteRT exports.

`PTQOptions` names what is on; `PTQWeights` is the simulator's weight quantizer with them (`simulator` builds a
`quantization.sweep.Simulator` that uses it and the chosen activation ranges); `prepared_model` writes the same
quantized kernels and corrected biases into a float Keras copy, which the LiteRT quantizer (or the TF converter at
8 bits) then quantizes without changing them (each channel's grid is scaled to its max, and the copy's kernels
already lie on that grid), so the files carry exactly what was simulated. `variant_source` is that copy for one
variant's widths (`quantization.pipeline.quantize` exports it), `carried_by` says which options a variant's file
carries and `result` records it all for the report (`quantization.results.PTQResult`). Activation ranges reach
static files through `quantization.ranges`.
"""
import dataclasses
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Hashable, Iterable, Mapping

import numpy as np

from kdeep.errors import QuantizationError
from quantization import bias_correction
from quantization.adaround import ITERATIONS, adaround_steps
from quantization.equalization import equalize
from quantization.layer_inputs import BATCH, InputStats, flat_kernel, recorder, statistics, supported
from quantization.plan import LayerPlan, find_layer, walk
from quantization.ranges import check_method
from quantization.results import PTQResult
from quantization.sweep import KernelQuantizer, Simulator
from quantization.taps import Recorder
from quantization.variants import VARIANTS, Variant, layer_widths

ADAROUND_BITS = (2, 3, 4)  # widths AdaRound learns the rounding for (wider ones round to nearest)
CALIBRATION_IMAGES = 256  # calibration images whose layer inputs AdaRound and bias correction see
KEEP_BYTES = 2 ** 29  # the float model's layer inputs over them are recorded once when they fit (ResNet-20: 150 MB)


@dataclass(frozen=True)
class PTQOptions:
    """Which post-training algorithms run (all off: plain min/max and round-to-nearest, as before).

    Attributes:
        ranges: activation ranges, "minmax", "percentile" or "mse" (`quantization.ranges`).
        equalize: cross-layer equalization (`quantization.equalization`).
        adaround: AdaRound for 2-4-bit weights (`quantization.adaround`).
        bias_correction: remove each layer's mean output shift (`quantization.bias_correction`).
        adaround_iterations: AdaRound's full-batch Adam steps per layer and width.
        calibration_images: calibration images for AdaRound's and bias correction's layer statistics.
    """

    ranges: str = "minmax"
    equalize: bool = False
    adaround: bool = False
    bias_correction: bool = False
    adaround_iterations: int = ITERATIONS
    calibration_images: int = CALIBRATION_IMAGES

    def __post_init__(self) -> None:
        check_method(self.ranges)
        if self.adaround_iterations < 1 or self.calibration_images < 1:
            raise QuantizationError("AdaRound iterations and PTQ calibration images must be at least 1; "
                                    f"got {self.adaround_iterations} and {self.calibration_images}")

    @property
    def names(self) -> list[str]:
        """The options that are on, as the report names them (e.g. ["ranges=mse", "adaround(500 it)"])."""
        names = [] if self.ranges == "minmax" else [f"ranges={self.ranges}"]
        names += ["cle"] if self.equalize else []
        names += [f"adaround({self.adaround_iterations} it)"] if self.adaround else []
        names += ["bias_correction"] if self.bias_correction else []
        return names

    @property
    def weights_on(self) -> bool:
        """True when a weight algorithm (CLE, AdaRound, bias correction) is on: kernels then come from `PTQWeights`."""
        return self.equalize or self.adaround or self.bias_correction

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, with `names`."""
        return {**dataclasses.asdict(self), "names": self.names}


class PTQWeights(KernelQuantizer):
    """Kernels (and corrected biases) per layer and width, with the options' weight algorithms.

    Args:
        model: the float Keras model (never modified; with `equalize` the simulated model is its equalized copy).
        calibration: float calibration images (the first `options.calibration_images` are used).
        options: the `PTQOptions`.
    """

    def __init__(self, model: Any, calibration: np.ndarray | None, options: PTQOptions) -> None:
        self.options = options
        self.equalized = equalize(model) if options.equalize else None
        super().__init__(self.equalized.model if self.equalized else model)
        needs_data = options.adaround or options.bias_correction
        if needs_data and (calibration is None or len(calibration) == 0):
            raise QuantizationError("AdaRound and bias correction need calibration images (training data)")
        self._images = None if calibration is None else np.asarray(calibration[:options.calibration_images])
        self._float_stats: dict | None = None
        self._recorder: Recorder | None = None  # the float model's layer inputs (P) ...
        self._kept: list[dict] = []  # ... and their values per batch when they fit in KEEP_BYTES
        self._copy: Recorder | None = None  # a copy whose earlier layers are quantized (Q) ...
        self._copy_versions: dict[str, Hashable] = dict.fromkeys(self.plan.keys)  # ... at these `version`s
        self.roundings: dict[tuple[str, Hashable], dict] = {}  # AdaRound's errors per (layer, version)
        self.seconds = {"statistics": 0.0, "adaround": 0.0}

    def _learns(self, key: str, bits: int | None) -> bool:
        """True when AdaRound learns planned layer `key`'s rounding at `bits`."""
        return (self.options.adaround and bits in ADAROUND_BITS
                and supported(self.plan[key].layer(self.model)))

    def version(self, key: str, bits: int | None, widths: Mapping[str, int | None] | None = None) -> Hashable:
        """The width, and for a rounding AdaRound learns also the earlier planned layers' widths in `widths` (its
        inputs come through them; None: all at `bits`)."""
        return (bits, tuple(self._before(key, bits, widths).values())) if self._learns(key, bits) else bits

    def _before(self, key: str, bits: int, widths: Mapping[str, int | None] | None) -> dict[str, int | None]:
        """{plan key: width} of the planned layers before `key` in a model at `widths` (None: all at `bits`)."""
        earlier = self.plan.keys[:self.plan.keys.index(key)]
        return {other: bits if widths is None else widths.get(other) for other in earlier}

    def statistics(self, key: str, bits: int | None = None,
                   widths: Mapping[str, int | None] | None = None) -> InputStats:
        """The `InputStats` of supported planned layer `key`: its inputs through the float model (`bits` None: bias
        correction's mean, the same for every width; computed once) or, for a width `bits`, also through a copy
        whose earlier planned layers are at their `widths` (None: all at `bits`; AdaRound's asymmetric error: each
        layer then makes up for the error that reaches it; computed each time it is asked for, which the kernel
        cache makes once per `version`: a search may ask for hundreds, each K x K)."""
        if bits is None:
            if self._float_stats is None:
                start = time.perf_counter()
                floats = self._float_inputs(list(self.float_kernels))
                layers = {other: self.plan[other].layer(self.model) for other in self.float_kernels
                          if other in self._recorder.sides}
                self._float_stats = statistics(layers, floats)
                self.seconds["statistics"] += time.perf_counter() - start
            return self._float_stats[key]
        quantized = self._quantized_before(self._before(key, bits, widths))
        start = time.perf_counter()  # the earlier layers' own work is timed where it happens
        layer = {key: self.plan[key].layer(self.model)}
        twins = None if quantized is None else quantized(self._images, [key])
        stats = statistics(layer, self._float_inputs([key]), twins)[key]
        self.seconds["statistics"] += time.perf_counter() - start
        return stats

    def _float_inputs(self, keys: list[str]) -> Iterable[dict]:
        """Per calibration batch, the float model's inputs to supported layers `keys` (P): every supported layer's
        recorded in one pass and kept when they take at most `KEEP_BYTES`, else recorded again for `keys`."""
        if self._recorder is None:
            self._recorder = recorder(self.model)
            batches = -(-len(self._images) // BATCH)
            for values in self._recorder(self._images):
                self._kept.append(values)
                if sum(value.nbytes for value in values.values()) * batches > KEEP_BYTES:
                    self._kept = []
                    break
        return self._kept or self._recorder(self._images, keys)

    def _quantized_before(self, before: Mapping[str, int | None]) -> Recorder | None:
        """The `recorder` of the copy of the model with the planned layers `before` ({plan key: width}, in plan
        order: those before the layer asked for) at their widths (None when there are none: Q = P). One copy: a
        layer is set only when its `version` changes (a layer's input depends on earlier layers only, so the later
        ones may hold anything)."""
        if not before:
            return None
        if self._copy is None:
            self._copy = recorder(self.model)
        for other, bits in before.items():
            version = self.version(other, bits, before)
            if self._copy_versions[other] != version:
                for path, attribute, value in self.assignments(other, bits, before):
                    getattr(find_layer(self._copy.model, path), attribute).assign(value)
                self._copy_versions[other] = version
        return self._copy

    def _quantize(self, key: str, bits: int, widths: Mapping[str, int | None] | None) -> np.ndarray:
        """AdaRound's kernel at 2-4 bits for supported layers (each channel's grid step learnt with its rounding for
        the layer's output error, not the weights' own: `adaround_steps`), else round to nearest."""
        if not self._learns(key, bits):
            return super()._quantize(key, bits, widths)
        kernel = self.float_kernels[key]
        stats = self.statistics(key, bits, widths)
        start = time.perf_counter()
        rounding, scale = adaround_steps(flat_kernel(kernel), bits, stats, iterations=self.options.adaround_iterations)
        self.seconds["adaround"] += time.perf_counter() - start
        self.roundings[(key, self.version(key, bits, widths))] = {"nearest_error": rounding.nearest_error,
                                                                   "error": rounding.error, "flipped": rounding.flipped}
        return (rounding.integers * scale).reshape(kernel.shape).astype(np.float32)

    def assignments(self, key: str, bits: int | None, widths: Mapping[str, int | None] | None = None
                    ) -> list[tuple[tuple[str, ...], str, np.ndarray]]:
        """The kernel at `bits` in a model at `widths`, plus the corrected bias or batch-norm mean with bias
        correction on."""
        values = super().assignments(key, bits, widths)
        where = bias_correction.target(self.model, key) if self.options.bias_correction else None
        if where is None or not supported(self.plan[key].layer(self.model)):
            return values
        target, attribute, sign = where
        path = tuple(target.split("/"))
        float_value = np.asarray(getattr(find_layer(self.model, path), attribute))
        if bits is None:
            return [*values, (path, attribute, float_value)]
        shift = bias_correction.output_shift(self.float_kernels[key], values[0][2], self.statistics(key).mean)
        return [*values, (path, attribute, float_value + sign * shift)]

    def summary(self, carried: Mapping[str, list[str]] | None = None) -> PTQResult:
        """What the algorithms did: options, CLE pairs, AdaRound's errors against nearest, seconds, and `carried`
        ({variant: the options its file carries}, `carried_by`)."""
        return PTQResult(
            options=self.options.to_dict(), carried=dict(carried or {}),
            cle_pairs=[list(pair[:2]) for pair in self.equalized.pairs] if self.equalized else [],
            adaround=[{"layer": layer, "bits": bits, "earlier": _counts(earlier), **errors}
                      for (layer, (bits, earlier)), errors in self.roundings.items()],
            seconds=dict(self.seconds))


def _counts(widths: Iterable[int | None]) -> dict[str, int]:
    """{width ("float" for None): how many} of a rounding's earlier layers."""
    return dict(Counter("float" if bits is None else str(bits) for bits in widths))


def weights_for(model: Any, calibration: np.ndarray | None, options: PTQOptions) -> PTQWeights | None:
    """The weight algorithms the options ask for (AdaRound, bias correction, CLE), or None for plain rounding."""
    return PTQWeights(model, calibration, options) if options.weights_on else None


def simulator(model: Any, calibration: np.ndarray | None, options: PTQOptions | None = None,
              weights: KernelQuantizer | None = None) -> Simulator:
    """A `Simulator` of `model` with the options' weight algorithms (`weights`, when already made for these
    options: AdaRound's roundings are then shared) and activation ranges."""
    options = options or PTQOptions()
    weights = weights or weights_for(model, calibration, options)
    return Simulator(model, calibration, weights=weights, ranges=options.ranges)


def variant_widths(variant: Variant, layers: LayerPlan) -> dict[str, int | None] | None:
    """{plan key: width} a variant's file stores each planned layer at, for the weight algorithms to prepare; None
    for the variants they do not reach (float32, float16, and QAT, which trains its own weights)."""
    if variant.qat or variant.weight_bits > 8:
        return None
    if variant.backend == "aiedge":
        return layer_widths(variant, layers)
    return layers.dynamic_twin(8) if not variant.representative else {key: 8 for key in layers.keys}


def carried_by(options: PTQOptions, variant: Variant | None, widths: Mapping[str, int | None] | None) -> list[str]:
    """The options a file carries: activation ranges where activations are calibrated (the converter's int8, the
    LiteRT quantizer's static variants), the weight algorithms where weights are quantized at `widths`
    (`variant_widths`; AdaRound only where a layer gets 2-4 bits); QAT variants carry none.

    Args:
        options: the run's options.
        variant: the file's variant (None: the mixed-precision file, dynamic range).
        widths: {plan key: width} its layers are stored at (None: its weights are not prepared).
    """
    if variant is not None and variant.qat:
        return []
    static = variant is not None and variant.representative and (variant.backend == "aiedge"
                                                                  or variant.activation_bits == 8)
    names = [f"ranges={options.ranges}"] if static and options.ranges != "minmax" else []
    if widths is None:
        return names
    names += ["cle"] if options.equalize else []
    low = any(bits in ADAROUND_BITS for bits in widths.values())
    names += [f"adaround({options.adaround_iterations} it)"] if options.adaround and low else []
    return names + (["bias_correction"] if options.bias_correction else [])


def result(options: PTQOptions, weights: KernelQuantizer | None, names: list[str], layers: LayerPlan, *,
           mixed: Mapping[str, int | None] | None = None) -> PTQResult | None:
    """The report's record of the options (None when all are off): what the weight algorithms did and, per scored
    variant (`VARIANTS` names, and "mixed" with its widths `mixed`), the options its file carries."""
    if not options.names:
        return None
    carried = {name: carried_by(options, VARIANTS.get(name), mixed if name == "mixed" else
                                variant_widths(VARIANTS[name], layers)) for name in names}
    return weights.summary(carried) if isinstance(weights, PTQWeights) else PTQResult(options.to_dict(), carried)


def variant_source(weights: KernelQuantizer | None, variant: Variant) -> Any:
    """The float model a variant's file is made from with the weight algorithms: `prepared_model` at the widths
    the file stores (its kernels already on their grids: exported unclipped); None when no weight algorithm is on
    or the variant is not reached (`variant_widths`)."""
    if not isinstance(weights, PTQWeights):
        return None
    widths = variant_widths(variant, weights.plan)
    return None if widths is None else prepared_model(weights, widths)


def with_ends_at(simulator: Simulator, weight_bits: int | None, activation_bits: int | None,
                 bits: int = 8) -> tuple[dict, dict]:
    """(weight widths, activation widths) with the first and last kernel layers at `bits`, as BRECQ keeps them:
    their weights, their input tensors and every tensor from the last kernel layer on (the output)."""
    layers = simulator.layers
    weights = {**simulator.uniform(weight_bits), layers[0]: bits, layers[-1]: bits}
    activations = simulator.activation_widths(activation_bits)
    if activation_bits is not None:
        order = ["/".join(path) for path, _ in walk(simulator.model)]
        last = order.index(layers[-1])
        ends = {simulator.input_tensor(layers[0]), simulator.input_tensor(layers[-1])}
        ends |= {name for name in activations if name in order and order.index(name) >= last}
        activations.update({name: bits for name in ends})
    return weights, activations


def prepared_model(weights: KernelQuantizer, weight_bits: Mapping[str, int | None],
                   default_bits: int | None = None) -> Any:
    """A float copy of `weights.model` holding the quantized kernels (and corrected biases) at these widths.

    Exported to a float .tflite and quantized by the LiteRT quantizer at the same widths, it gives a file whose
    weights are the simulator's (the quantizer's max-scaled grid of an on-grid kernel is the kernel's own grid).

    Args:
        weights: the simulator's weight quantizer (`Simulator.weights`).
        weight_bits: {plan key: width or None}; planned layers not named get `default_bits`.
        default_bits: width of the other kernel layers (None: float).

    Returns:
        A clone with the same layer names.
    """
    import keras

    copy = keras.models.clone_model(weights.model)
    copy.set_weights(weights.model.get_weights())
    widths = {key: weight_bits.get(key, default_bits) for key in weights.float_kernels}
    widths = {key: None if bits == 1 else bits for key, bits in widths.items()}  # 1 bit: no LiteRT grid, float
    for key, bits in widths.items():
        if bits is not None:
            for path, attribute, value in weights.assignments(key, bits, widths):
                getattr(find_layer(copy, path), attribute).assign(value)
    return copy
