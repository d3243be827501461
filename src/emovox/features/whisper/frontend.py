"""Whisper's log-mel frontend in numpy: what the pretrained encoder expects as input.

The same numbers as ``whisper.audio.log_mel_spectrogram`` (80 Slaney mel bands of a 400-point
periodic-Hann STFT every 160 samples, centred with reflect padding, the last frame dropped,
``log10`` floored at 1e-10, then at the input's own maximum - 8, then ``(x + 4) / 4``) without
torch, so the predict path stays numpy + ONNX Runtime.

The floor at ``max - 8`` makes the output depend on the whole input: a turn's log-mel sliced
into windows is not each window's log-mel. emovox applies this frontend to the unit a model was
trained on (a clip, a speech segment), never to a longer stretch that is then cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.fft

from ...audio import SAMPLE_RATE
from ...errors import ParameterError
from ..config import FrontendConfig
from ..logmel import mel_filterbank
from ..windows import chunk_bounds

__all__ = ["WhisperFrontendConfig", "whisper_logmel", "encoder_input", "padded_logmel", "chunk_logmels"]

#: Longest input the encoder takes (its position table holds 30 s) and the shortest the frontend
#: takes (one 25 ms STFT frame).
MAX_SAMPLES = 30 * SAMPLE_RATE
MIN_SAMPLES = 400

_BLOCK_FRAMES = 1024


@dataclass(frozen=True)
class WhisperFrontendConfig(FrontendConfig):
    """Whisper's frontend settings, stored in a model directory as ``{"type": "whisper_logmel", ...}``."""

    TYPE: ClassVar[str] = "whisper_logmel"
    sr: int = SAMPLE_RATE
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 80
    dynamic_range: float = 8.0

    def frames(self, n_samples: int) -> int:
        """Frames of a ``n_samples`` input: ``n_samples // hop_length``."""
        return int(n_samples) // self.hop_length


def _hann(n: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


def whisper_logmel(y: np.ndarray, *, config: WhisperFrontendConfig = WhisperFrontendConfig()) -> np.ndarray:
    """Whisper's normalised log-mel of mono 16 kHz audio.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float audio at 16 kHz, ``n > n_fft // 2``
    config : WhisperFrontendConfig

    Returns
    -------
    np.ndarray [shape=(n_mels, n // hop_length)], float32

    Examples
    --------
    >>> whisper_logmel(np.zeros(16000, dtype=np.float32)).shape
    (80, 100)
    """
    y = np.asarray(y, dtype=np.float32)
    c = config
    half = c.n_fft // 2
    if y.ndim != 1 or y.shape[0] <= half:
        raise ParameterError(f"whisper_logmel needs mono audio longer than {half} samples, got shape {y.shape}")
    padded = np.pad(y, (half, half), mode="reflect")
    n_frames = y.shape[0] // c.hop_length  # torch.stft gives one more; Whisper drops the last
    frames = np.lib.stride_tricks.sliding_window_view(padded, c.n_fft)[: n_frames * c.hop_length : c.hop_length]
    fb_t = np.ascontiguousarray(mel_filterbank(sr=c.sr, n_fft=c.n_fft, n_mels=c.n_mels).T)
    window = _hann(c.n_fft)
    mel = np.empty((n_frames, c.n_mels), dtype=np.float32)
    for i in range(0, n_frames, _BLOCK_FRAMES):
        spec = scipy.fft.rfft(frames[i : i + _BLOCK_FRAMES] * window, axis=-1)
        np.dot((spec.real**2 + spec.imag**2).astype(np.float32), fb_t, out=mel[i : i + _BLOCK_FRAMES])
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - c.dynamic_range)
    return np.ascontiguousarray(((log_spec + 4.0) / 4.0).T)


def encoder_input(y: np.ndarray) -> np.ndarray:
    """The log-mel the encoder is given for a clip: its first 30 s, padded with silence to 25 ms."""
    y = np.asarray(y, dtype=np.float32)[:MAX_SAMPLES]
    return whisper_logmel(np.pad(y, (0, max(0, MIN_SAMPLES - len(y)))))


def padded_logmel(y: np.ndarray, *, min_samples: int,
                  config: WhisperFrontendConfig = WhisperFrontendConfig()) -> np.ndarray:
    """:func:`whisper_logmel` of ``y``, padded with silence to ``min_samples`` first (a very short chunk)."""
    if len(y) < min_samples:
        y = np.pad(y, (0, min_samples - len(y)))
    return whisper_logmel(y, config=config)


def chunk_logmels(y: np.ndarray, *, chunk_samples: int, min_samples: int,
                  config: WhisperFrontendConfig = WhisperFrontendConfig()) -> list[np.ndarray]:
    """The encoder inputs of a clip: equal chunks of at most ``chunk_samples``, each through the frontend.

    How a ``chunks`` model covers a clip, in training (:mod:`.onnx_encoder`) and prediction
    (:meth:`emovox.inference.Predictor.clip_windows`) alike.
    """
    return [padded_logmel(y[a:b], min_samples=min_samples, config=config)
            for a, b in chunk_bounds(len(y), chunk=chunk_samples)]
