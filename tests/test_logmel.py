"""The numpy log-mel frontend against librosa, on speech and noise."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest

from emovox.audio import load
from emovox.errors import ParameterError
from emovox.features import LogMelConfig, logmel, mel_filterbank, melspectrogram

librosa = pytest.importorskip("librosa")

CFG = LogMelConfig()


def librosa_mel(y: np.ndarray, cfg: LogMelConfig = CFG) -> np.ndarray:
    return librosa.feature.melspectrogram(
        y=y, sr=cfg.sr, n_fft=cfg.n_fft, win_length=cfg.win_length, hop_length=cfg.hop_length,
        n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax, center=True, pad_mode="constant", power=2.0)


def rel_error(ours: np.ndarray, ref: np.ndarray) -> float:
    """Max elementwise relative error over bins within 60 dB of the loudest (floor 1e-6 x peak)."""
    return float(np.max(np.abs(ours - ref) / (np.abs(ref) + 1e-6 * np.abs(ref).max())))


def noise(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.1, int(seconds * 16000)).astype(np.float32)


def test_matches_librosa_on_speech(speech_wav):
    y = load(speech_wav)
    ours, ref = melspectrogram(y), librosa_mel(y)
    assert ours.shape == ref.shape
    assert rel_error(ours, ref) < 1e-4


def test_matches_librosa_on_noise():
    y = noise()
    assert rel_error(melspectrogram(y), librosa_mel(y)) < 1e-4


@pytest.mark.parametrize("cfg", [LogMelConfig(n_mels=128, n_fft=1024, win_length=1024),
                                 LogMelConfig(n_mels=40, fmin=50.0, fmax=7600.0)])
def test_matches_librosa_other_configs(cfg):
    y = noise(1.0, seed=1)
    assert rel_error(melspectrogram(y, config=cfg), librosa_mel(y, cfg)) < 1e-4


def test_filterbank_matches_librosa():
    ref = librosa.filters.mel(sr=16000, n_fft=512, n_mels=64)
    np.testing.assert_allclose(mel_filterbank(n_mels=64), ref, rtol=1e-5, atol=1e-8)


def test_logmel_is_log_of_mel_plus_offset():
    y = noise(0.5)
    np.testing.assert_allclose(logmel(y), np.log(melspectrogram(y) + CFG.log_offset), rtol=1e-6)


def test_batch_equals_rows():
    batch = np.stack([noise(1.0, seed=s) for s in range(3)])
    out = logmel(batch)
    assert out.shape == (3, 64, 101)
    for i in range(3):
        np.testing.assert_allclose(out[i], logmel(batch[i]), rtol=1e-5, atol=1e-5)


def test_shape_follows_hop():
    assert logmel(np.zeros(16000, dtype=np.float32)).shape == (64, 101)
    assert logmel(np.zeros(1, dtype=np.float32)).shape == (64, 1)


def test_empty_input_is_an_error():
    with pytest.raises(ParameterError, match="too short"):
        logmel(np.zeros(0, dtype=np.float32))
    with pytest.raises(ParameterError, match="too short"):
        melspectrogram(np.zeros((2, 0), dtype=np.float32))


def test_bad_config_is_an_error():
    with pytest.raises(ParameterError, match="win_length"):
        logmel(noise(0.1), config=LogMelConfig(win_length=1024, n_fft=512))
    with pytest.raises(ParameterError, match="fmax"):
        mel_filterbank(fmax=9000.0)


def test_docstring_examples_hold():
    module = importlib.import_module("emovox.features.logmel")  # the package attribute is the function
    result = doctest.testmod(module, extraglobs={"np": np}, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3 and result.failed == 0


def test_config_round_trip():
    cfg = LogMelConfig(n_mels=80)
    assert cfg.to_dict()["type"] == "logmel"
    assert LogMelConfig.from_dict(cfg.to_dict()) == cfg


def test_config_unknown_key_is_an_error():
    # A frontend setting this version does not know would otherwise be dropped silently.
    with pytest.raises(ParameterError, match="unknown key"):
        LogMelConfig.from_dict({**LogMelConfig().to_dict(), "preemphasis": 0.97})
