"""Per-clip audio statistics for the dataset report: duration, loudness and pitch (numpy only).

Pitch is a vectorised YIN (de Cheveigné & Kawahara, 2002) on 64 ms frames every 16 ms: the
cumulative-mean-normalised difference function of each frame, its first dip under 0.3 in the
60–500 Hz lag range, refined by parabolic interpolation. Frames quieter than 35 dB below the
clip's loudest frame (or under -70 dBFS), or without such a dip, count as unvoiced. On 32 random
corpus clips the median F0 per clip is within 0.02 octave of ``librosa.pyin`` (median; 0.16 at
the 90th percentile), in 1/30 of its time: fine for distributions per emotion.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeAlias

import numpy as np

from .._progress import progress
from ..audio import SAMPLE_RATE, load
from ..errors import EmovoxError

__all__ = ["clip_stats", "yin_f0", "stats_many", "STAT_COLUMNS", "ClipResult"]

#: The columns :func:`clip_stats` returns, in order.
STAT_COLUMNS = ("duration", "rms_db", "peak", "peak_db", "f0_median", "f0_mean", "f0_std", "f0_min",
                "f0_max", "voiced_share")

#: What :func:`stats_many` gives per file: ``(stats, None)``, or ``(None, error message)``.
ClipResult: TypeAlias = tuple[dict[str, float], None] | tuple[None, str]

_FRAME, _HOP = 1024, 256
_FLOOR_DB = -70.0  # frames below this mean power (dBFS) are silence, whatever the clip's peak


def _frames(y: np.ndarray, frame: int, hop: int) -> np.ndarray:
    if len(y) < frame:
        y = np.pad(y, (0, frame - len(y)))
    n = 1 + (len(y) - frame) // hop
    return np.lib.stride_tricks.sliding_window_view(y, frame)[::hop][:n]


def yin_f0(y: np.ndarray, *, sr: int = SAMPLE_RATE, fmin: float = 60.0, fmax: float = 500.0,
           threshold: float = 0.3, silence_db: float = 35.0) -> np.ndarray:
    """Fundamental frequency per frame (Hz; NaN where unvoiced).

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float
    sr : int
    fmin, fmax : float
        Search range in Hz.
    threshold : float
        YIN's absolute threshold on the normalised difference.
    silence_db : float
        Frames this many dB below the loudest frame are unvoiced.

    Returns
    -------
    np.ndarray [shape=(n_frames,)], float32; frames of 64 ms every 16 ms at 16 kHz

    Examples
    --------
    >>> t = np.arange(16000) / 16000
    >>> f0 = yin_f0(np.sin(2 * np.pi * 220 * t).astype(np.float32))
    >>> round(float(np.nanmedian(f0)))
    220
    """
    frame = int(_FRAME * sr / SAMPLE_RATE)
    hop = int(_HOP * sr / SAMPLE_RATE)
    x = _frames(np.asarray(y, dtype=np.float64), frame, hop)
    x = x - x.mean(axis=1, keepdims=True)
    tau_max = min(int(sr / fmin) + 2, frame // 2)
    tau_min = max(2, int(sr / fmax))
    w = frame - tau_max  # integration window
    spec = np.fft.rfft(x, n=2 * frame, axis=1)
    head = np.fft.rfft(x[:, :w], n=2 * frame, axis=1)
    r = np.fft.irfft(spec * np.conj(head), axis=1)[:, :tau_max]  # sum_j x[j] x[j + tau], j < w
    sq = np.concatenate([np.zeros((len(x), 1)), np.cumsum(x * x, axis=1)], axis=1)
    e0 = sq[:, w][:, None]
    taus = np.arange(tau_max)
    e_tau = sq[:, taus + w] - sq[:, taus]
    d = np.maximum(e0 + e_tau - 2 * r, 0.0)
    cum = np.cumsum(d[:, 1:], axis=1)
    cmnd = np.ones_like(d)
    cmnd[:, 1:] = d[:, 1:] * np.arange(1, tau_max) / np.maximum(cum, 1e-12)
    band = cmnd[:, tau_min:]
    below = band < threshold
    first = np.where(below.any(axis=1), below.argmax(axis=1), -1)
    f0 = np.full(len(x), np.nan, dtype=np.float64)
    rows = np.flatnonzero(first >= 0)
    if len(rows):
        k = first[rows]
        # walk down to the local minimum after the first crossing
        for _ in range(band.shape[1]):
            nxt = np.minimum(k + 1, band.shape[1] - 1)
            step = band[rows, nxt] < band[rows, k]
            if not step.any():
                break
            k = np.where(step, nxt, k)
        left = band[rows, np.maximum(k - 1, 0)]
        mid = band[rows, k]
        right = band[rows, np.minimum(k + 1, band.shape[1] - 1)]
        denom = left - 2 * mid + right
        shift = np.where(np.abs(denom) > 1e-12, 0.5 * (left - right) / np.where(denom == 0, 1, denom), 0.0)
        f0[rows] = sr / (k + tau_min + np.clip(shift, -1, 1))
    energy = 10 * np.log10(np.mean(x * x, axis=1) + 1e-12)
    f0[(energy < energy.max() - silence_db) | (energy < _FLOOR_DB)] = np.nan
    f0[(f0 < fmin) | (f0 > fmax)] = np.nan
    return f0.astype(np.float32)


def clip_stats(y: np.ndarray, *, sr: int = SAMPLE_RATE) -> dict[str, float]:
    """Duration (s), RMS (dBFS), peak (linear and dBFS) and F0 statistics (Hz) of one clip.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float in [-1, 1]

    Returns
    -------
    dict with the keys of :data:`STAT_COLUMNS` (F0 values NaN when nothing is voiced)
    """
    y = np.asarray(y, dtype=np.float32)
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if len(y) else 0.0
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    f0 = yin_f0(y, sr=sr) if len(y) else np.zeros(0, np.float32)
    voiced = f0[np.isfinite(f0)]
    have = len(voiced) > 0
    return {
        "duration": round(len(y) / sr, 4),
        "rms_db": round(float(20 * np.log10(rms + 1e-9)), 2),
        "peak": round(peak, 5),
        "peak_db": round(float(20 * np.log10(peak + 1e-9)), 2),
        "f0_median": round(float(np.median(voiced)), 2) if have else float("nan"),
        "f0_mean": round(float(voiced.mean()), 2) if have else float("nan"),
        "f0_std": round(float(voiced.std()), 2) if have else float("nan"),
        "f0_min": round(float(voiced.min()), 2) if have else float("nan"),
        "f0_max": round(float(voiced.max()), 2) if have else float("nan"),
        "voiced_share": round(len(voiced) / max(1, len(f0)), 4),
    }


def _one(path: str) -> ClipResult:
    try:
        return clip_stats(load(path)), None
    except EmovoxError as exc:
        return None, str(exc)


def stats_many(paths: Sequence[str | os.PathLike[str]], *, jobs: int = 1,
               show_progress: bool = True) -> list[ClipResult]:
    """:func:`clip_stats` of many files, ``(stats, None)`` or ``(None, error)`` per file, in order."""
    files = [os.fspath(p) for p in paths]
    enabled = None if show_progress else False
    if jobs <= 1 or len(files) < 8:
        return [_one(p) for p in progress(files, total=len(files), desc="clip stats", enabled=enabled)]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(progress(pool.map(_one, files, chunksize=16), total=len(files), desc="clip stats",
                             enabled=enabled))
