"""The report layer: tables (markdown, HTML, CSV), pages and sections, figures, the machine description.

Importing it needs no matplotlib; the figure helpers import it when called.
"""
from kdeep.report.figures import FIGURE_WIDTH, img_tag, label_points, png, pyplot
from kdeep.report.machine import describe_machine, timestamp
from kdeep.report.page import Page, Section
from kdeep.report.table import MISSING, Column, Table, write_csv

__all__ = ["FIGURE_WIDTH", "MISSING", "Column", "Page", "Section", "Table", "describe_machine", "img_tag",
           "label_points", "png", "pyplot", "timestamp", "write_csv"]
