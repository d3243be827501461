"""A log-mel frontend in numpy/scipy only: the frontend of every emovox neural model.

It matches ``librosa.feature.melspectrogram`` (``center=True``, constant padding, periodic Hann
window, Slaney mel scale and norm) to float32 precision, without importing librosa, so the
predict path stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np
import scipy.fft

from ..audio import SAMPLE_RATE
from ..errors import ParameterError
from .config import FrontendConfig

__all__ = ["LogMelConfig", "mel_filterbank", "melspectrogram", "logmel", "hz_to_mel", "mel_to_hz"]

_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0
_BLOCK_FRAMES = 1024


@dataclass(frozen=True)
class LogMelConfig(FrontendConfig):
    """Frontend settings; stored with every model so training and inference agree."""

    TYPE: ClassVar[str] = "logmel"
    sr: int = SAMPLE_RATE
    n_fft: int = 512
    win_length: int = 400  # 25 ms at 16 kHz
    hop_length: int = 160  # 10 ms at 16 kHz
    n_mels: int = 64
    fmin: float = 0.0
    fmax: float | None = None
    log_offset: float = 1e-6


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """Slaney mel scale (linear below 1 kHz, logarithmic above), as librosa with ``htk=False``."""
    f = np.asarray(f, dtype=np.float64)
    return np.where(f >= _MIN_LOG_HZ, _MIN_LOG_MEL + np.log(np.maximum(f, 1e-10) / _MIN_LOG_HZ) / _LOGSTEP, f / _F_SP)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL)), _F_SP * m)


@lru_cache(maxsize=16)
def mel_filterbank(*, sr: int = SAMPLE_RATE, n_fft: int = 512, n_mels: int = 64,
                   fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Slaney-normalised triangular mel filters.

    Returns
    -------
    np.ndarray [shape=(n_mels, 1 + n_fft // 2)], float32, read-only (cached)

    Examples
    --------
    >>> mel_filterbank(n_mels=64).shape
    (64, 257)
    """
    fmax = sr / 2 if fmax is None else fmax
    if not 0 <= fmin < fmax <= sr / 2:
        raise ParameterError(f"need 0 <= fmin < fmax <= sr/2, got fmin={fmin}, fmax={fmax}, sr={sr}")
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    out = weights.astype(np.float32)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=8)
def _window(win_length: int) -> np.ndarray:
    n = np.arange(win_length)
    w = (0.5 - 0.5 * np.cos(2 * np.pi * n / win_length)).astype(np.float32)  # periodic Hann
    w.setflags(write=False)
    return w


def melspectrogram(y: np.ndarray, *, config: LogMelConfig = LogMelConfig()) -> np.ndarray:
    """Mel power spectrogram of mono audio.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)] or [shape=(batch, n)]
    config : LogMelConfig

    Returns
    -------
    np.ndarray [shape=(..., n_mels, 1 + n // hop_length)], float32

    Examples
    --------
    >>> melspectrogram(np.zeros(16000, dtype=np.float32)).shape
    (64, 101)
    """
    y = np.asarray(y, dtype=np.float32)
    c = config
    if c.win_length > c.n_fft:
        raise ParameterError(f"win_length ({c.win_length}) must not exceed n_fft ({c.n_fft})")
    half = c.n_fft // 2
    pad = [(0, 0)] * (y.ndim - 1) + [(half, half)]
    padded = np.pad(y, pad)  # center=True with zero padding, as librosa >= 0.10
    n_frames = 1 + (padded.shape[-1] - c.n_fft) // c.hop_length
    if n_frames < 1 or y.shape[-1] == 0:  # centre padding alone would make a frame of nothing
        raise ParameterError(f"audio of {y.shape[-1]} samples is too short for n_fft={c.n_fft}")
    # librosa centres the win_length window inside n_fft; only those samples are non-zero, and a
    # shift inside the FFT frame changes phase, not power, so we transform just that span.
    offset = (c.n_fft - c.win_length) // 2
    frames = np.lib.stride_tricks.sliding_window_view(padded, c.win_length, axis=-1)
    frames = frames[..., offset : offset + (n_frames - 1) * c.hop_length + 1 : c.hop_length, :]
    lead = frames.shape[:-2]
    frames = frames.reshape(-1, c.win_length)  # a view when y is 1-D
    fb_t = np.ascontiguousarray(
        mel_filterbank(sr=c.sr, n_fft=c.n_fft, n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax).T
    )
    window = _window(c.win_length)
    out = np.empty((frames.shape[0], c.n_mels), dtype=np.float32)
    # Blocks of ~1k frames keep the FFT's working set in cache: 6x faster than one big rfft.
    for i in range(0, frames.shape[0], _BLOCK_FRAMES):
        spec = scipy.fft.rfft(frames[i : i + _BLOCK_FRAMES] * window, n=c.n_fft, axis=-1)
        power = spec.real**2 + spec.imag**2
        np.dot(power, fb_t, out=out[i : i + _BLOCK_FRAMES])
    return np.swapaxes(out.reshape(*lead, n_frames, c.n_mels), -1, -2)


def logmel(y: np.ndarray, *, config: LogMelConfig = LogMelConfig()) -> np.ndarray:
    """Natural-log mel spectrogram, ``log(mel + log_offset)``.

    Returns
    -------
    np.ndarray [shape=(..., n_mels, frames)], float32

    Examples
    --------
    >>> logmel(np.zeros(16000, dtype=np.float32)).shape
    (64, 101)
    """
    return np.log(melspectrogram(y, config=config) + np.float32(config.log_offset))
