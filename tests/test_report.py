"""kdeep.report: one table type written as markdown, HTML and CSV; pages with embedded figures; the machine line;
and the quantization results read back from their JSON."""
import csv
import json

import pytest

from kdeep.report import Column, Page, Section, Table, describe_machine, png, pyplot, write_csv

COLUMNS = (Column("name", "model"), Column("top1", "top-1 %", "{:.2f}"), Column("ms", "latency | ms", "{:.1f}"))
ROWS = [{"name": "resnet20", "top1": 92.751, "ms": 1.25}, {"name": "a<b", "top1": 10.0, "ms": None}]


def test_a_table_formats_cells_and_marks_missing_values():
    table = Table.of(COLUMNS, ROWS)
    assert table.headers == ("model", "top-1 %", "latency | ms")
    assert table.cells == (("resnet20", "92.75", "1.2"), ("a<b", "10.00", "–"))
    lines = table.markdown()
    assert lines[0] == "| model | top-1 % | latency \\| ms |" and lines[1] == "|---|---|---|"
    assert lines[3] == "| a<b | 10.00 | – |"
    assert "<td>a&lt;b</td>" in table.html() and table.html().count("<tr>") == 3


@pytest.mark.parametrize("formatted, expected", [(True, ["resnet20", "92.75", "1.2"]),
                                                 (False, ["resnet20", "92.751", "1.25"])])
def test_csv_holds_the_column_keys_and_raw_or_formatted_values(tmp_path, formatted, expected):
    path = write_csv(tmp_path / "t.csv", COLUMNS, ROWS, formatted=formatted)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["name", "top1", "ms"] and rows[1] == expected and rows[2][2] == ""


def test_a_page_embeds_its_figures_in_html_and_links_them_in_markdown():
    figure, axis = pyplot().subplots(figsize=(2, 2))
    axis.plot([0, 1], [0, 1])
    data = png(figure, layout=(0, 0, 1, 1))
    assert data.startswith(b"\x89PNG")
    page = Page("A <report>", [("machine", describe_machine())],
                [Section(table=Table.of(COLUMNS, ROWS)), Section("Curves", notes=["one note"], bullets=["b1"],
                                                                 image="curves.png", png=data)])
    markdown, html = page.markdown(), page.html()
    assert markdown.startswith("# A <report>\n") and "![Curves](curves.png)" in markdown and "- b1" in markdown
    assert html.startswith("<!doctype html>") and "<title>A &lt;report&gt;</title>" in html
    assert html.count("data:image/png;base64,") == 1 and "<h2>Curves</h2>" in html and "max-width:1240px" in html
    assert "cores" in describe_machine()


def test_pipeline_results_round_trip_through_report_json():
    from quantization.litert import Latency
    from quantization.results import PipelineResults, SweepResult, VariantResult

    variant = VariantResult(n=100, accuracy=0.98, size_bytes=4096, scoring_seconds=0.2,
                            latency_us={"1": Latency(100.0, 120.0), "2": Latency(60.0, 70.0)}, reference_accuracy=0.99,
                            agreement=0.985, mean_abs_prob_diff=1e-3, max_abs_prob_diff=0.2, what="int8",
                            weight_bits=8, activation_bits=8, file="int8.tflite", convert_seconds=3.0)
    sweep = SweepResult(n=50, float_accuracy=0.99, rows=[{"weight_bits": 4, "activation_bits": None, "accuracy": 0.9}],
                        collapse_bits=None, sensitivity_bits=None, sensitivity=[], snr_note="", check={},
                        seconds={"sweep": 1.0, "sensitivity": 0.0})
    results = PipelineResults(model="m", params=10, dataset="mnist", n_test=100, float_accuracy=0.99, machine="x",
                              date="d", variants={"int8": variant}, failed={"qat_int8": "why"}, layer_errors=[],
                              sweep=sweep)
    data = json.loads(json.dumps(results.to_dict()))
    assert data["variants"]["int8"]["latency_us"]["1"] == {"median_us": 100.0, "p90_us": 120.0}
    assert "mixed" not in data and "pareto" not in data
    assert PipelineResults.from_dict({**data, "rows": []}) == results


@pytest.mark.parametrize("lost, flagged", [(24, True), (16, False)])
def test_a_mix_whose_confirmed_drop_exceeds_the_budget_is_flagged(lost, flagged):
    """The preset ResNet-20's plain search (budget 0.3, 2,500 confirming images) chose a mix whose bound held on the
    choosing half (0.04) but lost 24 images and gained 12 on the other: +0.48 pp, which the report says is over."""
    from quantization.litert import Latency
    from quantization.report_sections import _mixed_facts
    from quantization.results import MixedResult, PipelineResults, VariantResult
    from quantization.search import Confirmation

    confirmation = Confirmation(images="images 57,500-59,999", n=2500, float_accuracy=0.9544,
                                accuracy=0.9544 - (lost - 12) / 2500, lost=lost, gained=12)
    mixed = MixedResult(bits={"fc": 4}, max_drop_pp=0.3, float_accuracy=0.9536, accuracy=0.9532, drop_bound_pp=0.04,
                        lost=8, gained=9, z=1.0, kernel_bytes=1000.0, n=2500, evaluations=42, confirmation=confirmation)
    variant = VariantResult(n=100, accuracy=0.955, size_bytes=4096, scoring_seconds=0.2,
                            latency_us={"1": Latency(100.0, 120.0)}, reference_accuracy=0.964, what="mixed",
                            weight_bits=4, activation_bits=32, file="mixed.tflite", convert_seconds=1.0)
    results = PipelineResults(model="m", params=10, dataset="fashion_mnist", n_test=100, float_accuracy=0.964,
                              machine="x", date="d", variants={"mixed": variant}, failed={}, layer_errors=[],
                              mixed=mixed)
    text = _mixed_facts(results)
    assert f"confirmed drop {100 * (lost - 12) / 2500:+.2f} pp ({lost} images lost, 12 gained)" in text
    assert ("over the 0.3 pp budget" in text) is flagged
