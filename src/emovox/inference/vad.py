"""Voice activity detection on 30 ms frames: WebRTC's VAD gated by cheap energy and flatness cues.

WebRTC's GMM VAD (``webrtcvad``) alone calls white noise and steady tones "speech", so every
frame must also be loud enough (``energy_floor_db``) and neither noise-flat nor tone-pure
(spectral flatness inside ``flatness_range``); and a whole span whose loudness hardly moves
(:func:`is_steady`: hum, tones, steady noise) is not speech, because speech rises and falls with
its syllables. ``method="energy"`` skips WebRTC (fastest, least robust).

The detector is a streaming object with per-frame state only, so feeding a file block by block
gives exactly the frames that feeding it whole gives.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.fft

from ..audio import SAMPLE_RATE
from ..errors import ParameterError

__all__ = ["FRAME_SECONDS", "FRAME_SAMPLES", "FrameVAD", "speech_mask", "speech_ratio", "is_steady"]

FRAME_SECONDS = 0.03
FRAME_SAMPLES = int(SAMPLE_RATE * FRAME_SECONDS)  # 480
_NFFT = 512
_BAND = slice(4, 240)  # ~125 Hz .. 7.5 kHz of the 512-point spectrum at 16 kHz
_HANN = np.hanning(FRAME_SAMPLES).astype(np.float32)

Method = Literal["webrtc", "energy"]


def frame_energy_db(frames: np.ndarray) -> np.ndarray:
    """Mean power of each frame in dBFS. ``frames``: [n, FRAME_SAMPLES] -> [n]."""
    frames = np.asarray(frames, dtype=np.float32)
    power = np.einsum("ij,ij->i", frames, frames) / np.float32(frames.shape[1])
    return 10.0 * np.log10(power + np.float32(1e-10))


def spectral_flatness(frames: np.ndarray) -> np.ndarray:
    """Geometric over arithmetic mean of the power spectrum in the speech band, per frame.

    ~0.55 for white noise, ~1e-10 for a pure tone, 1e-4 .. 0.3 for speech.
    """
    if len(frames) == 0:
        return np.zeros(0, dtype=np.float32)
    spec = scipy.fft.rfft(frames * _HANN, n=_NFFT, axis=1)[:, _BAND]  # float32 in, complex64 out
    power = spec.real**2 + spec.imag**2 + np.float32(1e-12)
    return np.exp(np.mean(np.log(power), axis=1)) / np.mean(power, axis=1)


class FrameVAD:
    """Streaming speech/non-speech decisions on consecutive 30 ms frames of 16 kHz audio.

    Parameters
    ----------
    aggressiveness : int, 0..3
        WebRTC VAD mode; higher rejects more non-speech.
    method : {"webrtc", "energy"}
    energy_floor_db : float
        Frames quieter than this (dBFS) are never speech.
    flatness_range : (float, float)
        Frames whose spectral flatness lies outside are noise (above) or pure tones (below).

    Examples
    --------
    >>> vad = FrameVAD()
    >>> vad.process(np.zeros(16000, dtype=np.float32)).shape  # 33 whole frames, 160 samples kept
    (33,)
    """

    def __init__(self, *, aggressiveness: int = 2, method: Method = "webrtc",
                 energy_floor_db: float = -55.0, flatness_range: tuple[float, float] = (1e-6, 0.45)):
        if method not in ("webrtc", "energy"):
            raise ParameterError(f"vad method must be 'webrtc' or 'energy', got {method!r}")
        if aggressiveness not in (0, 1, 2, 3):
            raise ParameterError(f"vad aggressiveness must be 0..3, got {aggressiveness!r}")
        self.method = method
        self.energy_floor_db = float(energy_floor_db)
        self.flatness_range = flatness_range
        self._vad = None
        if method == "webrtc":
            import webrtcvad

            self._vad = webrtcvad.Vad(int(aggressiveness))
        self._carry = np.zeros(0, dtype=np.float32)

    @property
    def carry_samples(self) -> int:
        """Samples received but not yet decided (less than one frame)."""
        return len(self._carry)

    def process(self, y: np.ndarray) -> np.ndarray:
        """Decisions for every whole frame completed by ``y`` (leftover samples are kept).

        Parameters
        ----------
        y : np.ndarray [shape=(n,)], float32 at 16 kHz

        Returns
        -------
        np.ndarray [shape=(frames,)], bool
        """
        y = np.concatenate([self._carry, np.asarray(y, dtype=np.float32)])
        n = len(y) // FRAME_SAMPLES
        self._carry = y[n * FRAME_SAMPLES:].copy()
        frames = y[: n * FRAME_SAMPLES].reshape(n, FRAME_SAMPLES)
        mask = frame_energy_db(frames) > self.energy_floor_db
        idx = np.flatnonzero(mask)
        if len(idx):
            flat = spectral_flatness(frames[idx])
            lo, hi = self.flatness_range
            mask[idx[(flat < lo) | (flat > hi)]] = False
        if self._vad is not None:
            idx = np.flatnonzero(mask)
            if len(idx):
                pcm = (np.clip(frames[idx], -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
                is_speech, step = self._vad.is_speech, 2 * FRAME_SAMPLES
                mask[idx] = [is_speech(pcm[i : i + step], SAMPLE_RATE) for i in range(0, len(pcm), step)]
        return mask


def speech_mask(y: np.ndarray, **kwargs) -> np.ndarray:
    """Per-30 ms-frame speech decisions of a whole signal (see :class:`FrameVAD` for kwargs).

    Returns
    -------
    np.ndarray [shape=(len(y) // 480,)], bool
    """
    return FrameVAD(**kwargs).process(y)


def is_steady(y: np.ndarray, *, min_spread_db: float = 3.0) -> bool:
    """True if the loud frames of ``y`` keep an almost constant level (tone, hum, steady noise).

    Speech rises and falls with its syllables: the standard deviation of its frame levels is
    6-10 dB; a tone's is < 1 dB.
    """
    n = len(y) // FRAME_SAMPLES
    if n < 3:
        return False
    e = frame_energy_db(np.asarray(y[: n * FRAME_SAMPLES]).reshape(n, FRAME_SAMPLES))
    loud = e[e > e.max() - 30.0]
    return bool(len(loud) >= 3 and float(np.std(loud)) < min_spread_db)


def speech_ratio(y: np.ndarray, **kwargs) -> float:
    """Share of 30 ms frames that are speech (0.0 for steady sounds and clips shorter than a frame)."""
    mask = speech_mask(y, **kwargs)
    if len(mask) == 0 or not mask.any():
        return 0.0
    span = np.asarray(y)[np.flatnonzero(mask)[0] * FRAME_SAMPLES:(np.flatnonzero(mask)[-1] + 1) * FRAME_SAMPLES]
    return 0.0 if is_steady(span) else float(mask.mean())
