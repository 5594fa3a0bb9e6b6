"""SKAB (Skoltech Anomaly Benchmark) files as labelled tables.

A SKAB file is semicolon-separated: `datetime`, eight sensor columns, then the labels
`anomaly` and `changepoint`. The data set lives outside the package (see docs/ai.md).
"""

from __future__ import annotations

import numpy as np

from veriot.ai.evaluate import LabelledTable
from veriot.ai.tables import TableError, parse_table

LABELS = ("anomaly", "changepoint")


def parse_skab(text: str, group: str, name: str) -> LabelledTable:
    """Raises TableError when the text is not a SKAB file."""
    table = parse_table(text, drop=LABELS)
    if "anomaly" not in table.header:
        raise TableError(f"{group}/{name} has no 'anomaly' column; not a SKAB file")
    column = table.header.index("anomaly")
    sep = ";" if ";" in table.lines[0] else ","
    labels = np.array([float(line.split(sep)[column]) > 0.5 for line in table.lines])
    return LabelledTable(group, name, table.times, table.values, labels)
