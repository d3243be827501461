"""Training-time augmentation (numpy/scipy only), switched and parameterised by a recipe's ``[augment]``.

It sits with audio, below features and models: the Whisper frame cache
(:mod:`emovox.features.whisper.frames`) draws augmented copies of clips, the neural training loop
(:mod:`emovox.models.neural`) augments its batches, and evaluation simulates channels with it.

Waveform augmentations (each ``{p = probability, ...}``; omitted or ``false`` = off)::

    noise        = { p = 0.5, snr_db = [5, 30], colors = ["white", "pink", "brown"] }
    gain         = { p = 0.5, db = [-12, 12] }
    shift        = { p = 0.5, seconds = 0.5 }          # circular shift by up to +-seconds
    time_stretch = { p = 0.3, rate = [0.85, 1.15] }    # phase vocoder, pitch kept
    pitch_shift  = { p = 0.3, semitones = [-2, 2] }    # phase vocoder + resampling, tempo kept
    speed        = { p = 0.3, factor = [0.9, 1.1] }    # resampling: tempo and pitch together
    reverb       = { p = 0.3, rt60 = [0.2, 0.8], wet = [0.2, 0.6] }  # synthetic exponential RIR
    telephone    = { p = 0.2 }                         # 8 kHz, 300-3400 Hz band, 8-bit mu-law

Spectrogram level, inside the training loop::

    specaugment  = { p = 0.8, freq_masks = 2, freq_width = 8, time_masks = 2, time_width = 30 }
    mixup        = { p = 0.5, alpha = 0.4 }

Every function takes the random generator, so a seed fixes the result. Only training items are
ever augmented; validation and test clips go through the plain frontend.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.signal

from ..errors import ParameterError
from .io import SAMPLE_RATE

__all__ = ["Augmenter", "WAVE_AUGMENTATIONS", "add_noise", "colored_noise", "gain", "shift",
           "time_stretch", "pitch_shift", "speed", "reverb", "telephone", "spec_augment", "mixup_pair"]

SR = SAMPLE_RATE


def colored_noise(n: int, *, color: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise of ``n`` samples with a 1/f^a power spectrum (white a=0, pink 1, brown 2)."""
    alpha = {"white": 0.0, "pink": 1.0, "brown": 2.0}.get(color)
    if alpha is None:
        raise ParameterError(f"unknown noise colour {color!r}; choose white, pink or brown")
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 2 else 1.0
    x = np.fft.irfft(spec / f ** (alpha / 2), n=n)
    return (x / (np.sqrt(np.mean(x**2)) + 1e-12)).astype(np.float32)


def add_noise(y: np.ndarray, rng: np.random.Generator, *, snr_db: tuple[float, float] = (5, 30),
              colors: tuple[str, ...] = ("white", "pink", "brown")) -> np.ndarray:
    """Add coloured noise at an SNR drawn from ``snr_db``."""
    snr = rng.uniform(*snr_db)
    noise = colored_noise(len(y), color=str(rng.choice(list(colors))), rng=rng)
    rms = np.sqrt(np.mean(y.astype(np.float64) ** 2)) + 1e-8
    return (y + noise * rms / 10 ** (snr / 20)).astype(np.float32)


def gain(y: np.ndarray, rng: np.random.Generator, *, db: tuple[float, float] = (-12, 12)) -> np.ndarray:
    return (y * 10 ** (rng.uniform(*db) / 20)).astype(np.float32)


def shift(y: np.ndarray, rng: np.random.Generator, *, seconds: float = 0.5) -> np.ndarray:
    k = int(rng.integers(-int(seconds * SR), int(seconds * SR) + 1))
    return np.roll(y, k).astype(np.float32)


def _resample_linear(y: np.ndarray, factor: float) -> np.ndarray:
    """Play ``y`` ``factor`` times faster (length / factor) by band-limited polyphase resampling."""
    up, down = 100, int(round(100 * factor))
    return scipy.signal.resample_poly(y, up, down).astype(np.float32)


def time_stretch(y: np.ndarray, rng: np.random.Generator | None = None, *,
                 rate: tuple[float, float] | float = (0.85, 1.15), n_fft: int = 512,
                 hop: int = 128) -> np.ndarray:
    """Phase-vocoder time stretch: ``rate`` > 1 is faster (shorter), pitch unchanged."""
    if isinstance(rate, (int, float, np.generic)):  # a fixed rate
        r = float(rate)
    elif rng is None:
        raise TypeError(f"time_stretch: rate {rate!r} is a range; pass rng to draw from it")
    else:
        r = float(rng.uniform(*rate))
    if len(y) < n_fft:
        return y.astype(np.float32)
    _, _, z = scipy.signal.stft(y, nperseg=n_fft, noverlap=n_fft - hop, boundary="even")
    steps = np.arange(0, z.shape[1] - 1, r)
    mag0, mag1 = np.abs(z[:, steps.astype(int)]), np.abs(z[:, steps.astype(int) + 1])
    frac = steps - np.floor(steps)
    mag = (1 - frac) * mag0 + frac * mag1
    expected = 2 * np.pi * hop * np.arange(z.shape[0]) / n_fft
    dphi = np.angle(z[:, 1:]) - np.angle(z[:, :-1]) - expected[:, None]
    dphi = dphi - 2 * np.pi * np.round(dphi / (2 * np.pi)) + expected[:, None]
    phase = np.angle(z[:, :1]) + np.concatenate(
        [np.zeros((z.shape[0], 1)), np.cumsum(dphi[:, steps.astype(int)[:-1]], axis=1)], axis=1)
    _, out = scipy.signal.istft(mag * np.exp(1j * phase), nperseg=n_fft, noverlap=n_fft - hop,
                                boundary=True)
    return out.astype(np.float32)


def pitch_shift(y: np.ndarray, rng: np.random.Generator, *,
                semitones: tuple[float, float] = (-2, 2)) -> np.ndarray:
    """Shift pitch by a random number of semitones, keeping the duration (about the same)."""
    factor = 2 ** (rng.uniform(*semitones) / 12)
    stretched = time_stretch(y, rate=1 / factor)  # longer by `factor` ...
    return _resample_linear(stretched, factor)  # ... then played `factor` faster


def speed(y: np.ndarray, rng: np.random.Generator, *, factor: tuple[float, float] = (0.9, 1.1)) -> np.ndarray:
    """Speed perturbation (tempo and pitch together), as in Kaldi recipes."""
    return _resample_linear(y, rng.uniform(*factor))


def reverb(y: np.ndarray, rng: np.random.Generator, *, rt60: tuple[float, float] = (0.2, 0.8),
           wet: tuple[float, float] = (0.2, 0.6)) -> np.ndarray:
    """Convolve with a synthetic room response: exponentially decaying noise (RT60 drawn)."""
    t60 = rng.uniform(*rt60)
    n = int(t60 * SR)
    t = np.arange(n) / SR
    rir = rng.standard_normal(n) * np.exp(-6.9 * t / t60)  # -60 dB at t60
    rir[0] = 0.0
    rir /= np.sqrt(np.sum(rir**2)) + 1e-12
    w = rng.uniform(*wet)
    wet_sig = scipy.signal.fftconvolve(y, rir)[: len(y)]
    out = (1 - w) * y + w * wet_sig
    return (out * (np.abs(y).max() / (np.abs(out).max() + 1e-9))).astype(np.float32)


def telephone(y: np.ndarray, rng: np.random.Generator | None = None, *, mu: int = 255) -> np.ndarray:
    """Narrow-band telephone channel: 8 kHz, 300-3400 Hz band-pass, 8-bit mu-law, back to 16 kHz."""
    x = scipy.signal.resample_poly(y, 1, 2)
    sos = scipy.signal.butter(4, [300, 3400], btype="bandpass", fs=8000, output="sos")
    x = scipy.signal.sosfilt(sos, x)
    peak = np.abs(x).max() + 1e-9
    x = x / peak
    code = np.round((np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu) + 1) / 2 * mu)
    x = 2 * code / mu - 1
    x = np.sign(x) * ((1 + mu) ** np.abs(x) - 1) / mu * peak
    return scipy.signal.resample_poly(x, 2, 1)[: len(y)].astype(np.float32)


WAVE_AUGMENTATIONS: dict[str, Callable[..., np.ndarray]] = {
    "noise": add_noise, "gain": gain, "shift": shift, "time_stretch": time_stretch,
    "pitch_shift": pitch_shift, "speed": speed, "reverb": reverb, "telephone": telephone,
}
#: The order waveform augmentations are applied in (source changes first, channel last).
ORDER = ("speed", "time_stretch", "pitch_shift", "shift", "gain", "reverb", "noise", "telephone")


def spec_augment(x: np.ndarray, rng: np.random.Generator, *, freq_masks: int = 2, freq_width: int = 8,
                 time_masks: int = 2, time_width: int = 30) -> np.ndarray:
    """SpecAugment masks on a log-mel ``[n_mels, frames]``; masked cells get the clip's mean."""
    x = x.copy()
    fill = x.mean()
    m, t = x.shape
    for _ in range(freq_masks):
        w = int(rng.integers(0, freq_width + 1))
        f0 = int(rng.integers(0, max(1, m - w)))
        x[f0 : f0 + w] = fill
    for _ in range(time_masks):
        w = int(rng.integers(0, min(time_width, t // 4) + 1))
        t0 = int(rng.integers(0, max(1, t - w)))
        x[:, t0 : t0 + w] = fill
    return x


def mixup_pair(n: int, rng: np.random.Generator, *, alpha: float = 0.4) -> tuple[float, np.ndarray]:
    """Mixup weight ``lam`` ~ Beta(alpha, alpha) (kept >= 0.5) and a partner permutation of ``n`` items."""
    lam = float(rng.beta(alpha, alpha))
    return max(lam, 1 - lam), rng.permutation(n)


def _options(name: str, value: object) -> dict | None:
    if value is False or value is None:
        return None
    if value is True:
        return {"p": 1.0}
    if not isinstance(value, dict):
        raise ParameterError(f"[augment] {name} must be a table like {{ p = 0.5, ... }}, got {value!r}")
    opts = dict(value)
    if not opts.pop("enabled", True):
        return None
    p = float(opts.get("p", 1.0))
    if not 0.0 <= p <= 1.0:
        raise ParameterError(f"[augment] {name}.p must be in [0, 1], got {p}")
    opts["p"] = p
    return opts


class Augmenter:
    """The recipe's ``[augment]`` table as callables; an empty table does nothing."""

    def __init__(self, config: dict | None = None, *, sr: int = SR):
        config = dict(config or {})
        unknown = set(config) - set(WAVE_AUGMENTATIONS) - {"specaugment", "mixup"}
        if unknown:
            raise ParameterError(f"[augment]: unknown augmentation(s) {sorted(unknown)}; "
                                 f"choose from {', '.join([*WAVE_AUGMENTATIONS, 'specaugment', 'mixup'])}")
        if sr != SR:
            raise ParameterError(f"augmentation works at {SR} Hz, got sr={sr}")
        self.wave = [(k, o) for k in ORDER if (o := _options(k, config.get(k))) is not None]
        self.spec = _options("specaugment", config.get("specaugment"))
        self.mix = _options("mixup", config.get("mixup"))

    @property
    def wave_active(self) -> bool:
        return bool(self.wave)

    def plan(self, rng: np.random.Generator) -> list[tuple[str, dict]]:
        """Draw which waveform augmentations fire for one item (each with its ``p``)."""
        return [(name, opts) for name, opts in self.wave if rng.random() < opts["p"]]

    def apply(self, y: np.ndarray, rng: np.random.Generator,
              plan: list[tuple[str, dict]] | None = None) -> np.ndarray:
        """Apply the waveform augmentations of ``plan`` (default: drawn now), ``[n] -> [m]`` float32."""
        for name, opts in self.plan(rng) if plan is None else plan:
            kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in opts.items() if k != "p"}
            y = WAVE_AUGMENTATIONS[name](y, rng, **kwargs)
        y = np.nan_to_num(y.astype(np.float32, copy=False))
        return np.clip(y, -1.0, 1.0) if np.abs(y).max() > 1.0 else y

    def spec_augment(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """SpecAugment each item of a batch ``[B, n_mels, frames]`` with probability ``p``."""
        if self.spec is None:
            return x
        kwargs = {k: v for k, v in self.spec.items() if k != "p"}
        return np.stack([spec_augment(xi, rng, **kwargs) if rng.random() < self.spec["p"] else xi
                         for xi in x])

    def mixup(self, n: int, rng: np.random.Generator) -> tuple[float, np.ndarray | None]:
        """``(lam, permutation)`` for this batch, or ``(1.0, None)`` when mixup is off or not drawn."""
        if self.mix is None or n < 2 or rng.random() >= self.mix["p"]:
            return 1.0, None
        return mixup_pair(n, rng, alpha=float(self.mix.get("alpha", 0.4)))
