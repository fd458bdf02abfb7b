"""The LiteRT quantizer backend: sub-8-bit and per-layer LiteRT variants made from kdeep's float32 .tflite.

Public functions (the signatures the sweep, sensitivity and search modules code against):

    layer_ops(model, float_tflite) -> {plan key: LayerOp}
    op_activation_widths(float_tflite, widths) -> {op scope: activation width}
    quantize_tflite(float_tflite, out_path, *, weight_bits, default_bits, activation_bits=None, model=None,
                    calibration=None, dynamic=False, activation_widths=None) -> Path
    tensor_snr(float_tflite, quant_tflite, images, model) -> [{"layer", "op", "snr_db"}, ...]
    weight_values(quant_tflite, op, image) -> the float weights a weight-only file feeds to an op

Layers are named by their key in the layer plan (`quantization.plan`: the Keras name, `outer/inner` inside a nested
model), and every width is checked against the plan's rules before a recipe is built: the widths the LiteRT
quantizer's policy has for the op in its mode, less those LiteRT runs wrongly (2-bit CONV_2D). `dynamic` selects
dynamic range (activations quantized on the fly) over weight-only (weights dequantized to float before each op).
2-bit weights exist in the LiteRT quantizer only as dynamic-range configs, so a 2-bit layer is always dynamic, and
per output channel: LiteRT 2.3.0 cannot run blockwise int2 (XNNPACK: "unsupported datatype (INT2)"; its builtin
kernel, without XNNPACK, runs it but scored 13% on MNIST where channelwise int2 scored 49%, so blockwise int2 is not
offered). The weights are quantized on grids spanning their max; the pipeline clips them first below 5 bits
(`quantization.clipping`). `model` is required when `weight_bits` names layers (keys are mapped to TFLite ops
through it).
"""
import dataclasses
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from kdeep.errors import QuantizationError, reason
from kdeep.io import write_atomic
from kdeep.quiet import silenced
from quantization import litert, ranges
from quantization.plan import QUANTIZER_OP_NAMES, check_width, plan

ACTIVATION_BITS = (8, 16)
# TFLite ops whose second input is a weight tensor the LiteRT quantizer can quantize.
WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")
SNR_IMAGES = 64


@dataclasses.dataclass(frozen=True)
class LayerOp:
    """One weighted TFLite op of a float .tflite.

    Attributes:
        op: the TFLite op name (CONV_2D, FULLY_CONNECTED, ...).
        scope: the LiteRT quantizer's scope of the op (its output tensor names joined by ';', with a trailing ';').
        output: the op's (first) output tensor name.
        weight: the weight tensor's name; weight_shape: its shape.
    """

    op: str
    scope: str
    output: str
    weight: str
    weight_shape: tuple[int, ...]

    @property
    def regex(self) -> str:
        """A regex that matches this op's scope and no other."""
        return f"^{re.escape(self.scope)}$"


def weighted_ops(float_tflite: str | Path) -> list[LayerOp]:
    """The weighted ops of a float .tflite, in graph order.

    Raises:
        ArtifactError: the file is missing or not a LiteRT model.
    """
    runner = litert.open_model(float_tflite, num_threads=1)
    tensors = {t["index"]: t for t in runner.tensor_details()}
    ops = []
    for op in runner.ops():
        if op["op_name"] not in WEIGHTED_OPS or len(op["inputs"]) < 2:
            continue
        outputs = [tensors[i]["name"] for i in op["outputs"] if i >= 0 and tensors[i]["name"]]
        weight = tensors[op["inputs"][1]]
        ops.append(LayerOp(op["op_name"], ";".join(outputs) + ";", outputs[0], weight["name"],
                           tuple(int(d) for d in weight["shape"])))
    return ops


def _matches(path: tuple[str, ...], segments: list[str]) -> int | None:
    """The index of the name-scope segment where `path` (outer model names, then the layer) ends, its names found
    in order; else None. A segment names a layer with or without one `_N` suffix (TensorFlow's retrace suffix:
    `fc1` -> `fc1_1`)."""
    position = 0
    for index, segment in enumerate(segments):
        if path[position] in (segment, re.sub(r"_\d+$", "", segment)):
            position += 1
            if position == len(path):
                return index
    return None


def _owner(op: LayerOp, entries: list[Any]) -> Any:
    """The planned layer whose path the op's weight name (else an output name) carries and whose kernel size
    matches the op's weight tensor; None when no entry does."""
    size = int(np.prod(op.weight_shape))
    for full in (op.weight, *op.scope.split(";")):
        segments = full.split("/") if full else []
        found = [(index, entry) for entry in entries if entry.size == size
                 and (index := _matches(entry.path, segments)) is not None]
        if found:
            return min(found, key=lambda pair: pair[0])[1]
    return None


def layer_ops(model: Any, float_tflite: str | Path) -> dict[str, LayerOp]:
    """Maps each planned Keras layer (`quantization.plan`, nested models included) to its weighted op in the float
    .tflite converted from `model`.

    A layer's path (`member1/fc1`) appears, in order, among the name-scope segments of the op's weight or output
    tensor names (`ensemble_1/member1_1/fc1_1/MatMul`), and its kernel's size equals the op's weight tensor's.

    Args:
        model: the Keras model the .tflite was converted from.
        float_tflite: its float32 .tflite (variant `float32`).

    Returns:
        {plan key: LayerOp}, in graph order of the ops.

    Raises:
        QuantizationError: a layer matches no op, or an op no layer (the message names it).
    """
    left = list(plan(model))
    mapping: dict[str, LayerOp] = {}
    for op in weighted_ops(float_tflite):
        entry = _owner(op, left)
        if entry is None:
            raise QuantizationError(f"{op.op} op {op.output!r} of {float_tflite} matches no Keras layer of "
                                    f"{model.name!r}; pass the .tflite converted from this model")
        mapping[entry.key] = op
        left.remove(entry)
    if left:
        raise QuantizationError(f"Keras layer(s) {', '.join(e.key for e in left)} of {model.name!r} have no weighted "
                                f"op in {float_tflite}; pass the .tflite converted from this model")
    return mapping


def _tensor_key(names: list[str], keys: list[str]) -> str | None:
    """The activation tensor key (`Simulator.activation_tensors`) an op's output names carry (the last in model
    order when a fused op carries several, e.g. a convolution and its ReLU), or None."""
    found = None
    for key in keys:
        if any(_matches(tuple(key.split("/")), name.split("/")) is not None for name in names):
            found = key
    return found


def op_activation_widths(float_tflite: str | Path, widths: Mapping[str, int]) -> dict[str, int]:
    """{op scope: activation width} for every op of a float .tflite, from a width per activation tensor.

    An op's output carries the tensor key its names match (`quantization.sweep.Simulator.activation_tensors`;
    `INPUT` is the model input; the model output, which the converter renames, is the last tensor key), else its
    first input's (pooling, padding, reshape: they keep their input's grid).
    LiteRT runs an op with one width for its inputs and outputs (int16x8 kernels or int8 ones) and requantizes
    between ops of different widths, so an op gets the widest width of the tensors it reads or writes: every tensor
    chosen at 16 bits is computed and read at 16 bits. A tensor chosen at 8 bits that lies between two 16-bit ops
    is carried at 16 bits (more precise than simulated, never less).

    Args:
        float_tflite: the float32 .tflite.
        widths: {tensor key: 8 or 16} over every activation tensor.
    """
    from quantization.sweep import INPUT  # the simulator's name for the model input

    keys = [key for key in widths if key != INPUT]
    runner = litert.open_model(float_tflite, num_threads=1)
    names = {t["index"]: t["name"] for t in runner.tensor_details()}
    carried = {runner.input_detail()["index"]: INPUT}
    output = runner.output_detail()["index"]
    result = {}
    for op in runner.ops():
        outputs = [i for i in op["outputs"] if i >= 0]
        read = [carried[i] for i in op["inputs"] if i in carried]
        key = (_tensor_key([names[i] for i in outputs], keys) or (keys[-1] if output in outputs and keys else None)
               or (read[0] if read else None))
        for index in outputs:
            carried[index] = key
        result[";".join(names[i] for i in outputs) + ";"] = max(widths.get(k) or 0 for k in (key, *read))
    return result


def _mode(bits: int | None, activation_bits: int | None, dynamic: bool) -> str:
    """The quantization mode of one op: static with integer activations, dynamic range (always at 2 bits, the only
    2-bit configs the LiteRT quantizer has), else weight-only."""
    if activation_bits is not None:
        return "static"
    return "dynamic" if bits == 2 or dynamic else "weight_only"


def _op_bits(ops: list[LayerOp], weight_bits: dict[str, int | None], default_bits: int | None,
             model: Any, float_tflite: Path) -> list[tuple[LayerOp, str, int | None]]:
    """[(op, layer label, bits)] for every weighted op: the width named for its planned layer, else `default_bits`."""
    if not weight_bits:
        return [(op, op.output, default_bits) for op in ops]
    if model is None:
        raise QuantizationError("weight_bits names Keras layers; pass model= (the Keras model the .tflite came from)")
    mapping = layer_ops(model, float_tflite)
    unknown = sorted(weight_bits.keys() - mapping.keys())
    if unknown:
        raise QuantizationError(f"weight_bits names {', '.join(unknown)}, which are not weighted layers of "
                                f"{model.name!r}; valid: {', '.join(mapping)}")
    names = {op: name for name, op in mapping.items()}
    return [(op, names.get(op, op.output), weight_bits.get(names.get(op), default_bits)) for op in ops]


def _recipe(widths: list[tuple[LayerOp, str, int | None]], activation_bits: int | None, dynamic: bool,
            float_io: bool = False, op_activations: Mapping[str, int] | None = None) -> Any:
    """Builds the LiteRT quantizer recipe, one rule per weighted op, after checking every width against the plan's
    rules (the quantizer's policy, less what LiteRT runs wrongly); `float_io`: the model's input and output stay
    float32, with QUANTIZE and DEQUANTIZE ops at the edges; `op_activations`: {op scope: activation width} for
    ops whose activations differ from `activation_bits` (`op_activation_widths`).

    Raises:
        QuantizationError: a width LiteRT does not take for an op in its mode (the message names the layer).
    """
    from litert_quantizer import algorithm_manager, qtyping, recipe_manager

    op_activations = op_activations or {}

    def activations(op: LayerOp) -> int | None:
        return op_activations.get(op.scope, activation_bits)

    for op, label, bits in widths:
        check_width(label, op.op, bits, _mode(bits, activations(op), dynamic), activations(op))
    names = qtyping.TFLOperationName
    manager = recipe_manager.RecipeManager()
    if activation_bits is not None:  # every other supported op (pooling, reshape, softmax) runs on integers too
        manager.add_static_config(".*", names.ALL_SUPPORTED, activation_bits, 8)
        for scope, width in op_activations.items():  # later rules win: these ops run at their own width
            if width != activation_bits:
                manager.add_static_config(f"^{re.escape(scope)}$", names.ALL_SUPPORTED, width, 8)
    for op, label, bits in widths:
        operation = names(QUANTIZER_OP_NAMES.get(op.op, op.op))
        mode = _mode(bits, activations(op), dynamic)
        if bits is None:
            manager.add_quantization_config(op.regex, operation,
                                            algorithm_key=algorithm_manager.AlgorithmName.NO_QUANTIZE)
        elif mode == "static":
            manager.add_static_config(op.regex, operation, activations(op), bits)
        elif mode == "dynamic":
            manager.add_dynamic_config(op.regex, operation, bits, qtyping.QuantGranularity.CHANNELWISE)
        else:
            manager.add_weight_only_config(op.regex, operation, bits)
    for edge in (names.INPUT, names.OUTPUT) if float_io and activation_bits is not None else ():
        # ".+": a scope of its own, added last, so that no op's rule above overrides the float edges
        manager.add_quantization_config(".+", edge, algorithm_key=algorithm_manager.AlgorithmName.NO_QUANTIZE)
    return manager.get_quantization_recipe()


def quantize_tflite(float_tflite: str | Path, out_path: str | Path, *, weight_bits: dict[str, int | None],
                    default_bits: int | None, activation_bits: int | None = None, model: Any = None,
                    calibration: np.ndarray | None = None, dynamic: bool = False, float_io: bool = False,
                    activation_ranges: str = "minmax", activation_widths: Mapping[str, int] | None = None) -> Path:
    """Quantizes a float .tflite with the LiteRT quantizer, with a weight width per planned layer (and, static, an
    activation width per tensor).

    Args:
        float_tflite: the float32 .tflite (kdeep's `float32` variant).
        out_path: the quantized .tflite (written atomically).
        weight_bits: {plan key: 2, 4, 8 or None (float)}; weighted layers not named get `default_bits`. A width
            the layer's op does not take in its mode (`quantization.plan`) is refused before anything is written.
        default_bits: width for the other weighted layers (None: float).
        activation_bits: None keeps activations float; 8 or 16 quantizes them statically (needs `calibration`).
        model: the Keras model the .tflite came from (required when `weight_bits` names layers).
        calibration: float images shaped like the model input, for static activations.
        dynamic: with float activations, dynamic range (True) or weight-only (False) for 4- and 8-bit layers.
        float_io: with integer activations, keep a float32 input and output (QUANTIZE and DEQUANTIZE at the edges)
            instead of integer ones.
        activation_ranges: how static activations' ranges come from the calibration images
            (`quantization.ranges`): "minmax" (over every image, as the simulator and the TF converter calibrate,
            not the quantizer's moving average), "percentile" or "mse" (at the narrowest activation width).
        activation_widths: {activation tensor key (`quantization.sweep.Simulator.activation_tensors`): 8 or 16}
            over every tensor, for a static file whose ops run at different widths (`op_activation_widths`);
            `activation_bits` is then the narrowest of them.

    Returns:
        `out_path`.

    Raises:
        QuantizationError: a bad width, an unknown layer, a file the LiteRT quantizer cannot read, or a failed
            quantization (the message gives the LiteRT quantizer's reason).
    """
    float_tflite, out_path = Path(float_tflite), Path(out_path)
    ranges.check_method(activation_ranges)
    op_activations = None
    if activation_widths:
        if set(activation_widths.values()) - set(ACTIVATION_BITS):
            raise QuantizationError(f"activation widths {sorted(set(activation_widths.values()))} are not all "
                                    f"supported; use {' or '.join(map(str, ACTIVATION_BITS))} per tensor")
        activation_bits = min(activation_widths.values())
        op_activations = op_activation_widths(float_tflite, activation_widths)
    if activation_bits is not None and activation_bits not in ACTIVATION_BITS:
        raise QuantizationError(f"{activation_bits}-bit activations are not supported; use 8, 16 or None (float)")
    if activation_bits is not None and (calibration is None or len(calibration) == 0):
        raise QuantizationError(f"{activation_bits}-bit activations need calibration images (training data)")
    recipe = _recipe(_op_bits(weighted_ops(float_tflite), weight_bits, default_bits, model, float_tflite),
                     activation_bits, dynamic, float_io, op_activations)
    from litert_quantizer import quantizer

    try:
        with silenced():
            engine = quantizer.Quantizer(float_tflite, recipe)
    except Exception as error:  # flatbuffer parsing raises many types
        raise QuantizationError(f"the LiteRT quantizer cannot read {float_tflite} ({reason(error)}); "
                                "pass a float32 .tflite written by kdeep quantize") from error
    try:
        with silenced():
            calibrated = None
            if engine.need_calibration:
                key, name = litert.open_model(float_tflite).signature()
                images = np.asarray(calibration, dtype=np.float32)
                # One image gives the quantizer's result its entries; `litert_ranges` then replaces every activation
                # range with the range over all the images (the quantizer's own pass over each image, one per step,
                # took ~6 s of a 500-image calibration and its moving average was discarded anyway).
                calibrated = engine.calibrate({key: [{name: images[:1]}]})
                calibrated = ranges.litert_ranges(float_tflite, calibrated, images, activation_bits,
                                                  activation_ranges)
            flatbuffer = bytes(engine.quantize(calibrated).quantized_model)
    except (ValueError, RuntimeError, KeyError, TypeError) as error:
        raise QuantizationError(f"the LiteRT quantizer failed on {float_tflite.name}: {reason(error)}") from error
    litert.check_runs(flatbuffer, out_path.name)
    return write_atomic(out_path, flatbuffer)


def weight_values(quant_tflite: str | Path, op: LayerOp, image: np.ndarray) -> np.ndarray:
    """The float weights a weight-only quantized file feeds to `op` (its DEQUANTIZE output), read after one invoke.

    Args:
        quant_tflite: a weight-only file made by `quantize_tflite` (tensor names kept from the float file).
        op: the op, from `layer_ops` on the float file.
        image: one input batch (float model inputs).

    Returns:
        The weights in TFLite's layout (output channel first).

    Raises:
        QuantizationError: the file has no op writing `op.output`.
    """
    runner = litert.open_model(quant_tflite, keep_tensors=True)
    runner.run(np.asarray(image, np.float32))
    names = {t["index"]: t["name"] for t in runner.tensor_details()}
    for candidate in runner.ops():
        if candidate["op_name"] == op.op and op.output in (names.get(i) for i in candidate["outputs"]):
            return runner.value(candidate["inputs"][1])
    raise QuantizationError(f"{quant_tflite} has no {op.op} op writing {op.output!r}")


def tensor_snr(float_tflite: str | Path, quant_tflite: str | Path, images: np.ndarray, model: Any) -> list[dict]:
    """Per-layer signal-to-noise ratio of a quantized model's layer outputs against the float model's.

    Args:
        float_tflite: the float32 .tflite; quant_tflite: a quantized one made from it (tensor names kept).
        images: float input images (at most `SNR_IMAGES` are used).
        model: the Keras model both came from (maps layers to ops).

    Returns:
        Rows {"layer": plan key, "op": TFLite op, "snr_db": 10 log10(signal power / error power)} in graph
        order (inf when the outputs are equal; nan where LiteRT's builtin kernels cannot run the quantized op, as
        for 2-bit convolutions); layers whose output tensor the quantized model renamed are left out.
    """
    mapping = layer_ops(model, float_tflite)
    images = np.asarray(images, dtype=np.float32)[:SNR_IMAGES]
    names = [op.output for op in mapping.values()]
    reference, quantized = litert.tensors(float_tflite, images, names), litert.tensors(quant_tflite, images, names)
    rows = []
    for layer, op in mapping.items():
        if op.output not in quantized:
            continue
        signal, noise = reference[op.output].astype(np.float64), quantized[op.output].astype(np.float64)
        error = float(np.sum((signal - noise) ** 2))
        with np.errstate(all="ignore"):
            snr = float("inf") if error == 0 else float(10 * np.log10(np.sum(signal ** 2) / error))
        rows.append({"layer": layer, "op": op.op, "snr_db": snr})
    return rows
