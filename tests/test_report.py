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
