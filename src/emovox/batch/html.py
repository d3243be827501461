"""Page and figure helpers of the analytics reports.

The page style, tables, inlined images and atomic writes are the evaluation report's
(:mod:`emovox.evaluation.report`), so every emovox report looks the same; this module adds the
page frame, an emovox colour per emotion, and figure -> PNG bytes (matplotlib, Agg, lazy).
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path

from ..evaluation.plots import fig_png
from ..evaluation.plots import pyplot as plt_module
from ..evaluation.report import CSS, atomic_write, img, table
from ..labels import EMOTIONS

__all__ = ["page", "table", "img", "cards", "fig_png", "plt_module", "emotion_colors", "atomic_write",
           "write_tables", "esc"]

_PALETTE = {
    "neutral": "#8c8c8c", "calm": "#7fb3d5", "happy": "#f2b701", "sad": "#3b6fb6", "angry": "#d62728",
    "fearful": "#8e44ad", "disgust": "#2ca02c", "surprised": "#ff7f0e", "pleasant": "#f2b701",
    "unpleasant": "#d62728", "no_speech": "#d9d9d9",
}
_EXTRA_CSS = """
.fig2{display:grid;grid-template-columns:1fr 1fr;gap:14px}.note{color:#5b6475;font-size:13px;margin:2px 0 10px}
table.wide td,table.wide th{padding:4px 7px;font-size:12.5px}table.wide td:last-child,table.wide th:last-child{text-align:left}
table.wide td:first-child{word-break:break-all;max-width:420px}
"""

esc = html.escape


def emotion_colors(labels: Sequence[str]) -> list[str]:
    """A fixed colour per emotion (the same in every emovox figure); grey for unknown labels."""
    return [_PALETTE.get(lab, "#999999") for lab in labels]


def emotion_order(labels: Sequence[str]) -> list[str]:
    """``labels`` in the canonical order of :data:`emovox.labels.EMOTIONS`, unknown ones last."""
    known = [e for e in EMOTIONS if e in set(labels)]
    return known + sorted(set(labels) - set(known))


def cards(values: Sequence[tuple[str, str]]) -> str:
    """A row of headline numbers: ``[(caption, value), ...]``."""
    body = "".join(f"<div class='card'><b>{esc(v)}</b><span>{esc(k)}</span></div>" for k, v in values)
    return f'<div class="cards">{body}</div>'


def page(title: str, subtitle: str, parts: Sequence[str]) -> str:
    """A self-contained HTML page (inline CSS, images as base64): nothing else needed to view it."""
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{esc(title)}</title><style>{CSS}{_EXTRA_CSS}</style></head><body><main>"
            f"<h1>{esc(title)}</h1><p class='sub'>{esc(subtitle)}</p>\n" + "\n".join(parts)
            + "</main></body></html>\n")


def write_tables(df, stem: Path) -> list[Path]:
    """Write a pandas DataFrame as ``stem.csv`` and ``stem.parquet`` (atomically); return the paths.

    Both are flat tables (one row per record, plain columns) that PowerBI and Tableau open as is.
    """
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in ("csv", "parquet"):
        path = stem.with_name(f"{stem.name}.{ext}")
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            if ext == "csv":
                df.to_csv(tmp, index=False)
            else:
                df.to_parquet(tmp, index=False)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        out.append(path)
    return out
