"""emovox.audio: every format and shape decodes to float32 at 16 kHz; every bad input is one AudioError."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.audio import SAMPLE_RATE, info, load, resample, stream, validate
from emovox.errors import AudioError, ParameterError

from .conftest import tone

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")


def _ffmpeg(src: Path, dst: Path, *args: str) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), *args, str(dst)], check=True)
    return dst


@pytest.mark.parametrize("fmt,subtype,ext", [("WAV", "PCM_16", "wav"), ("WAV", "PCM_32", "wav"), ("WAV", "FLOAT", "wav"),
                                             ("FLAC", "PCM_16", "flac"), ("OGG", "VORBIS", "ogg"), ("OGG", "OPUS", "opus"),
                                             ("AIFF", "PCM_16", "aiff")])
def test_soundfile_formats_decode_to_16k_float32(tmp_path, fmt, subtype, ext):
    y = tone(440, 1.0, sr=48000)
    path = tmp_path / f"x.{ext}"
    sf.write(path, y, 48000, format=fmt, subtype=subtype)
    out = load(path)
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(len(out) - SAMPLE_RATE) <= 400  # Opus/Vorbis add a little padding
    assert 0.2 < np.abs(out).max() < 0.4


def test_aiff_named_wav_is_read_by_content(tmp_path):
    path = tmp_path / "actually_aiff.wav"
    sf.write(path, tone(), SAMPLE_RATE, format="AIFF")
    assert len(load(path)) == SAMPLE_RATE


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 96000])
def test_resampling_keeps_duration_and_pitch(tmp_path, sr):
    path = tmp_path / f"r{sr}.wav"
    sf.write(path, tone(1000, 2.0, sr=sr), sr)
    y = load(path)
    assert len(y) == 2 * SAMPLE_RATE
    spectrum = np.abs(np.fft.rfft(y))
    peak_hz = np.argmax(spectrum) * SAMPLE_RATE / len(y)
    assert abs(peak_hz - 1000) < 2


def test_stereo_and_six_channels_mix_or_split(tmp_path):
    y = np.stack([tone(200), tone(300), tone(400), tone(500), tone(600), tone(700)], axis=1)
    path = tmp_path / "six.wav"
    sf.write(path, y, SAMPLE_RATE)
    assert load(path).shape == (SAMPLE_RATE,)
    split = load(path, channels="split")
    assert split.shape == (6, SAMPLE_RATE)
    np.testing.assert_allclose(split[2], tone(400), atol=1e-4)


def test_bytes_and_file_objects(tmp_path):
    buf = io.BytesIO()
    sf.write(buf, tone(), SAMPLE_RATE, format="FLAC")
    data = buf.getvalue()
    assert len(load(data)) == SAMPLE_RATE
    assert len(load(io.BytesIO(data))) == SAMPLE_RATE


def test_near_silent_audio_is_valid(tmp_path):
    path = tmp_path / "quiet.wav"
    sf.write(path, tone(amp=1e-6), SAMPLE_RATE, subtype="FLOAT")
    assert np.abs(load(path)).max() < 1e-5


@needs_ffmpeg
@pytest.mark.parametrize("ext,args", [("mp3", ()), ("m4a", ("-c:a", "aac")), ("webm", ("-c:a", "libopus")), ("mp4", ("-c:a", "aac"))])
def test_ffmpeg_formats(tmp_path, ext, args):
    src = tmp_path / "src.wav"
    sf.write(src, np.stack([tone(300, 2.0, 44100), tone(500, 2.0, 44100)], 1), 44100)
    path = _ffmpeg(src, tmp_path / f"x.{ext}", *args)
    y = load(path)
    assert y.dtype == np.float32 and abs(len(y) - 2 * SAMPLE_RATE) < 0.1 * SAMPLE_RATE
    assert load(path, channels="split").shape[0] == 2
    assert abs(len(load(path.read_bytes())) - len(y)) < 0.1 * SAMPLE_RATE


def _bad_inputs(tmp: Path) -> dict[str, object]:
    good = tmp / "good.wav"
    sf.write(good, tone(seconds=2.0), SAMPLE_RATE)
    raw = good.read_bytes()
    (tmp / "empty.wav").write_bytes(b"")
    (tmp / "truncated.wav").write_bytes(raw[:30])
    (tmp / "garbage.flac").write_bytes(np.random.default_rng(0).bytes(5000))
    (tmp / "notes.txt").write_text("this is not audio\n" * 50)
    (tmp / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 200)
    sf.write(tmp / "zero.wav", np.zeros((0,), dtype=np.float32), SAMPLE_RATE)
    nan = tone()
    nan[100] = np.nan
    sf.write(tmp / "nan.wav", nan, SAMPLE_RATE, subtype="FLOAT")
    inf = tone()
    inf[5] = np.inf
    sf.write(tmp / "inf.wav", inf, SAMPLE_RATE, subtype="FLOAT")
    return {
        "missing": tmp / "does-not-exist.wav",
        "directory": tmp,
        "empty": tmp / "empty.wav",
        "zero samples": tmp / "zero.wav",
        "truncated": tmp / "truncated.wav",
        "corrupt": tmp / "garbage.flac",
        "text": tmp / "notes.txt",
        "image": tmp / "picture.png",
        "nan": tmp / "nan.wav",
        "inf": tmp / "inf.wav",
        "empty bytes": b"",
    }


def test_every_bad_input_is_one_line_audio_error(tmp_path):
    for what, source in _bad_inputs(tmp_path).items():
        with pytest.raises(AudioError) as exc:
            load(source)
        message = str(exc.value)
        assert "\n" not in message, what
        if isinstance(source, Path):
            assert str(source) in message, what


def test_validate_rejects_and_converts():
    with pytest.raises(AudioError):
        validate(np.array([], dtype=np.float32))
    assert validate(np.array([0, 32767], dtype=np.int16)).dtype == np.float32
    with pytest.raises(ParameterError):
        resample(np.zeros(10), 0)


@pytest.mark.parametrize("sr,block", [(16000, 0.7), (44100, 1.3), (8000, 2.0)])
def test_stream_blocks_concatenate_to_load(tmp_path, sr, block):
    rng = np.random.default_rng(1)
    y = (0.1 * rng.standard_normal((2, sr * 5))).astype(np.float32)
    path = tmp_path / "s.flac"
    sf.write(path, y.T, sr)
    whole = load(path, channels="split")
    blocks = list(stream(path, block_seconds=block, channels="split"))
    assert all(b.shape[0] == 2 for b in blocks)
    joined = np.concatenate(blocks, axis=1)
    assert joined.shape == whole.shape
    np.testing.assert_allclose(joined, whole, atol=2e-3)
    mono = np.concatenate(list(stream(path, block_seconds=block)))
    assert mono.ndim == 1 and len(mono) == whole.shape[1]


@needs_ffmpeg
def test_stream_ffmpeg_format(tmp_path):
    src = tmp_path / "src.wav"
    sf.write(src, tone(300, 3.0, 44100), 44100)
    path = _ffmpeg(src, tmp_path / "x.m4a", "-c:a", "aac")
    total = sum(len(b) for b in stream(path, block_seconds=1.0))
    assert abs(total - 3 * SAMPLE_RATE) < 0.1 * SAMPLE_RATE


def test_stream_bad_input(tmp_path):
    (tmp_path / "e.wav").write_bytes(b"")
    with pytest.raises(AudioError):
        list(stream(tmp_path / "e.wav"))
    with pytest.raises(AudioError):
        list(stream(tmp_path / "missing.wav"))


def test_info_reads_header(tmp_path):
    path = tmp_path / "i.wav"
    sf.write(path, np.zeros((8000, 2), dtype=np.float32), 8000)
    i = info(path)
    assert (i.sample_rate, i.channels, i.frames, i.duration) == (8000, 2, 8000, 1.0)


def _cut(tmp_path: Path, fmt: str, subtype: str, ext: str, *, keep: float | int = 0.5) -> Path:
    """A 3.3 s file of ``fmt`` with only the first half (or the first ``keep`` bytes) kept."""
    y = (np.random.default_rng(0).normal(0, 0.1, int(3.3 * SAMPLE_RATE))).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, y, SAMPLE_RATE, format=fmt, subtype=subtype)
    data = buf.getvalue()
    path = tmp_path / f"cut.{ext}"
    path.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    return path


@pytest.mark.parametrize(("fmt", "subtype", "ext"), [("WAV", "PCM_16", "wav"), ("FLAC", "PCM_16", "flac"),
                                                     ("MP3", "MPEG_LAYER_III", "mp3")])
def test_truncated_files_are_errors_unless_partial_is_allowed(tmp_path, fmt, subtype, ext):
    if fmt == "MP3" and "MP3" not in sf.available_formats():
        pytest.skip("libsndfile without MP3")
    path = _cut(tmp_path, fmt, subtype, ext)
    for read in (lambda **kw: load(path, **kw), lambda **kw: load(path.read_bytes(), **kw),
                 lambda **kw: np.concatenate(list(stream(path, block_seconds=0.5, **kw)))):
        with pytest.raises(AudioError, match=r"truncated: decoded \d\.\d\d s of 3\.30 s.*allow_partial=True"):
            read()
        partial = read(allow_partial=True)
        assert 0.5 * SAMPLE_RATE < len(partial) < 3.0 * SAMPLE_RATE
    with pytest.raises(AudioError, match=f"{path}: truncated"):
        load(path)


def test_first_2000_bytes_of_a_flac_named_wav_is_truncated(tmp_path):
    # the case: the head of a FLAC saved as .wav; libsndfile opens it (header 3.30 s)
    path = _cut(tmp_path, "FLAC", "PCM_16", "flac", keep=2000).rename(tmp_path / "cut.wav")
    with pytest.raises(AudioError, match=r"cut\.wav: truncated: decoded 0\.\d\d s of 3\.30 s"):
        load(path)


def test_whole_files_still_load(tmp_path):
    path = _cut(tmp_path, "FLAC", "PCM_16", "flac", keep=1.0)
    assert load(path).shape == (int(3.3 * SAMPLE_RATE),)
