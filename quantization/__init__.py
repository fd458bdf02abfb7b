"""Quantization: LiteRT variants by bit width, QAT, scoring on real data, accuracy-vs-bits reports, deployable files.

`quantize`, `score_variant`, `write_report`, `run_pipeline` (returning its `PipelineResults`, which report.json
holds, with `.report_dir`), `export` (deployable files and a model card) and the `VARIANTS` table; TensorFlow, tfmot
and LiteRT load on first use, so importing the package is cheap. `quantization.litert` is the one module that opens LiteRT files.
"""
from quantization.variants import VARIANTS, Variant  # noqa: I001
from quantization.evaluate import VariantScore, score_variant
from quantization.results import PipelineResults
from quantization.pipeline import quantize, run_pipeline
from quantization.report import write_report
from quantization.export import export

__all__ = ["VARIANTS", "PipelineResults", "Variant", "VariantScore", "export", "quantize", "run_pipeline",
           "score_variant", "write_report"]
