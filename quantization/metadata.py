"""TFLite Metadata for image classifiers, written and read with `flatbuffers` by the published schema.

Edge task APIs (MediaPipe Tasks' `ImageClassifier` on Android, iOS, web and Python) read a model's
`TFLITE_METADATA`: the input's colour space, size and NormalizationOptions, and the labels file associated
with the output. This module builds that flatbuffer (schema `metadata_schema.fbs`, file identifier `M001`),
stores it as a buffer of the model named in the model's `metadata` list, and appends the labels file as the
metadata convention does: a zip archive concatenated to the model file.

Why by hand: the schema's official writers are not installable beside kdeep (tflite-support is unmaintained and
pins protobuf < 4; mediapipe's metadata writers fail to import, and mediapipe pins absl-py ~= 2.3 where
tensorflow-model-optimization declares absl-py ~= 1.2). Its generated Python module is 3,000 lines for the
dozen tables an image classifier uses, so kdeep writes those tables with `flatbuffers.Builder`, naming each
field's slot (the position of the field in its table, fields counted from 0 in schema order, a union taking
two slots: its type, then its value). Flatbuffer schemas only ever append fields, so slots never move. The tests
read every file back with mediapipe's generated schema and run MediaPipe's `ImageClassifier` on it.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from kdeep.errors import QuantizationError

METADATA_NAME = "TFLITE_METADATA"  # the model's metadata entry edge runtimes look for
FILE_IDENTIFIER = b"M001"
MIN_PARSER_VERSION = "1.0.0"  # every field written here is in schema version 1.0.0
LABELS_FILE = "labels.txt"

# Enum and union values of metadata_schema.fbs.
TENSOR_AXIS_LABELS = 2  # AssociatedFileType
COLOR_SPACES = {"RGB": 1, "GRAYSCALE": 2}  # ColorSpaceType
FEATURE_PROPERTIES, IMAGE_PROPERTIES = 1, 2  # ContentProperties union
NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions union

# Field slots, per table, in schema order (a union's type sits in the slot before its value).
ASSOCIATED_FILE = dict(name=0, description=1, type=2)
IMAGE_SIZE = dict(width=0, height=1)
IMAGE_PROPERTIES_SLOTS = dict(color_space=0, default_size=1)
CONTENT = dict(content_properties_type=0, content_properties=1, range=2)
NORMALIZATION = dict(mean=0, std=1)
PROCESS_UNIT = dict(options_type=0, options=1)
STATS = dict(max=0, min=1)
TENSOR_METADATA = dict(name=0, description=1, dimension_names=2, content=3, process_units=4, stats=5,
                       associated_files=6)
SUBGRAPH_METADATA = dict(name=0, description=1, input_tensor_metadata=2, output_tensor_metadata=3)
MODEL_METADATA = dict(name=0, description=1, version=2, subgraph_metadata=3, author=4, license=5,
                      min_parser_version=7)


@dataclass(frozen=True)
class ImageClassifierMetadata:
    """What an image classifier's metadata says.

    Attributes:
        name, description, version, author, license: the model's fields.
        labels: one class name per output.
        image_size: (height, width) of the input image.
        color_space: "RGB" or "GRAYSCALE" (the input's channels).
        normalization: (mean, std) per channel for a float input: the tensor value is (pixel - mean) / std;
            None for an integer input, which takes pixels as they are.
        input_range: (min, max) of the input tensor's values (its stats).
    """

    name: str
    description: str
    version: str
    author: str
    license: str
    labels: tuple[str, ...]
    image_size: tuple[int, int]
    color_space: str
    normalization: tuple[tuple[float, ...], tuple[float, ...]] | None
    input_range: tuple[float, float]


def normalization_for(input_range: tuple[float, float], channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) that map uint8 pixels onto `input_range` (0 -> low, 255 -> high), per channel.

    (pixel - mean) / std = low + pixel * (high - low) / 255 gives std = 255 / (high - low), mean = -low * std.
    """
    low, high = (float(v) for v in input_range)
    std = 255.0 / (high - low)
    return (0.0 - low * std,) * channels, (std,) * channels


class _Writer:
    """A `flatbuffers.Builder` with helpers for the tables above (each returns the table's offset)."""

    def __init__(self) -> None:
        import flatbuffers

        self.builder = flatbuffers.Builder(1024)

    def strings(self, values: dict[str, str]) -> dict[str, int]:
        return {key: self.builder.CreateString(value) for key, value in values.items() if value}

    def floats(self, values: tuple[float, ...]) -> int:
        return self.builder.CreateNumpyVector(np.asarray(values, np.float32))

    def offsets(self, offsets: list[int]) -> int:
        self.builder.StartVector(4, len(offsets), 4)
        for offset in reversed(offsets):
            self.builder.PrependUOffsetTRelative(offset)
        return self.builder.EndVector()

    def table(self, slots: dict[str, int], offsets: dict[str, int],
              scalars: dict[str, tuple[str, int]] | None = None) -> int:
        """A table with offset fields `offsets` and scalar fields {field: (kind, value)}, kind "uint8"/"uint32"."""
        builder = self.builder
        builder.StartObject(max(slots.values()) + 1)
        for field, offset in offsets.items():
            builder.PrependUOffsetTRelativeSlot(slots[field], offset, 0)
        for field, (kind, value) in (scalars or {}).items():
            {"uint8": builder.PrependUint8Slot, "uint32": builder.PrependUint32Slot}[kind](slots[field], value, 0)
        return builder.EndObject()

    def labels_file(self) -> int:
        names = self.strings({"name": LABELS_FILE, "description": "Labels for the classes the model can recognise"})
        return self.table(ASSOCIATED_FILE, names, {"type": ("uint8", TENSOR_AXIS_LABELS)})

    def input_tensor(self, meta: ImageClassifierMetadata) -> int:
        height, width = meta.image_size
        size = self.table(IMAGE_SIZE, {}, {"width": ("uint32", width), "height": ("uint32", height)})
        properties = self.table(IMAGE_PROPERTIES_SLOTS, {"default_size": size},
                                {"color_space": ("uint8", COLOR_SPACES[meta.color_space])})
        content = self.table(CONTENT, {"content_properties": properties},
                             {"content_properties_type": ("uint8", IMAGE_PROPERTIES)})
        fields = {"content": content}
        if meta.normalization is not None:
            mean, std = meta.normalization
            options = self.table(NORMALIZATION, {"mean": self.floats(mean), "std": self.floats(std)})
            unit = self.table(PROCESS_UNIT, {"options": options}, {"options_type": ("uint8", NORMALIZATION_OPTIONS)})
            fields["process_units"] = self.offsets([unit])
        low, high = meta.input_range
        fields["stats"] = self.table(STATS, {"max": self.floats((high,)), "min": self.floats((low,))})
        kind = "float pixels, normalized" if meta.normalization is not None else "uint8 pixels"
        fields.update(self.strings({"name": "image", "description": f"Input image ({meta.color_space}, {kind}) "
                                    f"of {width}x{height}"}))
        return self.table(TENSOR_METADATA, fields)

    def output_tensor(self, meta: ImageClassifierMetadata) -> int:
        self.builder.StartObject(0)  # FeatureProperties: a table with no fields
        features = self.builder.EndObject()
        content = self.table(CONTENT, {"content_properties": features},
                             {"content_properties_type": ("uint8", FEATURE_PROPERTIES)})
        fields = {"content": content, "stats": self.table(STATS, {"max": self.floats((1.0,)),
                                                                  "min": self.floats((0.0,))}),
                  "associated_files": self.offsets([self.labels_file()])}
        fields.update(self.strings({"name": "probabilities",
                                    "description": f"Probabilities of the {len(meta.labels)} labels respectively"}))
        return self.table(TENSOR_METADATA, fields)


def metadata_flatbuffer(meta: ImageClassifierMetadata) -> bytes:
    """The `ModelMetadata` flatbuffer (identifier M001) of an image classifier: one subgraph, the input image
    with its properties and normalization, the probabilities with the labels file."""
    writer = _Writer()
    inputs, outputs = writer.offsets([writer.input_tensor(meta)]), writer.offsets([writer.output_tensor(meta)])
    subgraph = writer.table(SUBGRAPH_METADATA, {"input_tensor_metadata": inputs, "output_tensor_metadata": outputs,
                                                **writer.strings({"name": "image_classifier"})})
    fields = writer.strings({"name": meta.name, "description": meta.description, "version": meta.version,
                             "author": meta.author, "license": meta.license,
                             "min_parser_version": MIN_PARSER_VERSION})
    root = writer.table(MODEL_METADATA, {**fields, "subgraph_metadata": writer.offsets([subgraph])})
    writer.builder.Finish(root, file_identifier=FILE_IDENTIFIER)
    return bytes(writer.builder.Output())


def _model_bytes(tflite: bytes) -> bytes:
    """The model flatbuffer without an appended zip of associated files (the zip starts at its first entry)."""
    if zipfile.is_zipfile(io.BytesIO(tflite)):
        with zipfile.ZipFile(io.BytesIO(tflite)) as archive:
            starts = [info.header_offset for info in archive.infolist()]
        return tflite[:min(starts)] if starts else tflite
    return tflite


def edit_model(tflite: bytes, edit: Callable[[Any], None]) -> bytes:
    """The model flatbuffer after `edit` changed its unpacked form (`ai_edge_litert.schema_py_generated.ModelT`,
    LiteRT's generated object API), packed again; an appended zip of associated files is dropped.

    Buffers stored after the flatbuffer (`offset`/`size`: the LiteRT quantizer writes them so once a file holds
    256 KiB of constants) are moved inside it first: packing again would leave their offsets pointing nowhere."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    data = _model_bytes(tflite)
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    for buffer in model.buffers or []:
        if buffer.offset > 1:  # 0: inline; 1: a placeholder the quantizer writes before it packs
            buffer.data = np.frombuffer(data, np.uint8, buffer.size, buffer.offset)
            buffer.offset = buffer.size = 0
    edit(model)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _add_metadata(model: Any, flatbuffer: bytes) -> None:
    """Stores `flatbuffer` in a new buffer of `model` named TFLITE_METADATA (replacing an earlier entry)."""
    from ai_edge_litert import schema_py_generated as schema

    buffer = schema.BufferT()
    buffer.data = np.frombuffer(flatbuffer, np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
    model.metadata = [*(e for e in model.metadata or [] if e.name.decode() != METADATA_NAME), entry]


def with_metadata(tflite: bytes, meta: ImageClassifierMetadata) -> bytes:
    """The model with `meta` as its TFLITE_METADATA (replacing any earlier one) and the labels file packed in.

    Args:
        tflite: a LiteRT flatbuffer (identifier TFL3), with or without metadata.
        meta: what to write.

    Returns:
        The new file's bytes: the model flatbuffer, then a zip holding `labels.txt` (stored, not deflated).
    """
    flatbuffer = metadata_flatbuffer(meta)
    packed = io.BytesIO(edit_model(tflite, lambda model: _add_metadata(model, flatbuffer)))
    with zipfile.ZipFile(packed, "a", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(LABELS_FILE, "".join(f"{label}\n" for label in meta.labels))
    return packed.getvalue()


# ----------------------------------------------------------------------------------------------- reading back


def _table(buffer: bytes, position: int) -> Any:
    from flatbuffers.table import Table

    return Table(bytearray(buffer), position)


def _field(table: Any, slot: int) -> int:
    """The absolute position of an offset field's target, 0 when the field is absent."""
    offset = table.Offset(4 + 2 * slot)
    return table.Indirect(table.Pos + offset) if offset else 0


def _vector(table: Any, slot: int) -> list[int]:
    """Positions of the tables an offset vector field holds (empty when absent)."""
    offset = table.Offset(4 + 2 * slot)
    if not offset:
        return []
    start, length = table.Vector(offset), table.VectorLen(offset)
    return [table.Indirect(start + 4 * i) for i in range(length)]


def _floats(table: Any, slot: int) -> tuple[float, ...]:
    offset = table.Offset(4 + 2 * slot)
    if not offset:
        return ()
    start, length = table.Vector(offset), table.VectorLen(offset)
    return tuple(float(v) for v in np.frombuffer(bytes(table.Bytes[start:start + 4 * length]), "<f4"))


def metadata_buffer(tflite: bytes) -> bytes | None:
    """The TFLITE_METADATA flatbuffer a model holds, or None."""
    from ai_edge_litert import schema_py_generated as schema

    try:
        model = schema.Model.GetRootAs(bytearray(tflite), 0)
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if entry.Name() and entry.Name().decode() == METADATA_NAME:
                return model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    except (IndexError, AttributeError, ValueError) as error:  # not a flatbuffer: the loader reports it
        raise QuantizationError(f"not a LiteRT model ({error}); give a .tflite file") from error
    return None


def input_normalization(tflite: bytes) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """(mean, std) of the first input's NormalizationOptions, or None when the model has none."""
    from flatbuffers.number_types import Uint8Flags

    buffer = metadata_buffer(tflite)
    if buffer is None or buffer[4:8] != FILE_IDENTIFIER:
        return None
    root = _table(buffer, int.from_bytes(buffer[:4], "little"))
    for subgraph in _vector(root, MODEL_METADATA["subgraph_metadata"])[:1]:
        for tensor in _vector(_table(buffer, subgraph), SUBGRAPH_METADATA["input_tensor_metadata"])[:1]:
            for unit in _vector(_table(buffer, tensor), TENSOR_METADATA["process_units"]):
                unit_table = _table(buffer, unit)
                if unit_table.GetSlot(4 + 2 * PROCESS_UNIT["options_type"], 0, Uint8Flags) == NORMALIZATION_OPTIONS:
                    options = _table(buffer, _field(unit_table, PROCESS_UNIT["options"]))
                    return _floats(options, NORMALIZATION["mean"]), _floats(options, NORMALIZATION["std"])
    return None


def packed_labels(tflite: bytes) -> list[str] | None:
    """The class names of the labels file packed in the model, or None when it has none."""
    try:
        with zipfile.ZipFile(io.BytesIO(tflite)) as archive:
            text = archive.read(LABELS_FILE).decode("utf-8")
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError):
        return None
    return [line for line in text.splitlines() if line]
