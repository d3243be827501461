"""Waveform and spectrogram augmentations: shape, dtype, finiteness, determinism, effect; no val leak."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.audio import augment as A
from emovox.errors import ParameterError

SR = 16000
LENGTH_KEEPING = ("noise", "gain", "shift", "reverb", "telephone")
LENGTH_CHANGING = ("time_stretch", "pitch_shift", "speed")


def _speechlike(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 140 + 30 * np.sin(2 * np.pi * 3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    y = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
    return (0.2 * y + 0.001 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.mark.parametrize("name", LENGTH_KEEPING + LENGTH_CHANGING)
def test_augmentation_is_sane_deterministic_and_changes_the_signal(name):
    y = _speechlike()
    fn = A.WAVE_AUGMENTATIONS[name]
    a = fn(y.copy(), np.random.default_rng(7))
    b = fn(y.copy(), np.random.default_rng(7))
    assert a.dtype == np.float32 and a.ndim == 1
    assert np.isfinite(a).all()
    assert np.array_equal(a, b)
    if name in LENGTH_KEEPING:
        assert a.shape == y.shape
    else:
        assert 0.7 * len(y) < len(a) < 1.3 * len(y)
    n = min(len(a), len(y))
    assert not np.allclose(a[:n], y[:n], atol=1e-4)


def test_time_stretch_rate_sets_duration():
    y = _speechlike(2.0)
    assert abs(len(A.time_stretch(y, rate=2.0)) - len(y) / 2) < 0.02 * len(y)
    assert abs(len(A.time_stretch(y, rate=0.5)) - 2 * len(y)) < 0.02 * len(y)


def test_noise_hits_the_requested_snr():
    y = _speechlike()
    out = A.add_noise(y, np.random.default_rng(0), snr_db=(10, 10), colors=("pink",))
    snr = 10 * np.log10(np.mean(y**2) / np.mean((out - y) ** 2))
    assert abs(snr - 10) < 0.1


def test_colored_noise_spectral_slopes():
    rng = np.random.default_rng(0)
    lows = {}
    for color in ("white", "pink", "brown"):
        spec = np.abs(np.fft.rfft(A.colored_noise(SR, color=color, rng=rng))) ** 2
        lows[color] = spec[10:200].mean() / spec[4000:8000].mean()
    assert lows["white"] < lows["pink"] < lows["brown"]


def test_telephone_removes_the_high_band():
    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal(SR)).astype(np.float32)
    spec = np.abs(np.fft.rfft(A.telephone(y))) ** 2
    freqs = np.fft.rfftfreq(SR, 1 / SR)
    assert spec[freqs > 4500].mean() < 1e-3 * spec[(freqs > 500) & (freqs < 3000)].mean()


def test_augmenter_config():
    aug = A.Augmenter({"noise": {"p": 1.0, "snr_db": [20, 20]}, "gain": False, "specaugment": {"p": 1.0}})
    assert aug.wave_active and [n for n, _ in aug.wave] == ["noise"]
    assert not A.Augmenter({}).wave_active
    assert not A.Augmenter({"reverb": {"p": 0.3, "enabled": False}}).wave_active
    with pytest.raises(ParameterError):
        A.Augmenter({"wobble": {"p": 1}})
    with pytest.raises(ParameterError):
        A.Augmenter({"noise": {"p": 2}})
    y = _speechlike()
    assert np.array_equal(A.Augmenter({"noise": {"p": 0.0}}).apply(y, np.random.default_rng(0)), y)


def test_spec_augment_and_mixup():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 64, 301)).astype(np.float32)
    aug = A.Augmenter({"specaugment": {"p": 1.0, "freq_width": 10, "time_width": 40}, "mixup": {"p": 1.0}})
    out = aug.spec_augment(x, np.random.default_rng(1))
    assert out.shape == x.shape and out.dtype == np.float32
    assert not np.array_equal(out, x)
    assert np.array_equal(out, aug.spec_augment(x, np.random.default_rng(1)))
    lam, perm = aug.mixup(4, np.random.default_rng(0))
    assert 0.5 <= lam <= 1.0 and sorted(perm) == [0, 1, 2, 3]
    assert A.Augmenter({}).mixup(4, rng) == (1.0, None)


def test_fit_never_augments_validation(monkeypatch):
    pytest.importorskip("torch")
    from emovox.models import NeuralClassifier

    seen: list[float] = []
    original = A.Augmenter.apply

    def spy(self, y, rng, plan=None):
        seen.append(float(np.abs(y).max()))
        return original(self, y, rng, plan)

    monkeypatch.setattr(A.Augmenter, "apply", spy)
    train = [0.25 * _speechlike(1.0, seed=i) for i in range(8)]  # peaks < 0.5
    val = [0.9 / 0.2 * _speechlike(1.0, seed=100 + i) for i in range(4)]  # peaks ~0.9+
    labels = ["a", "b"] * 4
    est = NeuralClassifier(epochs=1, batch_size=4, width=4, hidden=8, threads=1,
                           augment={"gain": {"p": 1.0, "db": [-1, 1]}, "specaugment": {"p": 1.0}})
    est.fit(train, labels, val=(val, ["a", "b"] * 2))
    assert len(seen) == len(train)
    assert max(seen) < 0.6
