"""Charts of an analysis for the web app: altair timeline over the waveform, summary bars,
probability bars, and a log-mel spectrogram image (numpy only).

Every function takes plain results of :mod:`emovox.inference` (``Analysis``, ``Prediction``
dicts) and computes nothing about emotions itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._lazy import require
from ..audio import SAMPLE_RATE
from ..inference.vad import FRAME_SECONDS as _FRAME_SECONDS
from ..labels import EMOTION_COLOURS

__all__ = ["EMOTION_COLORS", "color_scale", "timeline_chart", "summary_chart", "probability_chart",
           "spectrogram_image"]

#: The emovox colour table (:data:`emovox.labels.EMOTION_COLOURS`), under the name this module exported.
EMOTION_COLORS = EMOTION_COLOURS
_FALLBACK = ("#17becf", "#bcbd22", "#8c564b", "#e377c2", "#1f77b4")


def color_scale(labels: Sequence[str]):
    """An ``alt.Scale`` mapping each label (and ``no_speech``) to its colour."""
    alt = require("altair", extra="ui")
    domain = [*labels, "no_speech"]
    extra = iter(_FALLBACK * 4)
    return alt.Scale(domain=domain, range=[EMOTION_COLORS.get(k) or next(extra) for k in domain])


def _envelope_rows(envelope: np.ndarray, channels: Sequence[str], *, max_points: int = 1500) -> list[dict]:
    """Peak amplitude per display bin of each channel's 30 ms loudness envelope (dBFS)."""
    rows = []
    for name, db in zip(channels, envelope, strict=False):
        if len(db) == 0:
            continue
        amp = 10 ** (np.asarray(db, dtype=np.float64) / 20)
        step = max(1, int(np.ceil(len(amp) / max_points)))
        n = len(amp) // step * step
        peaks = amp[:n].reshape(-1, step).max(axis=1) if n else amp
        scale = float(peaks.max()) or 1.0
        for i, a in enumerate(peaks):
            t = i * step * _FRAME_SECONDS
            rows.append({"channel": name, "t": round(t, 3), "lo": -a / scale, "hi": a / scale})
    return rows


def _segment_rows(segments: Sequence[dict]) -> list[dict]:
    rows = []
    for s in segments:
        top = sorted(s["probabilities"].items(), key=lambda kv: -kv[1])[:3]
        rows.append({"channel": s["channel"], "start": s["start"], "end": s["end"], "emotion": s["emotion"],
                     "confidence": s["confidence"], "uncertain": "yes" if s["uncertain"] else "no",
                     "top": ", ".join(f"{k} {v:.2f}" for k, v in top) or "-"})
    return rows


def timeline_chart(analysis, *, width: int | str = "container", lane_height: int = 110):
    """Emotion segments drawn over the waveform envelope, one lane per channel.

    Drag to zoom the time axis (shared by the lanes), hover a segment for its probabilities,
    double-click to reset. Uncertain segments are paler.

    Parameters
    ----------
    analysis : emovox.inference.Analysis

    Returns
    -------
    altair.VConcatChart
    """
    alt = require("altair", extra="ui")
    pd = require("pandas", extra="ui")
    env = pd.DataFrame(_envelope_rows(analysis.envelope, analysis.channels),
                       columns=["channel", "t", "lo", "hi"])
    segs = pd.DataFrame(_segment_rows(analysis.segments),
                        columns=["channel", "start", "end", "emotion", "confidence", "uncertain", "top"])
    zoom = alt.selection_interval(encodings=["x"], bind="scales")
    x_scale = alt.Scale(domain=[0, max(analysis.duration, 0.1)])
    colors = color_scale(analysis.labels)
    lanes = []
    for i, name in enumerate(analysis.channels):
        last = i == len(analysis.channels) - 1
        x_axis = alt.Axis(title="time (s)" if last else None, labels=last, grid=False)
        band = alt.Chart(segs[segs["channel"] == name]).mark_rect().encode(
            x=alt.X("start:Q", scale=x_scale, axis=x_axis), x2="end:Q",
            y=alt.value(0), y2=alt.value(lane_height),
            color=alt.Color("emotion:N", scale=colors, legend=alt.Legend(title="emotion", orient="top")),
            opacity=alt.Opacity("uncertain:N", scale=alt.Scale(domain=["no", "yes"], range=[0.7, 0.3]),
                                legend=alt.Legend(title="uncertain", orient="top")),
            tooltip=[alt.Tooltip("emotion:N"), alt.Tooltip("confidence:Q", format=".2f"),
                     alt.Tooltip("start:Q", format=".2f", title="start (s)"),
                     alt.Tooltip("end:Q", format=".2f", title="end (s)"),
                     alt.Tooltip("uncertain:N"), alt.Tooltip("top:N", title="top probabilities")],
        )
        wave = alt.Chart(env[env["channel"] == name]).mark_area(color="#1f2933", opacity=0.75).encode(
            x=alt.X("t:Q", scale=x_scale, axis=x_axis),
            y=alt.Y("lo:Q", axis=None, scale=alt.Scale(domain=[-1.05, 1.05])), y2="hi:Q",
        )
        lane = alt.layer(band, wave).properties(width=width, height=lane_height, title=alt.TitleParams(
            name, anchor="start", fontSize=12))
        lanes.append(lane.add_params(zoom) if i == 0 else lane)
    return alt.vconcat(*lanes, spacing=6).resolve_scale(x="shared")


def summary_chart(summary: dict, labels: Sequence[str]):
    """Horizontal bars: each emotion's share of the speech time."""
    alt = require("altair", extra="ui")
    pd = require("pandas", extra="ui")
    data = pd.DataFrame([{"emotion": k, "share": v} for k, v in summary["emotion_share"].items()])
    return alt.Chart(data).mark_bar().encode(
        x=alt.X("share:Q", axis=alt.Axis(format="%", title="share of speech time"), scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("emotion:N", sort="-x", title=None),
        color=alt.Color("emotion:N", scale=color_scale(labels), legend=None),
        tooltip=[alt.Tooltip("emotion:N"), alt.Tooltip("share:Q", format=".1%")],
    ).properties(height=alt.Step(22))


def probability_chart(probabilities: dict[str, float], labels: Sequence[str]):
    """Horizontal bars of one prediction's probabilities."""
    alt = require("altair", extra="ui")
    pd = require("pandas", extra="ui")
    data = pd.DataFrame([{"emotion": k, "p": v} for k, v in probabilities.items()])
    return alt.Chart(data).mark_bar().encode(
        x=alt.X("p:Q", title="probability", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("emotion:N", sort="-x", title=None),
        color=alt.Color("emotion:N", scale=color_scale(labels), legend=None),
        tooltip=[alt.Tooltip("emotion:N"), alt.Tooltip("p:Q", format=".3f")],
    ).properties(height=alt.Step(22))


# A few anchor colours of the "magma" colour map, interpolated.
_MAGMA = np.array([[0, 0, 4], [59, 15, 112], [140, 41, 129], [222, 73, 104], [254, 159, 109], [252, 253, 191]],
                  dtype=np.float64)


def spectrogram_image(y: np.ndarray, *, max_columns: int = 1200, floor_db: float = 80.0) -> np.ndarray:
    """A log-mel spectrogram of mono 16 kHz audio as an RGB image (low frequencies at the bottom).

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]

    Returns
    -------
    np.ndarray [shape=(rows, columns, 3)], uint8; rows is n_mels times a whole number
    """
    from ..features.logmel import LogMelConfig, melspectrogram

    config = LogMelConfig(sr=SAMPLE_RATE)
    step = max(1, int(np.ceil(len(y) / config.hop_length / max_columns)))
    if step > 1:  # long audio: a coarser hop instead of computing every 10 ms frame
        config = LogMelConfig(sr=SAMPLE_RATE, hop_length=config.hop_length * step)
    power = melspectrogram(np.asarray(y, dtype=np.float32), config=config)
    db = 10 * np.log10(np.maximum(power, 1e-10))
    db = np.clip((db - (db.max() - floor_db)) / floor_db, 0, 1)[::-1]
    pos = db * (len(_MAGMA) - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, len(_MAGMA) - 1)
    frac = (pos - lo)[..., None]
    rgb = _MAGMA[lo] * (1 - frac) + _MAGMA[hi] * frac
    rows = max(1, int(round(rgb.shape[1] / 8 / rgb.shape[0])))  # not a thin strip on long audio
    return np.ascontiguousarray(np.repeat(rgb, rows, axis=0).astype(np.uint8))
