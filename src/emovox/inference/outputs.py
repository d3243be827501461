"""Write an analysis timeline as CSV, JSON or Parquet (chosen by the file suffix).

CSV and Parquet hold one row per segment: ``file, channel, start, end, emotion, confidence,
uncertain`` and one ``p_<label>`` column per label; JSON holds :meth:`Analysis.to_dict`
(segments and summary). Files are written to a temporary name and renamed, so a failed write
leaves nothing half-written.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .._lazy import require
from ..errors import ParameterError

if TYPE_CHECKING:
    from .analysis import Analysis

__all__ = ["FORMATS", "SEGMENT_KEYS", "segment_record", "segment_rows", "write_analysis"]

FORMATS = (".csv", ".json", ".parquet")
BASE_COLUMNS = ("file", "channel", "start", "end", "emotion", "confidence", "uncertain")
SEGMENT_KEYS = (*BASE_COLUMNS, "probabilities")


def segment_record(*, file: str, channel: str, start: float, end: float, emotion: str,
                   confidence: float, uncertain: bool, probabilities: Mapping[str, float]) -> dict:
    """The one segment shape (CLI, API, UI, Spark): times in seconds, rounded to 1 ms.

    Parameters
    ----------
    file, channel : str
        The source's name and the channel's name (``"mix"``, ``"left"``, ...).
    start, end : float
        Seconds from the start of the source.
    emotion : str
        A label, or ``"no_speech"``.
    confidence : float
        Probability of ``emotion`` (1.0 for ``"no_speech"``).
    uncertain : bool
        Whether the decision is below the model's confidence or margin thresholds.
    probabilities : mapping of str to float
        ``{label: p}``; empty for ``"no_speech"``.

    Returns
    -------
    dict
        ``{"file", "channel", "start", "end", "emotion", "confidence", "uncertain",
        "probabilities"}`` with confidence and probabilities rounded to 4 decimals.

    Examples
    --------
    >>> segment_record(file="a.wav", channel="mix", start=0.0, end=1.23456, emotion="happy",
    ...                confidence=0.812345, uncertain=False, probabilities={"happy": 0.812345})
    ... # doctest: +NORMALIZE_WHITESPACE
    {'file': 'a.wav', 'channel': 'mix', 'start': 0.0, 'end': 1.235, 'emotion': 'happy',
     'confidence': 0.8123, 'uncertain': False, 'probabilities': {'happy': 0.8123}}
    """
    return {"file": file, "channel": channel, "start": round(float(start), 3),
            "end": round(float(end), 3), "emotion": emotion, "confidence": round(float(confidence), 4),
            "uncertain": bool(uncertain),
            "probabilities": {k: round(float(v), 4) for k, v in probabilities.items()}}


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
