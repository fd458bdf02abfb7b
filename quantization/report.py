"""The quantization report: the variants' columns and rows, its notes, and the files (report.md/.json/.csv/.html
and the figures), written through the report layer (`kdeep.report`)."""
import json
import os
from pathlib import Path

from kdeep.io import write_atomic
from kdeep.report import Column, Page, Section, Table, write_csv
from quantization.report_sections import PLOTS, accuracy_plot, sections
from quantization.results import PipelineResults

COLUMNS = (
    Column("variant", "variant"), Column("bits", "bits (w/a)"),
    Column("accuracy_pct", "accuracy %", "{:.2f}"), Column("delta_pp", "Δ vs Keras float (pp)", "{:+.2f}"),
    Column("agreement_pct", "top-1 agreement %", "{:.2f}"),
    Column("mean_abs_prob_diff", "mean |Δp|", "{:.2e}"), Column("max_abs_prob_diff", "max |Δp|", "{:.3f}"),
    Column("size_kib", "size KiB", "{:.1f}"), Column("size_ratio", "size ×f32", "{:.2f}"),
    Column("latency_1t_median_us", "latency 1T median µs", "{:.0f}"),
    Column("latency_1t_p90_us", "latency 1T p90 µs", "{:.0f}"),
    Column("latency_2t_median_us", "latency 2T median µs", "{:.0f}"),
    Column("latency_ratio", "latency 1T ×f32", "{:.2f}"),
    Column("scoring_seconds", "scoring s", "{:.2f}"), Column("n", "images scored"),
)
LAYER_COLUMNS = (Column("op", "op"), Column("tensor", "tensor"), Column("rmse_per_scale", "RMSE/scale", "{:.3f}"),
                 Column("rmse", "RMSE", "{:.2e}"), Column("scale", "scale", "{:.2e}"))
PLOT = "accuracy_vs_bits.png"


def rows(results: PipelineResults) -> list[dict]:
    """One flat row per converted variant (what report.csv and the table hold).

    The accuracy change is against the float Keras model on the same images (a subset for slow variants);
    size and latency ratios are against the float32 file when it was converted.
    """
    base = results.variants.get("float32")
    table = []
    for name, v in results.variants.items():
        one, two = v.latency_us["1"], v.latency_us["2"]
        table.append({
            "variant": name,
            "bits": f"{v.weight_bits}/{v.activation_bits}",
            "accuracy_pct": 100 * v.accuracy,
            "agreement_pct": None if v.agreement is None else 100 * v.agreement,
            "mean_abs_prob_diff": v.mean_abs_prob_diff,
            "max_abs_prob_diff": v.max_abs_prob_diff,
            "size_kib": v.size_bytes / 1024,
            "latency_1t_median_us": one.median_us,
            "latency_1t_p90_us": one.p90_us,
            "latency_2t_median_us": two.median_us,
            "scoring_seconds": v.scoring_seconds,
            "n": v.n,
            "delta_pp": None if v.reference_accuracy is None else 100 * (v.accuracy - v.reference_accuracy),
            "size_ratio": v.size_bytes / base.size_bytes if base else None,
            "latency_ratio": one.median_us / base.latency_us["1"].median_us if base else None,
        })
    return table


def _notes(results: PipelineResults) -> list[str]:
    """Caveats (subsets, slow kernels) and variants that failed, as sentences."""
    notes = [f"{name}: {v.note}" for name, v in results.variants.items() if v.note]
    return notes + [f"{name} not produced: {message}" for name, message in results.failed.items()]


def page(results: PipelineResults, table: list[dict]) -> Page:
    """The report page: facts, the variants' table and plot, the sweep/sensitivity/mix sections, notes and the
    int8 layers with the largest quantization error."""
    facts = [("model", results.model), ("dataset", results.dataset),
             ("float Keras accuracy", f"{100 * results.float_accuracy:.2f} %"), ("test images", results.n_test),
             ("machine", results.machine), ("date", results.date)]
    parts = [Section(table=Table.of(COLUMNS, table), image=PLOT, png=accuracy_plot(results, table)),
             *sections(results)]
    if notes := _notes(results):
        parts.append(Section("Notes", bullets=notes))
    if results.layer_errors:
        parts.append(Section("int8: layers with the largest quantization error (RMSE / scale)",
                             table=Table.of(LAYER_COLUMNS, results.layer_errors)))
    title = f"Quantization report: {results.model} on {results.dataset}"
    return Page(title, [(label, str(value)) for label, value in facts if value is not None], parts)


def write_report(results: PipelineResults, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Writes report.md, report.json, report.csv, report.html and accuracy_vs_bits.png, each atomically, and
    sweep.png, sensitivity.png and pareto.png when the results hold a sweep or a mix.

    Args:
        results: the pipeline's results.
        out_dir: the report directory (created if needed).

    Returns:
        {file kind (or plot file name): path} for the files written.
    """
    out = Path(out_dir)
    table = rows(results)
    report = page(results, table)
    plots = {s.image: write_atomic(out / s.image, s.png) for s in report.sections if s.png}
    main = plots.pop(PLOT)
    for stale in set(PLOTS) - plots.keys():  # left by an earlier run with a sweep or a mix
        (out / stale).unlink(missing_ok=True)
    return {
        **plots,
        "png": main,
        "md": write_atomic(out / "report.md", report.markdown()),
        "json": write_atomic(out / "report.json", json.dumps({**results.to_dict(), "rows": table}, indent=2,
                                                             default=str)),
        "csv": write_csv(out / "report.csv", COLUMNS, table),
        "html": write_atomic(out / "report.html", report.html()),
    }
