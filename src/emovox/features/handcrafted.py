"""Hand-crafted utterance features on librosa: MFCC, chroma, mel, ZCR, RMS, pitch, spectral contrast.

``mfcc + chroma + mel`` (40 + 12 + 128 = 180 values) is exactly what the source projects' MLP
used: ``librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40)``, ``chroma_stft(S=|stft(y)|)`` and
``melspectrogram(y=y, sr=sr)``, each averaged over time. Here one STFT is shared by every group;
the values are the same as computing each group on its own (``tests/test_features.py`` checks).

librosa is imported lazily (it is in the ``train`` extra).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

import numpy as np

from .._lazy import require

__all__ = ["ATOMS", "atom_names", "compute", "Analysis", "PITCH_FMIN", "PITCH_FMAX"]

N_MFCC = 40
N_MELS = 128
N_CONTRAST_BANDS = 5  # fmin 200 Hz * 2**5 = 6.4 kHz stays below the 8 kHz Nyquist at 16 kHz
PITCH_FMIN = 65.0  # Hz: low male voice
PITCH_FMAX = 500.0  # Hz: high female / child voice
PITCH_FRAME = 1024  # 64 ms at 16 kHz: >= 4 periods at PITCH_FMIN
PITCH_HOP = 256
VOICING_THRESHOLD = 0.6  # normalised autocorrelation at the yin period
_CHROMA = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def _librosa():
    return require("librosa", extra="train")


class Analysis:
    """The intermediate representations of one utterance, each computed once and only if needed.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float32 mono
    sr : int
    """

    def __init__(self, y: np.ndarray, *, sr: int) -> None:
        self.y = y
        self.sr = sr

    @cached_property
    def magnitude(self) -> np.ndarray:
        """|STFT| with librosa's defaults (n_fft 2048, hop 512, Hann, centred): [1 + 1024, frames]."""
        return np.abs(_librosa().stft(self.y))

    @cached_property
    def mel_power(self) -> np.ndarray:
        """Mel power spectrogram (128 Slaney mels) from :attr:`magnitude`: [128, frames]."""
        return _librosa().feature.melspectrogram(S=self.magnitude**2, sr=self.sr, n_mels=N_MELS)


def _mfcc(a: Analysis) -> np.ndarray:
    lr = _librosa()
    return lr.feature.mfcc(S=lr.power_to_db(a.mel_power), sr=a.sr, n_mfcc=N_MFCC).mean(axis=1)


def _chroma(a: Analysis) -> np.ndarray:
    # The source projects passed the magnitude (not power) spectrogram as S: kept for parity.
    return _librosa().feature.chroma_stft(S=a.magnitude, sr=a.sr).mean(axis=1)


def _mel(a: Analysis) -> np.ndarray:
    return a.mel_power.mean(axis=1)


def _stats(x: np.ndarray) -> np.ndarray:
    return np.array([x.mean(), x.std(), x.max()]) if x.size else np.zeros(3)


def _zcr(a: Analysis) -> np.ndarray:
    return _stats(_librosa().feature.zero_crossing_rate(a.y)[0])


def _rms(a: Analysis) -> np.ndarray:
    return _stats(_librosa().feature.rms(S=a.magnitude)[0])


def voiced_f0(y: np.ndarray, *, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """F0 per frame by YIN, and which frames are voiced.

    YIN always returns a period, even for noise or silence, so a frame counts as voiced only
    where the signal's normalised autocorrelation at that period exceeds
    :data:`VOICING_THRESHOLD` (periodic), which is ~20x faster than pYIN's HMM.

    Returns
    -------
    f0 : np.ndarray [shape=(frames,)], Hz
    voiced : np.ndarray [shape=(frames,)], bool
    """
    lr = _librosa()
    f0 = lr.yin(y, fmin=PITCH_FMIN, fmax=PITCH_FMAX, sr=sr, frame_length=PITCH_FRAME, hop_length=PITCH_HOP)
    padded = np.pad(y, PITCH_FRAME // 2)  # yin's centring
    frames = lr.util.frame(padded, frame_length=PITCH_FRAME, hop_length=PITCH_HOP, axis=0)[: len(f0)]
    lag = np.clip(np.round(sr / f0).astype(int), 1, PITCH_FRAME // 2)
    span = PITCH_FRAME - PITCH_FRAME // 2
    a = frames[:, :span]
    b = np.take_along_axis(frames, lag[:, None] + np.arange(span)[None, :], axis=1)
    num = np.einsum("ij,ij->i", a, b)
    den = np.sqrt(np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", b, b)) + 1e-12
    voiced = num / den > VOICING_THRESHOLD
    return f0, voiced


def _pitch(a: Analysis) -> np.ndarray:
    f0, voiced = voiced_f0(a.y, sr=a.sr)
    v = f0[voiced]
    if v.size == 0:
        return np.zeros(6)
    return np.array([v.mean(), v.std(), v.min(), v.max(), v.max() - v.min(), voiced.mean()])


def _contrast(a: Analysis) -> np.ndarray:
    c = _librosa().feature.spectral_contrast(S=a.magnitude, sr=a.sr, n_bands=N_CONTRAST_BANDS)
    return c.mean(axis=1)


#: atom name -> (extractor, value names)
ATOMS: dict[str, tuple[Callable[[Analysis], np.ndarray], tuple[str, ...]]] = {
    "mfcc": (_mfcc, tuple(f"mfcc_{i:02d}" for i in range(N_MFCC))),
    "chroma": (_chroma, tuple(f"chroma_{p}" for p in _CHROMA)),
    "mel": (_mel, tuple(f"mel_{i:03d}" for i in range(N_MELS))),
    "zcr": (_zcr, ("zcr_mean", "zcr_std", "zcr_max")),
    "rms": (_rms, ("rms_mean", "rms_std", "rms_max")),
    "pitch": (_pitch, ("f0_mean", "f0_std", "f0_min", "f0_max", "f0_range", "voiced_fraction")),
    "contrast": (_contrast, tuple(f"contrast_{i}" for i in range(N_CONTRAST_BANDS + 1))),
}


def atom_names(atom: str) -> list[str]:
    """Value names of one hand-crafted group (e.g. ``"pitch"``)."""
    return list(ATOMS[atom][1])


def compute(y: np.ndarray, atoms: list[str], *, sr: int) -> list[np.ndarray]:
    """The vectors of several hand-crafted groups, sharing one STFT.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float32 mono
    atoms : list of names in :data:`ATOMS`

    Returns
    -------
    list of np.ndarray [shape=(len(atom_names(atom)),)], float64, one per atom
    """
    a = Analysis(y, sr=sr)
    return [np.asarray(ATOMS[name][0](a), dtype=np.float64) for name in atoms]
