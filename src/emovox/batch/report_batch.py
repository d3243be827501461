"""Call-level analytics of a batch run: one self-contained HTML page plus flat tables.

Reads the ``files``, ``segments`` and ``errors`` datasets that ``emovox batch`` wrote and shows
the emotion mix per file, where in a call anger peaks, and when calls happen (hour of day,
weekday) where a timestamp is known (manifest column or file name).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from .._lazy import require
from ..errors import DataError, ParameterError
from .html import (
    atomic_write,
    cards,
    emotion_colors,
    emotion_order,
    esc,
    fig_png,
    img,
    page,
    plt_module,
    table,
    write_tables,
)
from .inputs import parse_timestamp
from .store import BatchStore

__all__ = ["batch_report", "load_batch"]

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def load_batch(out: str | os.PathLike) -> tuple:
    """``(files, segments, errors, labels)`` of a batch output folder (pandas DataFrames)."""
    pd = require("pandas", extra="spark")
    root = os.fspath(out)
    if "://" not in root and not (Path(root) / "files").is_dir():
        raise DataError(f"{root}: not a batch output folder (no files/ dataset); run emovox batch first")
    store = BatchStore(root)
    files, segments, errors = store.read("files"), store.read("segments"), store.read("errors")
    if files.empty and errors.empty:
        raise DataError(f"{root}: the batch run has no committed results yet")
    labels = emotion_order([c[len("share_"):] for c in files.columns if c.startswith("share_")])
    if not files.empty:
        stamps = [t if isinstance(t, str) and t else parse_timestamp(f) for t, f in zip(files["timestamp"], files["file"], strict=True)]
        files["timestamp"] = pd.to_datetime(pd.Series(stamps, dtype="object"), errors="coerce")
        files["hour"] = files["timestamp"].dt.hour
        files["weekday"] = files["timestamp"].dt.day_of_week
    return files, segments, errors, labels


def _clean(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_axisbelow(True)


def _mix_png(files, labels: list[str]) -> bytes:
    plt = plt_module()
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
    dom = files["dominant_emotion"].value_counts()
    order = [*labels, "no_speech"] if "no_speech" in dom.index else list(labels)
    counts = [int(dom.get(x, 0)) for x in order]
    axes[0].bar(order, counts, color=emotion_colors(order))
    axes[0].yaxis.get_major_locator().set_params(integer=True)
    axes[0].set_title("files per dominant emotion")
    weights = files["speech_seconds"].to_numpy()
    share = [float(np.average(files[f"share_{lab}"], weights=weights)) if weights.sum() else 0.0 for lab in labels]
    axes[1].bar(labels, [100 * s for s in share], color=emotion_colors(labels))
    axes[1].set_title("share of all speech time (%)")
    for ax in axes:
        ax.tick_params(axis="x", rotation=30)
        ax.grid(axis="y", alpha=0.3)
        _clean(ax)
    fig.tight_layout()
    return fig_png(fig)


def _per_file_png(files, labels: list[str], *, top: int = 40) -> bytes:
    """Stacked emotion shares of the ``top`` files with the most negative speech."""
    plt = plt_module()
    sub = files.sort_values("negative_share", ascending=False).head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(12, 0.26 * len(sub) + 1.2))
    left = np.zeros(len(sub))
    names = [Path(f).name[:48] for f in sub["file"]]
    for lab, color in zip(labels, emotion_colors(labels), strict=True):
        vals = 100 * sub[f"share_{lab}"].to_numpy()
        ax.barh(names, vals, left=left, color=color, label=lab, height=0.8)
        left += vals
    ax.set_xlim(0, 100)
    ax.set_ylim(-0.6, len(sub) - 0.4)
    ax.set_xlabel("% of the file's speech time")
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(ncol=len(labels), fontsize=8, frameon=False, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    ax.set_title(f"emotion shares per file ({len(sub)} with the most negative speech)", pad=22)
    _clean(ax)
    fig.tight_layout()
    return fig_png(fig)


def _anger_png(files, segments) -> bytes | None:
    """Where anger peaks: the top anger peak's position in each call, and mean P(angry) over a call."""
    if "p_angry" not in segments.columns or segments.empty:
        return None
    plt = plt_module()
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.4))
    peaks = files.dropna(subset=["anger_peak_start"])
    rel = 100 * peaks["anger_peak_start"] / peaks["duration"].clip(lower=1e-6)
    counts, edges = np.histogram(rel, bins=np.linspace(0, 100, 11))
    axes[0].bar(edges[:-1] + 5, counts, width=9, color="#d62728", alpha=0.8)
    axes[0].set_xlim(0, 100)
    axes[0].set_ylim(0, max(1, counts.max() * 1.15))
    axes[0].yaxis.get_major_locator().set_params(integer=True)
    if not len(peaks):
        axes[0].text(50, 0.5, "no segment scored P(angry) >= 0.4", ha="center", color="#777")
    axes[0].set_title(f"strongest anger peak per file ({len(peaks)} of {len(files)} files have one)")
    axes[0].set_xlabel("position in the call (% of its duration)")
    axes[0].set_ylabel("files")
    dur = files.set_index("file")["duration"]
    seg = segments[segments["emotion"] != "no_speech"].dropna(subset=["p_angry"])
    pos = 100 * ((seg["start"] + seg["end"]) / 2) / seg["file"].map(dur).clip(lower=1e-6)
    bins = np.linspace(0, 100, 21)
    idx = np.clip(np.digitize(pos, bins) - 1, 0, len(bins) - 2)
    mean = [seg["p_angry"].to_numpy()[idx == k].mean() if (idx == k).any() else np.nan for k in range(len(bins) - 1)]
    axes[1].plot((bins[:-1] + bins[1:]) / 2, mean, color="#d62728", marker="o", markersize=3)
    axes[1].set_xlim(0, 100)
    axes[1].set_ylim(0, max(0.05, np.nanmax(mean) * 1.2 if np.isfinite(mean).any() else 1))
    axes[1].set_title("mean P(angry) of speech segments along the call")
    axes[1].set_xlabel("position in the call (% of its duration)")
    for ax in axes:
        ax.grid(alpha=0.3)
        _clean(ax)
    fig.tight_layout()
    return fig_png(fig)


def _time_png(files) -> bytes | None:
    """Calls and their negative share per hour of day and per weekday (files with a timestamp)."""
    timed = files.dropna(subset=["timestamp"])
    if timed.empty:
        return None
    plt = plt_module()
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.4), gridspec_kw={"width_ratios": [2.2, 1]})
    for ax, col, keys, ticks, title in ((axes[0], "hour", range(24), [f"{h:02d}" for h in range(24)], "hour of day"),
                                        (axes[1], "weekday", range(7), list(_DAYS), "weekday")):
        counts = timed.groupby(col).size().reindex(keys, fill_value=0)
        neg = timed.groupby(col)["negative_share"].mean().reindex(keys)
        ax.bar(range(len(counts)), counts.to_numpy(), color="#b8c7e0", label="calls")
        ax.set_xticks(range(len(counts)), ticks, fontsize=8)
        ax.set_ylabel("calls")
        ax.yaxis.get_major_locator().set_params(integer=True)
        twin = ax.twinx()
        twin.plot(range(len(neg)), 100 * neg.to_numpy(), color="#d62728", marker="o", markersize=4,
                  label="mean negative share")
        twin.set_ylim(0, 100)
        twin.set_ylabel("negative share %", color="#d62728")
        ax.set_title(f"calls per {title}, and their negative share")
        _clean(ax)
    fig.tight_layout()
    return fig_png(fig)


def _mmss(x) -> str:
    return "–" if x is None or x != x else f"{int(x) // 60}:{int(x) % 60:02d}"


def batch_report(batch_dir: str | os.PathLike, out: str | os.PathLike, *, top: int = 40) -> dict:
    """Write the call-level report ``out`` (HTML) and ``<stem>.files`` / ``<stem>.segments`` tables.

    Returns
    -------
    dict: ``html``, ``tables``, ``files``, ``errors``, ``seconds``
    """
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ParameterError(f"--out must name an .html file, got {str(out)!r}")
    t0 = time.perf_counter()
    files, segments, errors, labels = load_batch(batch_dir)
    parts = []
    if not files.empty:
        hours = files["duration"].sum() / 3600
        neg = float(np.average(files["negative_share"], weights=files["speech_seconds"])) if files["speech_seconds"].sum() else 0.0
        parts.append(cards([("files analysed", f"{len(files):,}"), ("errors", f"{len(errors):,}"),
                            ("hours of audio", f"{hours:.2f}"),
                            ("speech hours", f"{files['speech_seconds'].sum() / 3600:.2f}"),
                            ("negative speech", f"{100 * neg:.1f}%")]))
        parts += ["<h2>Emotion mix</h2>", img(_mix_png(files, labels), "emotion mix")]
        parts += ["<h2>Emotion shares per file</h2>", img(_per_file_png(files, labels, top=top), "shares per file")]
        anger = _anger_png(files, segments)
        if anger:
            parts += ["<h2>Where anger peaks</h2>", img(anger, "anger peaks")]
        timed = _time_png(files)
        if timed:
            n = int(files["timestamp"].notna().sum())
            parts += ["<h2>When calls happen</h2>", f"<p class='note'>{n} of {len(files)} files have a timestamp "
                      "(manifest column or a file name like 2024-03-01T14-22-05 / 20240301_142205).</p>", img(timed, "time")]
        else:
            parts.append("<h2>When calls happen</h2><p class='note'>No timestamps: give a manifest with a "
                         "<code>timestamp</code> column or name files like 2024-03-01T14-22-05.wav.</p>")
        worst = files.sort_values("negative_share", ascending=False).head(15)
        rows = [[Path(r["file"]).name, _mmss(r["duration"]), r["dominant_emotion"], f"{100 * r['negative_share']:.0f}",
                 _mmss(r["anger_peak_start"]), "–" if r["anger_peak_score"] != r["anger_peak_score"] else f"{r['anger_peak_score']:.2f}",
                 "–" if r["timestamp"] is None or r["timestamp"] != r["timestamp"] else str(r["timestamp"])]
                for r in worst.to_dict("records")]
        parts += ["<h2>Files with the most negative speech</h2>",
                  table(["file", "length", "dominant", "negative %", "anger peak at", "peak score", "timestamp"], rows, cls="wide")]
    if not errors.empty:
        parts += [f"<h2>Errors ({len(errors)})</h2>",
                  table(["file", "error"], [[f, e] for f, e in zip(errors["file"][:50], errors["error"][:50], strict=True)], cls="wide")]
    stem_files = out.with_name(out.stem + ".files")
    tables = write_tables(files.drop(columns=[], errors="ignore"), stem_files) if not files.empty else []
    if not segments.empty:
        tables += write_tables(segments.drop(columns=["probabilities"], errors="ignore"), out.with_name(out.stem + ".segments"))
    if tables:
        parts.append("<h2>Tables for BI tools</h2><p>" + ", ".join(f"<code>{esc(t.name)}</code>" for t in tables)
                     + " next to this page: one row per file and one row per segment (probabilities as "
                     "<code>p_&lt;emotion&gt;</code> columns).</p>")
    seconds = time.perf_counter() - t0
    atomic_write(out, page("Call analytics", f"{batch_dir} · built in {seconds:.1f} s", parts))
    return {"html": out, "tables": tables, "files": len(files), "errors": len(errors), "seconds": seconds}
