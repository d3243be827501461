"""Write an analysis timeline as CSV, JSON or Parquet (chosen by the file suffix).

CSV and Parquet hold one row per segment: ``file, channel, start, end, emotion, confidence,
uncertain`` and one ``p_<label>`` column per label; JSON holds :meth:`Analysis.to_dict`
(segments and summary). Files are written to a temporary name and renamed, so a failed write
leaves nothing half-written.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .._lazy import require
from ..errors import ParameterError

if TYPE_CHECKING:
    from .analysis import Analysis

__all__ = ["FORMATS", "segment_rows", "write_analysis"]

FORMATS = (".csv", ".json", ".parquet")
BASE_COLUMNS = ("file", "channel", "start", "end", "emotion", "confidence", "uncertain")


def segment_rows(analysis: Analysis) -> tuple[list[str], list[dict]]:
    """Column names and flat rows (probabilities as ``p_<label>``) of the segments."""
    columns = [*BASE_COLUMNS, *(f"p_{k}" for k in analysis.labels)]
    rows = []
    for s in analysis.segments:
        row = {k: s[k] for k in BASE_COLUMNS}
        for k in analysis.labels:
            row[f"p_{k}"] = s["probabilities"].get(k)
        rows.append(row)
    return columns, rows


def _atomic(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.tmp")


def write_analysis(analysis: Analysis, path: str | os.PathLike) -> Path:
    """Write ``analysis`` to ``path`` as .csv, .json or .parquet.

    Raises
    ------
    ParameterError
        Another suffix.
    MissingDependencyError
        ``.parquet`` without pyarrow installed.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ParameterError(f"{path}: output must end in {', '.join(FORMATS)}")
    if suffix == ".parquet":
        pa = require("pyarrow", extra="spark")
        import pyarrow.parquet as pq
    tmp = _atomic(path)
    try:
        if suffix == ".json":
            tmp.write_text(analysis.to_json() + "\n", encoding="utf-8")
        elif suffix == ".csv":
            columns, rows = segment_rows(analysis)
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=columns)
                writer.writeheader()
                writer.writerows(rows)
        else:
            columns, rows = segment_rows(analysis)
            types = {"start": pa.float64(), "end": pa.float64(), "confidence": pa.float64(),
                     "uncertain": pa.bool_()}
            schema = pa.schema([(c, types.get(c, pa.float64() if c.startswith("p_") else pa.string()))
                                for c in columns])
            table = pa.Table.from_pylist(rows, schema=schema)
            pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
