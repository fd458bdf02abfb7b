"""The quantization pipeline's results as dataclasses, and their JSON form (report.json)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from kdeep.io import Record, known_fields
from quantization.evaluate import VariantScore
from quantization.search import Confirmation, Mix


@dataclass
class VariantResult(VariantScore):
    """A converted variant, scored: its `VariantScore` plus what it is and how it was made.

    Attributes:
        what: the variant's description.
        weight_bits: its weight width (the parameter-weighted mean for a mixed-precision file).
        activation_bits: its activation width (32: float; the value-weighted mean for a mixed-precision file).
        file: the .tflite file's name in the report directory.
        convert_seconds: conversion (and QAT fine-tuning) time.
        note: why it was scored on a subset of the test images ("" when on all).
    """

    what: str = ""
    weight_bits: float = 32
    activation_bits: float = 32
    file: str = ""
    convert_seconds: float = 0.0
    note: str = ""

    @classmethod
    def of(cls, score: VariantScore, **facts: Any) -> VariantResult:
        """The result of a scored variant with its facts (what, weight_bits, ...)."""
        return cls(**{f.name: getattr(score, f.name) for f in dataclasses.fields(VariantScore)}, **facts)


@dataclass
class SweepResult(Record):
    """The simulated bit-width sweep, the per-layer sensitivity and the simulator-against-LiteRT check.

    Attributes:
        n: test images scored; float_accuracy: the float Keras model's accuracy on them.
        rows: sweep rows {"weight_bits", "activation_bits", "accuracy", "n", "simulated"}.
        collapse_bits: the widest weight width below 90 % of float's accuracy (None: none).
        sensitivity_bits: the width the per-layer sensitivity is measured at (None: none loses a point).
        sensitivity: per-layer rows {"layer", "bits", "parameters", "accuracy", "drop_pp", "snr_db", ...}.
        snr_note: why the SNR is missing, when it is.
        check: {variant: {"weight_bits", "activation_bits", "simulated", "litert"}} on the same images.
        seconds: {"sweep", "sensitivity"} wall time.
    """

    n: int
    float_accuracy: float
    rows: list[dict]
    collapse_bits: int | None
    sensitivity_bits: int | None
    sensitivity: list[dict]
    snr_note: str
    check: dict[str, dict]
    seconds: dict[str, float]
    simulated: bool = True


@dataclass
class MixedResult(Mix):
    """The mixed-precision search's `Mix` (simulated on the held-out images that chose, confirmed in LiteRT on the
    others) and its export.

    Attributes:
        mean_bits: parameter-weighted weight width (float = 32).
        mean_activation_bits: activation width weighted by each tensor's values per image (float = 32).
        seconds: the search's wall time (with the latency table's measurement).
        lowest: each layer's narrowest allowed width (the layer plan's, dynamic range; static with 8-bit
            activations for an activation search).
        objective: "size" or "latency" (what the search made smallest under the budget).
    """

    mean_bits: float = 32.0
    mean_activation_bits: float = 32.0
    seconds: float = 0.0
    lowest: dict[str, int] = field(default_factory=dict)
    objective: str = "size"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MixedResult:
        """Reads what `to_dict` wrote (the `Mix` fields, its drop_pp and confirmation, and the export's)."""
        values = known_fields(cls, data)
        if values.get("confirmation"):
            values["confirmation"] = Confirmation(**known_fields(Confirmation, values["confirmation"]))
        return cls(**values)


@dataclass
class PTQResult(Record):
    """The post-training options of a run (`quantization.ptq`) and what they did.

    Attributes:
        options: `PTQOptions.to_dict()` (with "names", the options that are on).
        carried: {variant: the options its file carries} (`quantization.ptq.carried_by`).
        cle_pairs: the layer pairs cross-layer equalization rescaled.
        adaround: per layer, width and earlier layers' widths AdaRound learnt: {"layer", "bits", "earlier" ({width
            or "float": how many of the layers before it}), "nearest_error", "error", "flipped"}.
        seconds: {"statistics", "adaround"} wall time.
    """

    options: dict[str, Any]
    carried: dict[str, list[str]] = field(default_factory=dict)
    cle_pairs: list[list[str]] = field(default_factory=list)
    adaround: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class PipelineResults:
    """One quantization run: the float model, every variant scored, what failed, and the optional analyses.

    Attributes:
        model, params, dataset: the float Keras model's name and parameter count; the dataset's name.
        n_test: test images scored; float_accuracy: the float Keras model's accuracy on them.
        machine, date: where and when it ran (`kdeep.report.describe_machine`, `timestamp`).
        variants: {name: VariantResult}, in the order converted.
        failed: {variant: why it was not produced}.
        layer_errors: the int8 layers with the largest quantization error (`convert.layer_errors`).
        sweep, mixed: the simulated sweep and the mixed-precision choice, when asked for.
        pareto: the size-against-accuracy frontier's variant names, smallest first, when computed.
        checks: {variant: `quantization.check.ExportCheck.to_dict()`}: each exported file against the Keras model
            on real images (a file that failed it is in `failed`, not in `variants`).
        purposes: {variant: what it is for on this machine} (`quantization.advice.purposes`).
        ptq: the post-training options and what they did, when any is on (`PTQResult`).
        report_dir: the folder `run_pipeline` wrote the report and the files into (not in report.json).
    """

    model: str
    params: int
    dataset: str
    n_test: int
    float_accuracy: float
    machine: str
    date: str
    variants: dict[str, VariantResult]
    failed: dict[str, str]
    layer_errors: list[dict]
    sweep: SweepResult | None = None
    mixed: MixedResult | None = None
    pareto: list[str] | None = None
    checks: dict[str, dict] = field(default_factory=dict)
    purposes: dict[str, str] = field(default_factory=dict)
    ptq: PTQResult | None = None
    report_dir: Path | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """report.json's content (without its flat table rows); absent analyses are left out."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "report_dir"}
        data["variants"] = {name: v.to_dict() for name, v in self.variants.items()}
        data["sweep"] = self.sweep.to_dict() if self.sweep else None
        data["mixed"] = self.mixed.to_dict() if self.mixed else None
        data["ptq"] = self.ptq.to_dict() if self.ptq else None
        return {key: value for key, value in data.items()
                if value is not None or key not in ("sweep", "mixed", "pareto", "ptq")}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PipelineResults:
        """Reads report.json (keys it does not know, such as "rows", are ignored)."""
        values = known_fields(cls, data)
        values["variants"] = {name: VariantResult.from_dict(v) for name, v in data.get("variants", {}).items()}
        values["sweep"] = SweepResult.from_dict(data["sweep"]) if data.get("sweep") else None
        values["mixed"] = MixedResult.from_dict(data["mixed"]) if data.get("mixed") else None
        values["ptq"] = PTQResult.from_dict(data["ptq"]) if data.get("ptq") else None
        return cls(**values)
