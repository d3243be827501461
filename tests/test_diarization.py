"""Speaker diarization: numpy frontend, ONNX encoder, clustering, DER, analyze/CLI with speakers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.audio import load
from emovox.errors import ModelError, ParameterError
from emovox.evaluation.diarization import der
from emovox.inference.diarization import check_speakers, diarize, pad_turns
from emovox.inference.speaker import SPEAKER_DIR, SpeakerEncoder, speaker_mels

from .conftest import SR, speak, tone

LINES = ["Hello, I am calling about my invoice, it is wrong again this month.",
         "I am sorry to hear that. Could you give me the invoice number, please?",
         "Yes, it is four five six seven, from the end of last month.",
         "Thank you. I can see a double charge here, and I will fix it today.",
         "Great, and how long will that take before I see the money back?",
         "It should be back on your account within three working days."]
VOICES = [("en-us", 30, 150), ("en-gb+f3", 85, 180)]


@pytest.fixture(scope="module")
def encoder() -> SpeakerEncoder:
    return SpeakerEncoder.load()


@pytest.fixture(scope="module")
def two_voices(tmp_path_factory) -> tuple[Path, list[tuple[float, float, str]]]:
    """Six alternating turns of two espeak-ng voices (a low male and a high female one), 0.5 s gaps."""
    d = tmp_path_factory.mktemp("conv")
    parts, ref, t = [], [], 0.0
    for i, text in enumerate(LINES):
        voice, pitch, rate = VOICES[i % 2]
        y = load(speak(text, d / f"{i}.wav", voice=voice, pitch=pitch, rate=rate))
        parts += [y, np.zeros(SR // 2, np.float32)]
        ref.append((t, t + len(y) / SR, f"v{i % 2}"))
        t += (len(y) + SR // 2) / SR
    path = d / "conversation.wav"
    sf.write(path, np.concatenate(parts), SR)
    return path, ref


def test_frontend_matches_resemblyzer():
    audio = pytest.importorskip("resemblyzer.audio")
    rng = np.random.default_rng(0)
    t = np.arange(int(1.7 * SR)) / SR
    y = (0.2 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(len(t)))
    y = y.astype(np.float32)
    ours, theirs = speaker_mels(y), audio.wav_to_mel_spectrogram(y)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5 * float(theirs.max()))


def test_onnx_matches_torch(encoder):
    resemblyzer = pytest.importorskip("resemblyzer")
    torch = pytest.importorskip("torch")
    mels = np.random.default_rng(1).random((3, 120, 40)).astype(np.float32)
    with torch.no_grad():
        want = resemblyzer.VoiceEncoder(device="cpu", verbose=False)(torch.from_numpy(mels)).numpy()
    np.testing.assert_allclose(encoder.embed_mels(mels), want, atol=1e-5)


def test_encoder_checks_sha256(tmp_path):
    for name in ("speaker.json", "voice_encoder.onnx"):
        shutil.copy(SPEAKER_DIR / name, tmp_path / name)
    with open(tmp_path / "voice_encoder.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelError, match="SHA-256"):
        SpeakerEncoder.load(tmp_path)
    with pytest.raises(ModelError, match="re-export"):
        SpeakerEncoder.load(tmp_path / "missing")


def test_projection_checked_and_optional(tmp_path):
    for name in ("speaker.json", "voice_encoder.onnx", "projection.npz"):
        shutil.copy(SPEAKER_DIR / name, tmp_path / name)
    dims = json.loads((SPEAKER_DIR / "speaker.json").read_text())["projection"]["dims"]
    assert SpeakerEncoder.load(tmp_path).dims == dims < 256 and SpeakerEncoder.load(tmp_path, projection=False).dims == 256
    with open(tmp_path / "projection.npz", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelError, match="projection.npz: SHA-256"):
        SpeakerEncoder.load(tmp_path)
    (tmp_path / "projection.npz").unlink()
    with pytest.raises(ModelError, match="missing"):
        SpeakerEncoder.load(tmp_path)


def test_embeddings_unit_length(encoder):
    y = tone(200, 2.0) * np.linspace(0.2, 1, 2 * SR, dtype=np.float32)
    windows = [(0, SR), (SR // 2, 3 * SR // 2), (0, SR // 3)]
    raw = SpeakerEncoder.load(projection=False)
    for enc, dims in ((encoder, encoder.dims), (raw, 256)):
        e = enc.embed_windows(y, windows)
        assert e.shape == (3, dims) and enc.embed_windows(y, []).shape == (0, dims)
        np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-4)
    assert encoder.auto_gain != raw.auto_gain  # the count thresholds go with the embeddings


def test_check_speakers():
    assert check_speakers("auto") == "auto" and check_speakers(3) == 3 and check_speakers(np.int64(2)) == 2
    for bad in (0, 7, "two", "2", 2.5, True, None):  # strings from users are parsed at the CLI/API/UI edge
        with pytest.raises(ParameterError, match="speakers must be"):
            check_speakers(bad)


def test_cli_parses_speakers():
    from emovox.cli.analyze import parse_speakers

    assert [parse_speakers(t) for t in (None, "auto", "2", " 3 ")] == [None, "auto", 2, 3]
    for bad in ("two", "-1", "2.5", "AUTO", "²"):
        with pytest.raises(ParameterError, match="speakers must be a count or 'auto'"):
            parse_speakers(bad)


def test_pad_turns_merges_and_clips():
    assert pad_turns([(100, 200), (260, 300), (900, 1000)], pad=40, n=1010) == [(60, 340), (860, 1010)]


def test_der_basics():
    ref = [(0.0, 10.0, "a"), (10.0, 20.0, "b")]
    assert der(ref, [(0.0, 10.0, "2"), (10.0, 20.0, "1")])["der"] == 0.0  # names do not matter
    miss = der(ref, [(0.0, 10.0, "x")])
    assert miss["missed"] == pytest.approx(9.75 / 19.5, abs=0.01) and miss["confusion"] == 0.0
    fa = der([(0.0, 10.0, "a")], [(0.0, 10.0, "x"), (12.0, 14.0, "y")])
    assert fa["false_alarm"] == pytest.approx(2.0 / 9.5, abs=0.01)
    # a boundary 0.2 s off is inside the 0.25 s collar: no error
    assert der(ref, [(0.0, 10.2, "x"), (10.2, 20.0, "y")])["der"] == 0.0


def test_silence_gives_a_message_not_a_crash():
    d = diarize(np.zeros(3 * SR, np.float32), speakers=2)
    assert d.turns == [] and d.speakers == [] and "no speech" in d.message


@pytest.mark.parametrize("make", [lambda: tone(440, 4.0),
                                  lambda: 0.1 * np.random.default_rng(0).standard_normal(4 * SR).astype(np.float32)])
def test_tone_and_noise_are_not_speakers(make):
    d = diarize(make(), speakers="auto")
    assert d.speakers == [] and "no speech" in d.message


def test_music_does_not_crash(encoder):
    """A little tune (notes with attacks and decays, so not steady) gives some result or none."""
    notes = [262, 330, 392, 523, 392, 330] * 2
    y = np.concatenate([tone(f, 0.4) * np.exp(-np.linspace(0, 4, int(0.4 * SR))).astype(np.float32) for f in notes])
    d = diarize(y, speakers="auto", encoder=encoder)
    assert len(d.speakers) <= 4


def test_two_voices(two_voices, encoder):
    path, ref = two_voices
    y = load(path)
    d = diarize(y, speakers=2, encoder=encoder)
    assert d.speakers == ["speaker 1", "speaker 2"]
    assert d.turns[0][2] == "speaker 1"  # named in order of first appearance
    assert der(ref, d.spans())["der"] < 0.15


def test_one_voice_asked_for_three(tmp_path, encoder):
    y = load(speak(" ".join(LINES[:3]), tmp_path / "one.wav", voice="en-us", pitch=40))
    d = diarize(y, speakers=3, encoder=encoder)
    assert len(d.speakers) <= 3
    if len(d.speakers) < 3 or d.message:
        assert "speakers" in d.message
    auto = diarize(y, speakers="auto", encoder=encoder)
    assert len(auto.speakers) >= 1


def test_analyze_with_speakers(two_voices):
    from emovox.inference import analyze

    path, _ = two_voices
    result = analyze(str(path), speakers=2)
    assert result.channels == ["speaker 1", "speaker 2"]
    assert set(result.summary["per_channel"]) == {"speaker 1", "speaker 2"}
    assert result.summary["speakers"] == {"requested": 2, "found": 2, "message": None}
    assert result.envelope.shape[0] == 2
    keys = {"file", "channel", "start", "end", "emotion", "confidence", "uncertain", "probabilities"}
    assert result.segments and all(set(s) == keys for s in result.segments)
    assert {s["channel"] for s in result.segments} == {"speaker 1", "speaker 2"}
    with pytest.raises(ParameterError, match="channels='mix'"):
        analyze(str(path), speakers=2, channels="split")


def test_analyze_speakers_on_silence(tmp_path):
    from emovox.inference import analyze

    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(2 * SR, np.float32), SR)
    result = analyze(str(path), speakers="auto")
    assert result.segments == [] and result.channels == ["mix"]
    assert "no speech" in result.summary["speakers"]["message"]


def test_cli_speakers(two_voices, tmp_path, capsys):
    from emovox.cli import main

    path, _ = two_voices
    out = tmp_path / "timeline.csv"
    assert main(["analyze", str(path), "--speakers", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "speaker 1" in text and "speaker 2" in text
    assert "speaker 2" in out.read_text()
    assert main(["analyze", str(path), "--speakers", "nine"]) != 0


@pytest.mark.corpus
def test_benchmark_on_corpora(corpus_root):
    from emovox.evaluation.diarization import run_benchmark

    r = run_benchmark(corpus_root, conversations=2, seconds=30.0, counts=())
    s = r["summary"]
    assert 0.0 <= s["der_2"] <= 1.0 and 0.0 <= s["der_2_telephone"] <= 1.0
    assert len(r["rows"]) == 4 and s["seconds_per_hour"] > 0
