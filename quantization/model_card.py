"""The model card written beside deployable files: model, data, recipe, each variant's scores, input, labels, use."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kdeep import io

CARD_MD, CARD_JSON = "model_card.md", "model_card.json"


@dataclass(frozen=True)
class VariantCard:
    """One deployable file and what was measured on it.

    Attributes:
        name, what, bits: the variant (`quantization.variants`), bits as weights/activations.
        file: the file's name; size_bytes: its size.
        input_type, output_type: dtypes of the `image` input and the `probabilities` output.
        accuracy: top-1 accuracy in LiteRT on the first `scored` test images (None: not scored).
        agreement: top-1 agreement with the Keras model on them (None: not scored).
        scored: how many test images were scored (a variant on LiteRT's slow reference kernels scores fewer).
        latency_us: median batch-1 latency on one thread, in microseconds (None: not measured).
    """

    name: str
    what: str
    bits: str
    file: str
    size_bytes: int
    input_type: str
    output_type: str
    accuracy: float | None = None
    agreement: float | None = None
    latency_us: float | None = None
    scored: int = 0


@dataclass(frozen=True)
class ModelCard:
    """What a set of deployable files is, how it was made and scored, and what it is for.

    Attributes:
        model: the Keras model's name; family: its registry family ("" for one kdeep did not build); params: its
            parameter count; source: the model file or run directory it came from.
        dataset: the dataset it was trained, calibrated and scored on (name or folder; None: unknown).
        recipe: the training run's settings (config.json: recipe, epochs, optimizer, ...), empty for a model file.
        input: the input's spec (shape, channels, colour space, range, normalization, dtypes).
        labels: the class names, one per output.
        keras_accuracy: the Keras model's accuracy on the scored test images (None: not scored).
        scored_images: how many test images were scored (0: none).
        variants: the files written.
        failed: {variant: why} for the variants that could not be made.
        machine: where latency was measured; date: when the card was written.
        intended_use: one paragraph; limits: one line per known limit.
    """

    model: str
    family: str
    params: int
    source: str
    dataset: str | None
    recipe: dict[str, Any]
    input: dict[str, Any]
    labels: tuple[str, ...]
    keras_accuracy: float | None
    scored_images: int
    variants: tuple[VariantCard, ...]
    failed: dict[str, str] = field(default_factory=dict)
    machine: str = ""
    date: str = ""
    intended_use: str = ""
    limits: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The card as JSON-ready data (what model_card.json holds)."""
        return dataclasses.asdict(self)

    def markdown(self) -> str:
        """The card as markdown (what model_card.md holds)."""
        percent = lambda value: "" if value is None else f"{100 * value:.2f}%"  # noqa: E731
        subset = lambda v: f" (first {v.scored})" if v.scored and v.scored < self.scored_images else ""  # noqa: E731
        rows = [f"| {v.name} | {v.bits} | {v.file} | {v.size_bytes / 1024:.1f} KiB | {v.input_type} / "
                f"{v.output_type} | {percent(v.accuracy)}{subset(v)} | {percent(v.agreement)} | "
                f"{'' if v.latency_us is None else f'{v.latency_us:.0f} us'} | {v.what} |" for v in self.variants]
        recipe = ", ".join(f"{key} {value}" for key, value in self.recipe.items()) or "not recorded (a model file)"
        scored = (f"{self.scored_images} test images of {self.dataset}; the Keras model scores "
                  f"{percent(self.keras_accuracy)} on them" if self.scored_images else "not scored")
        lines = [
            f"# Model card: {self.model}", "",
            f"- **Model**: {self.model} ({self.family or 'not a kdeep family'}), {self.params:,} parameters, "
            f"from `{self.source}`",
            f"- **Data**: {self.dataset or 'unknown'}", f"- **Recipe**: {recipe}",
            f"- **Scored on**: {scored}; latency: batch 1, one thread, {self.machine or 'not measured'}",
            f"- **Written**: {self.date}", "",
            "## Input", "", *(f"- {key}: {value}" for key, value in self.input.items()), "",
            "## Output", "",
            f"`probabilities`: one per class, in this order (the labels file packed in each file): "
            f"{', '.join(self.labels)}", "",
            "## Files", "",
            "| variant | bits (w/a) | file | size | input / output | accuracy | agrees with Keras | latency | what |",
            "|---|---|---|---|---|---|---|---|---|", *rows, "",
            *(["Not made: " + "; ".join(f"{name}: {why}" for name, why in self.failed.items()), ""]
              if self.failed else []),
            "## Intended use", "", self.intended_use, "",
            "## Limits", "", *(f"- {limit}" for limit in self.limits), "",
        ]
        return "\n".join(lines)


def write_card(card: ModelCard, out_dir: str | Path) -> tuple[Path, Path]:
    """Writes model_card.md and model_card.json into `out_dir`, atomically (kdeep.io).

    Returns:
        (markdown path, JSON path).
    """
    out = Path(out_dir)
    return io.write_atomic(out / CARD_MD, card.markdown()), io.write_json(out / CARD_JSON, card.to_dict())
