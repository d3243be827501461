"""Plot an analysis: the waveform envelope with the emotion timeline underneath (matplotlib, lazy).

What ``emovox analyze --plot`` draws; it lives with the apps, not the prediction core.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._lazy import require
from ..inference.vad import FRAME_SECONDS
from ..labels import emotion_colour

if TYPE_CHECKING:
    from ..inference.analysis import Analysis

__all__ = ["plot_analysis"]

def _clock(seconds: float, _pos=None) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def plot_analysis(analysis: Analysis, path: str | os.PathLike, *, width: float = 12.0, dpi: int = 120) -> Path:
    """Draw ``analysis`` to a PNG (or any format matplotlib knows by suffix).

    Per channel: a lane with the loudness envelope of the audio, and under it a lane of
    coloured bands, one per segment (faded where the model was uncertain). Anger peaks of the
    summary are marked with a red triangle.
    """
    matplotlib = require("matplotlib", extra="spark")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    names = list(analysis.channels)
    n = len(names)
    heights = [v for _ in names for v in (1.6, 0.5)]
    fig, axes = plt.subplots(2 * n, 1, figsize=(width, 1.0 + 2.1 * n), sharex=True,
                             gridspec_kw={"height_ratios": heights, "hspace": 0.08})
    duration = max(analysis.duration, 1e-3)
    peaks = analysis.summary.get("peaks", {}).get("anger", [])
    used: dict[str, None] = {}
    env_all = analysis.envelope
    top = float(np.sqrt(2 * 10.0 ** (env_all.max() / 10.0))) if env_all.size else 1.0  # one scale for all lanes
    for i, name in enumerate(names):
        wave_ax, band_ax = axes[2 * i], axes[2 * i + 1]
        env = analysis.envelope[i] if i < len(analysis.envelope) else np.zeros(0)
        if len(env):
            amp = np.sqrt(10.0 ** (env / 10.0)) * np.sqrt(2.0)  # RMS -> peak-ish amplitude
            step = max(1, len(amp) // 3000)  # at most ~3000 points per lane
            amp = amp[: len(amp) // step * step].reshape(-1, step).max(axis=1)
            t = (np.arange(len(amp)) * step + step / 2) * FRAME_SECONDS
            wave_ax.fill_between(t, -amp, amp, color="#37474f", linewidth=0)
        wave_ax.set_ylim(-1.1 * top, 1.1 * top)
        wave_ax.set_yticks([])
        wave_ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=11)
        for side in ("top", "right", "left"):
            wave_ax.spines[side].set_visible(False)
        for s in analysis.segments:
            if s["channel"] != name:
                continue
            used[s["emotion"]] = None
            band_ax.axvspan(s["start"], s["end"], color=emotion_colour(s["emotion"]),
                            alpha=0.45 if s["uncertain"] else 0.95, linewidth=0)
        for p in peaks:
            if p["channel"] == name:
                band_ax.plot([(p["start"] + p["end"]) / 2], [1.25], marker="v", color="#b71c1c",
                             markersize=7, clip_on=False)
        band_ax.set_ylim(0, 1)
        band_ax.set_yticks([])
        band_ax.set_facecolor("#fafafa")
        for side in ("top", "right", "left"):
            band_ax.spines[side].set_visible(False)
    axes[-1].set_xlim(0, duration)
    axes[-1].xaxis.set_major_formatter(FuncFormatter(_clock))
    summary = analysis.summary
    title = (f"{Path(analysis.file).name} - {_clock(duration)}, speech {summary['speech_seconds']:.0f} s, "
             f"dominant {summary['dominant_emotion']}, negative {100 * summary['negative_share']:.0f}%")
    fig.suptitle(title, fontsize=12, x=0.5, y=0.995)
    handles = [Patch(color=emotion_colour(k), label=k) for k in analysis.labels if k in used]
    if "no_speech" in used:
        handles.append(Patch(color=emotion_colour("no_speech"), label="no speech"))
    handles.append(Patch(color="#9e9e9e", alpha=0.45, label="faded: uncertain"))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 9), frameon=False,
               bbox_to_anchor=(0.5, 0.0), fontsize=9)
    fig.subplots_adjust(left=0.09, right=0.98, top=0.93, bottom=0.2 if n == 1 else 0.13)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path
