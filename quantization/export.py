"""`kdeep export`: the deployable LiteRT files of a model (`quantization.deploy`), scored, and a model card.

Every variant is made by `quantization.pipeline.quantize` from the deployable graph (one conversion path with
`kdeep quantize`), scored in LiteRT on the test images fed as a camera app feeds them, and described beside the
files in `model_card.md` and `model_card.json` (`quantization.model_card`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from kdeep import io
from kdeep.contract import contract_of
from kdeep.errors import QuantizationError
from kdeep.models import presets
from kdeep.report import timestamp
from kdeep.train.run_dir import dataset_of
from quantization import metadata, pipeline
from quantization.deploy import INPUT, Deployment, deployment
from quantization.model_card import ModelCard, VariantCard, write_card
from quantization.pipeline import quantize, variant_path
from quantization.results import PipelineResults
from quantization.variants import VARIANTS, resolve


@dataclass
class Exported:
    """What `export` wrote.

    Attributes:
        out_dir: the folder holding the files and the card.
        files: {variant: deployable .tflite} of the variants made.
        failed: {variant: why} of those that could not be made.
        card: the model card (also written as model_card.md and model_card.json).
    """

    out_dir: Path
    files: dict[str, Path]
    failed: dict[str, str]
    card: ModelCard


def export(model_or_path: Any, out_dir: str | os.PathLike, *, variants: str | Sequence[str] | None = None,
           dataset: Any = None, channels: str = "rgb", integer_io: str = "uint8", qat_epochs: int = 1,
           limit: int | None = None, score: bool = True, author: str = "kdeep", license: str = "unspecified",
           version: str = "1") -> Exported:
    """Writes deployable LiteRT files of a model, one per variant, and the model card beside them.

    Args:
        model_or_path: a Keras model, a `.keras` file, a kdeep run directory (its config.json names the dataset) or
            a preset name (its card names it).
        out_dir: the folder for `<variant>.tflite`, model_card.md and model_card.json.
        variants: names from `VARIANTS` (list or comma-separated), None for all.
        dataset: a dataset name, an image folder or ((x_train, y_train), (x_test, y_test)): calibration images,
            QAT fine-tuning, labels and scoring; a run's own by default (another one is refused).
        channels: "rgb" (3-channel input) or "model" (the model's channel count).
        integer_io: input and output type of the full-integer variants: "uint8", "float32" or "int8".
        qat_epochs: QAT fine-tuning epochs.
        limit: calibrate and fine-tune on the first `limit` training images and score the first `limit` test images.
        score: score each file in LiteRT on the test split (accuracy, agreement, latency), as `kdeep quantize`
            does (`quantization.pipeline.score`), for the card.
        author, license, version: the metadata's fields.

    Returns:
        `Exported`: the files, the failures, the card. With a dataset, every file is first checked against the
        Keras model on real training images (`quantization.check`); one whose outputs are not the model's is a
        failure, removed and not scored.

    Raises:
        QuantizationError: an unknown variant or option, a variant that needs data without a dataset; nothing is
            written then.
    """
    chosen = resolve(variants)
    source = str(model_or_path) if isinstance(model_or_path, (str, os.PathLike)) else "(a Keras model in memory)"
    if isinstance(model_or_path, (str, os.PathLike)):
        dataset = dataset_of(model_or_path, dataset)
    model = presets.as_model(model_or_path)
    deploy = deployment(model, dataset, channels=channels, integer_io=integer_io, author=author, license=license,
                        version=version)
    needs_data = [v.name for v in chosen if v.representative or v.qat]
    if needs_data and dataset is None:
        raise QuantizationError(f"{', '.join(needs_data)} need(s) training images (calibration, fine-tuning): give "
                                "the dataset (--dataset NAME or FOLDER), or choose float variants only")
    out = io.output_dir(out_dir, "export folder")
    names = [v.name for v in chosen]
    results = None
    if dataset is None:  # float variants only: no calibration, nothing to score on
        conversions = quantize(model, names, np.zeros((1, *deploy.input_shape()[1:]), np.float32), out, graph=deploy)
    else:  # the phases of `kdeep quantize`: the same data, conversions and scores
        data = pipeline.prepare(model, dataset, limit=limit, fine_tunes=any(v.qat for v in chosen), graph=deploy)
        conversions = quantize(model, names, deploy.channels_of(data.representative), out, train_data=data.qat_train,
                               qat_epochs=qat_epochs, graph=deploy)
        pipeline.check_exports(model, data, conversions)  # a file whose outputs are not the model's is a failure
        results = pipeline.score(model, data, conversions)[0] if score else None
    for name in conversions.failed:
        variant_path(out, name).unlink(missing_ok=True)  # a file left by an earlier export is not this one
    card = _card(model, source, dataset, deploy, conversions, results)
    write_card(card, out)
    return Exported(out, dict(conversions), dict(conversions.failed), card)


def _card(model: Any, source: str, dataset: Any, deploy: Deployment, conversions: Any,
          scored: PipelineResults | None) -> ModelCard:
    """The model card of an export (`scored`: the score phase's results, None when not scored)."""
    height, width, _ = deploy.image_shape
    files = []
    for name, path in conversions.items():
        variant, io_type = VARIANTS[name], deploy.io_type(VARIANTS[name])
        result = scored.variants[name] if scored else None
        files.append(VariantCard(name, variant.what, variant.bits, path.name, path.stat().st_size, io_type, io_type,
                                 result and result.accuracy, result and result.agreement,
                                 result and result.latency_us["1"].median_us, result.n if result else 0))
    colour = "RGB" if deploy.input_channels == 3 else "grey"
    normalization = metadata.normalization_for(deploy.input_range, deploy.input_channels)
    data_name = dataset if isinstance(dataset, str) else "arrays given in Python" if dataset is not None else None
    return ModelCard(
        model=model.name, family=contract_of(model).family, params=int(model.count_params()), source=source,
        dataset=data_name, recipe=_recipe(source), labels=deploy.labels,
        input={"tensor": f"`{INPUT}`, [1, {height}, {width}, {deploy.input_channels}] {colour}",
               "float32 files": f"values in {list(deploy.input_range)}: (pixel - mean) / std with mean "
                                f"{normalization[0][0]:g}, std {normalization[1][0]:g} (NormalizationOptions)",
               "uint8 files": "the pixels as they are (int8 files: pixel - 128)",
               "channels": f"{colour}; the model itself takes {deploy.image_shape[2]} channel(s)"
                           + (" (luma computed in the graph)" if deploy.image_shape[2] != deploy.input_channels
                              else ""),
               "resize": f"to {width}x{height} before the model (MediaPipe and `kdeep predict` do it)"},
        keras_accuracy=scored.float_accuracy if scored else None, scored_images=scored.n_test if scored else 0,
        variants=tuple(files), failed=dict(conversions.failed), machine=scored.machine if scored else "",
        date=timestamp(),
        intended_use=f"Classifying {width}x{height} {colour} images into the {len(deploy.labels)} classes above"
                     f"{f' ({data_name})' if data_name else ''}, on devices that run LiteRT: MediaPipe Tasks' "
                     "ImageClassifier (Android, iOS, web, Python), LiteRT's CompiledModel or Interpreter.",
        limits=_limits(deploy, data_name, conversions))


def _recipe(source: str) -> dict[str, Any]:
    """The training settings of the run a model came from (empty for a model file)."""
    from kdeep.train.run_dir import CONFIG, run_of

    preset = presets.named(source)
    run = run_of(source) if source and not source.startswith("(") and preset is None else None
    if run is None and preset is None:
        return {}
    config = preset.config if preset else io.read_json(run / CONFIG, f"repair {run / CONFIG}")
    keys = ("recipe", "model", "width", "epochs", "batch_size", "optimizer", "lr", "schedule", "augment", "seed")
    return {key: config[key] for key in keys if config.get(key) is not None}


def _limits(deploy: Deployment, data_name: str | None, conversions: Any) -> tuple[str, ...]:
    """What the files are not for."""
    notes = [f"{name}: {VARIANTS[name].note}" for name in conversions if VARIANTS[name].note]
    return (
        f"Trained on {data_name or 'an unknown dataset'} only: images unlike it (other content, framing, "
        "backgrounds) still get probabilities that sum to 1; there is no 'none of these' class.",
        f"Every image is resized to {deploy.image_shape[1]}x{deploy.image_shape[0]}; aspect ratio is not kept.",
        "Quantized files were scored on the images named above only; other data can lose more accuracy.",
        "Not evaluated for robustness to adversarial or out-of-distribution inputs, fairness, or safety-critical use.",
        *notes,
    )
