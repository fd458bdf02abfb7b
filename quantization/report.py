"""Report files for a quantization run: markdown, JSON, CSV, self-contained HTML and the accuracy-vs-bits plot."""
import base64
import html
import io
import json
import os
from pathlib import Path

from kdeep.io import write_atomic, write_csv
from quantization.report_sections import FIGURE_WIDTH, MARKERS, PLOTS, Section, sections

# (header, row key, format): one table drives the markdown, CSV and HTML columns.
COLUMNS = (
    ("variant", "variant", "{}"),
    ("bits (w/a)", "bits", "{}"),
    ("accuracy %", "accuracy_pct", "{:.2f}"),
    ("Δ vs Keras float (pp)", "delta_pp", "{:+.2f}"),
    ("top-1 agreement %", "agreement_pct", "{:.2f}"),
    ("mean |Δp|", "mean_abs_prob_diff", "{:.2e}"),
    ("max |Δp|", "max_abs_prob_diff", "{:.3f}"),
    ("size KiB", "size_kib", "{:.1f}"),
    ("size ×f32", "size_ratio", "{:.2f}"),
    ("latency 1T median µs", "latency_1t_median_us", "{:.0f}"),
    ("latency 1T p90 µs", "latency_1t_p90_us", "{:.0f}"),
    ("latency 2T median µs", "latency_2t_median_us", "{:.0f}"),
    ("latency 1T ×f32", "latency_ratio", "{:.2f}"),
    ("scoring s", "scoring_seconds", "{:.2f}"),
    ("images scored", "n", "{}"),
)
PLOT = "accuracy_vs_bits.png"


def rows(results: dict) -> list[dict]:
    """One flat row per converted variant.

    The accuracy change is against the float Keras model on the same images (a subset for slow variants);
    size and latency ratios are against the float32 file when it was converted.
    """
    variants = results["variants"]
    base = variants.get("float32")
    table = []
    for name, v in variants.items():
        row = {
            "variant": name,
            "bits": f"{v['weight_bits']}/{v['activation_bits']}",
            "accuracy_pct": 100 * v["accuracy"],
            "agreement_pct": 100 * v["agreement"] if "agreement" in v else None,
            "mean_abs_prob_diff": v.get("mean_abs_prob_diff"),
            "max_abs_prob_diff": v.get("max_abs_prob_diff"),
            "size_kib": v["size_bytes"] / 1024,
            "latency_1t_median_us": v["latency_us"]["1"]["median_us"],
            "latency_1t_p90_us": v["latency_us"]["1"]["p90_us"],
            "latency_2t_median_us": v["latency_us"]["2"]["median_us"],
            "scoring_seconds": v["scoring_seconds"],
            "n": v["n"],
            "delta_pp": 100 * (v["accuracy"] - v["reference_accuracy"]) if "reference_accuracy" in v else None,
            "size_ratio": None,
            "latency_ratio": None,
        }
        if base:
            row["size_ratio"] = v["size_bytes"] / base["size_bytes"]
            row["latency_ratio"] = v["latency_us"]["1"]["median_us"] / base["latency_us"]["1"]["median_us"]
        table.append(row)
    return table


def _cell(value: object, fmt: str) -> str:
    return "–" if value is None else fmt.format(value)


def _notes(results: dict) -> list[str]:
    """Caveats (subsets, slow kernels) and variants that failed, as sentences."""
    notes = [f"{name}: {v['note']}" for name, v in results["variants"].items() if v.get("note")]
    notes += [f"{name} not produced: {message}" for name, message in results.get("failed", {}).items()]
    return notes


def _plot(results: dict, table: list[dict]) -> bytes:
    """Accuracy against weight bits (labelled by variant), file size and batch-1 latency, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["variant"] for r in table]
    figure, (acc, size, speed) = plt.subplots(1, 3, figsize=(FIGURE_WIDTH, 4.2))
    for i, (r, v) in enumerate(zip(table, results["variants"].values())):  # a marker each, named in the legend
        acc.scatter(v["weight_bits"], r["accuracy_pct"], s=50, marker=MARKERS[i % len(MARKERS)], color=f"C{i % 10}",
                    label=f"{r['variant']} ({r['bits']})")
    if "float_accuracy" in results:
        acc.axhline(100 * results["float_accuracy"], color="grey", linestyle="--", linewidth=1, label="Keras float")
    acc.legend(fontsize=7, loc="best")
    acc.set_xscale("log", base=2)
    acc.set(xticks=[2, 4, 8, 16, 32], xticklabels=["2", "4", "8", "16", "32"], xlim=(1.5, 45), xlabel="weight bits",
            ylabel="test accuracy %", title="accuracy vs bit width (LiteRT)")
    size.bar(names, [r["size_kib"] for r in table], color="tab:orange")
    size.set(ylabel="KiB", title="file size")
    speed.bar(names, [r["latency_1t_median_us"] for r in table], color="tab:green")
    speed.set(ylabel="µs (median, 1 thread, log scale)", title="batch-1 latency", yscale="log")
    for axis in (size, speed):  # upright names, so a dozen variants never overprint each other
        axis.tick_params(axis="x", labelrotation=90, labelsize=8)
    figure.suptitle(f"{results.get('model', 'model')} on {results.get('dataset', 'data')}")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def _header(results: dict) -> list[tuple[str, str]]:
    """(label, value) facts shown above the table."""
    facts = [("model", results.get("model")), ("dataset", results.get("dataset")),
             ("float Keras accuracy", f"{100 * results['float_accuracy']:.2f} %" if "float_accuracy" in results else None),
             ("test images", results.get("n_test")), ("machine", results.get("machine")), ("date", results.get("date"))]
    return [(label, str(value)) for label, value in facts if value is not None]


def _section_markdown(section: Section) -> list[str]:
    lines = [f"## {section.title}", ""] + [f"{note}\n" for note in section.notes]
    if section.headers:
        lines += ["| " + " | ".join(section.headers) + " |", "|" + "---|" * len(section.headers)]
        lines += ["| " + " | ".join(row) + " |" for row in section.rows] + [""]
    return lines + ([f"![{section.title}]({section.image})", ""] if section.image else [])


def _section_html(section: Section) -> str:
    e = html.escape
    notes = "".join(f"<p>{e(note)}</p>" for note in section.notes)
    table = ""
    if section.headers:
        head = "".join(f"<th>{e(h)}</th>" for h in section.headers)
        body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in section.rows)
        table = f"<div class=wide><table><tr>{head}</tr>{body}</table></div>"
    image = (f'<p><img alt="{e(section.title)}" src="data:image/png;base64,{base64.b64encode(section.png).decode()}">'
             "</p>" if section.png else "")
    return f"<h2>{e(section.title)}</h2>{notes}{table}{image}"


def _markdown(results: dict, table: list[dict], extra: list[Section]) -> str:
    lines = [f"# Quantization report: {results.get('model', 'model')} on {results.get('dataset', 'data')}", ""]
    lines += [f"- {label}: {value}" for label, value in _header(results)] + [""]
    lines += ["| " + " | ".join(h for h, _, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(r[k], f) for _, k, f in COLUMNS) + " |" for r in table]
    lines += ["", f"![accuracy vs bits]({PLOT})", ""]
    for section in extra:
        lines += _section_markdown(section)
    if notes := _notes(results):
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    if results.get("layer_errors"):
        lines += ["## int8: layers with the largest quantization error (RMSE / scale)", "",
                  "| op | tensor | RMSE/scale | RMSE | scale |", "|---|---|---|---|---|"]
        lines += [f"| {e['op']} | `{e['tensor']}` | {e['rmse_per_scale']:.3f} | {e['rmse']:.2e} | {e['scale']:.2e} |"
                  for e in results["layer_errors"]] + [""]
    return "\n".join(lines)


def _html(results: dict, table: list[dict], png: bytes, extra: list[Section]) -> str:
    e = html.escape
    facts = "".join(f"<li>{e(label)}: {e(value)}</li>" for label, value in _header(results))
    head = "".join(f"<th>{e(h)}</th>" for h, _, _ in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{e(_cell(r[k], f))}</td>" for _, k, f in COLUMNS) + "</tr>" for r in table)
    notes = "".join(f"<li>{e(n)}</li>" for n in _notes(results))
    layers = "".join(f"<tr><td>{e(x['op'])}</td><td><code>{e(x['tensor'])}</code></td><td>{x['rmse_per_scale']:.3f}</td>"
                     f"</tr>" for x in results.get("layer_errors", []))
    title = e(f"Quantization report: {results.get('model', 'model')} on {results.get('dataset', 'data')}")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:1em;max-width:1220px}}table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #bbb;padding:2px 5px;text-align:right}}th{{vertical-align:bottom}}
img{{max-width:100%;height:auto}}
.wide{{max-width:100%;overflow-x:auto}}code{{overflow-wrap:anywhere;text-align:left}}p{{max-width:1100px}}</style>
</head><body><h1>{title}</h1><ul>{facts}</ul>
<div class=wide><table><tr>{head}</tr>{body}</table></div>
<p><img alt="accuracy vs bits" src="data:image/png;base64,{base64.b64encode(png).decode('ascii')}"></p>
{''.join(_section_html(section) for section in extra)}
{f'<h2>Notes</h2><ul>{notes}</ul>' if notes else ''}
{f'<h2>int8: layers with the largest RMSE/scale</h2><table><tr><th>op</th><th>tensor</th><th>RMSE/scale</th></tr>{layers}</table>' if layers else ''}
</body></html>
"""


def report(results: dict, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Writes report.md, report.json, report.csv, report.html and accuracy_vs_bits.png, each atomically, and
    sweep.png, sensitivity.png and pareto.png when the results hold a sweep or a mix.

    Args:
        results: {"model", "dataset", "float_accuracy", "n_test", "machine", "date" (all optional),
            "variants": {name: evaluate() dict + weight_bits, activation_bits, note, ...},
            "failed": {name: message}, "layer_errors": convert.layer_errors() list, and optionally
            "sweep" (`pipeline.simulated_sweep`), "mixed" (`pipeline.mixed_precision`), "pareto" (names)}.
        out_dir: the report directory (created if needed).

    Returns:
        {file kind (or plot file name): path} for the files written.
    """
    out = Path(out_dir)
    table = rows(results)
    png = _plot(results, table)
    extra = sections(results)
    plots = {s.image: write_atomic(out / s.image, s.png) for s in extra if s.png}
    for stale in set(PLOTS) - plots.keys():  # left by an earlier run with a sweep or a mix
        (out / stale).unlink(missing_ok=True)
    return {
        **plots,
        "png": write_atomic(out / PLOT, png),
        "md": write_atomic(out / "report.md", _markdown(results, table, extra)),
        "json": write_atomic(out / "report.json", json.dumps({**results, "rows": table}, indent=2, default=str)),
        "csv": write_csv(out / "report.csv", table, [k for _, k, _ in COLUMNS]),
        "html": write_atomic(out / "report.html", _html(results, table, png, extra)),
    }
