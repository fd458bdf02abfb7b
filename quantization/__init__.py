"""Quantization: LiteRT variants by bit width, QAT, evaluation on real data and accuracy-vs-bits reports.

`quantize`, `evaluate`, `report`, `run_pipeline` and the `VARIANTS` table; TensorFlow, tfmot and LiteRT load
on first use, so importing the package is cheap.
"""
from quantization.variants import VARIANTS, Variant  # noqa: I001
from quantization.pipeline import quantize, run_pipeline
from quantization.evaluate import evaluate
from quantization.report import report

__all__ = ["VARIANTS", "Variant", "evaluate", "quantize", "report", "run_pipeline"]
