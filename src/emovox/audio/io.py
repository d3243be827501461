"""Decode any audio to float32 at 16 kHz: soundfile first, an ffmpeg subprocess for the rest.

Audio is validated once, here, where it enters the library: every error is an
:class:`~emovox.errors.AudioError` whose one-line message names the source and the reason.

A file cut short (a broken upload or copy) is an error, not a shorter recording: what was
decoded is compared with the length the header promises (a WAV's data chunk, the frame count
of FLAC/MP3 headers, ffprobe's duration), and decoder errors count as errors. ``allow_partial=True``
accepts the decoded part instead.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import BinaryIO, Literal, Union

import numpy as np
import soundfile as sf

from ..errors import AudioError, ParameterError

__all__ = [
    "SAMPLE_RATE",
    "AudioSource",
    "AudioInfo",
    "load",
    "info",
    "stream",
    "resample",
    "validate",
    "describe",
]

#: The rate every model and frontend in emovox works at.
SAMPLE_RATE = 16000

AudioSource = Union[str, os.PathLike, bytes, bytearray, BinaryIO]  # noqa: UP007 (a runtime alias)
Channels = Literal["mix", "split"]


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read without decoding it all."""

    sample_rate: int
    channels: int
    frames: int
    duration: float
    format: str


def describe(source: AudioSource) -> str:
    """A short name for ``source`` to put in messages."""
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source)} bytes>"
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return getattr(source, "name", None) or "<file object>"


def _check_exists(source: AudioSource) -> None:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise AudioError(f"{path}: no such file")
        if path.is_dir():
            raise AudioError(f"{path}: is a directory, not an audio file")
        if path.stat().st_size == 0:
            raise AudioError(f"{path}: empty file (0 bytes)")
    elif isinstance(source, (bytes, bytearray)) and len(source) == 0:
        raise AudioError("<0 bytes>: empty input")


def _read_bytes(source: AudioSource) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        return Path(source).read_bytes()
    data = source.read()
    return data if isinstance(data, bytes) else bytes(data)


def resample(y: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Resample along the last axis by the exact ratio ``target_sr / orig_sr`` (polyphase).

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)]
    orig_sr, target_sr : int

    Returns
    -------
    np.ndarray [shape=(..., round(n * target_sr / orig_sr))], float32

    Examples
    --------
    >>> resample(np.zeros(8000, dtype=np.float32), 8000).shape
    (16000,)
    """
    if orig_sr <= 0 or target_sr <= 0:
        raise ParameterError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    if orig_sr == target_sr:
        return np.asarray(y, dtype=np.float32)
    from scipy.signal import resample_poly  # ~1 s to import: only when a file needs resampling

    g = gcd(int(orig_sr), int(target_sr))
    out = resample_poly(np.asarray(y, dtype=np.float32), target_sr // g, orig_sr // g, axis=-1)
    return out.astype(np.float32, copy=False)


def validate(y: np.ndarray, *, name: str = "<array>") -> np.ndarray:
    """Check that ``y`` is non-empty, finite audio; return it as float32.

    Raises
    ------
    AudioError
        If ``y`` has no samples or holds NaN or infinite values.
    """
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.floating):
        if np.issubdtype(y.dtype, np.integer):
            y = y.astype(np.float32) / float(np.iinfo(y.dtype).max)
        else:
            raise AudioError(f"{name}: audio must be a numeric array, got dtype {y.dtype}")
    if y.size == 0 or y.shape[-1] == 0:
        raise AudioError(f"{name}: audio has zero samples")
    if not np.all(np.isfinite(y)):
        raise AudioError(f"{name}: audio contains NaN or infinite samples")
    return y.astype(np.float32, copy=False)


def _ffmpeg(name: str) -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise AudioError(f"{name}: soundfile cannot read it and ffmpeg is not installed; "
                         "install ffmpeg (apt install ffmpeg) for this format")
    return exe


def _ffprobe(data: bytes | None, path: str | None) -> tuple[int, float | None]:
    """Channel count and duration (s; None if unknown) of the first audio stream, via ffprobe.

    Without ffprobe: one channel, duration unknown.
    """
    exe = shutil.which("ffprobe")
    if exe is None:
        return 1, None
    args = [exe, "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=channels,duration",
            "-of", "default=noprint_wrappers=1", path if path else "pipe:0"]
    proc = subprocess.run(args, input=data, capture_output=True, timeout=60)
    fields = dict(line.split("=", 1) for line in proc.stdout.decode(errors="replace").splitlines() if "=" in line)
    try:
        channels = max(1, int(fields.get("channels", "1")))
    except ValueError:
        channels = 1
    try:
        duration: float | None = float(fields["duration"])
    except (KeyError, ValueError):
        duration = None
    return channels, duration


def _ffmpeg_decode(source: AudioSource, *, sr: int, name: str) -> tuple[np.ndarray, float | None, str]:
    """Decode with ffmpeg to float32 ``(channels, n)`` at ``sr``.

    Returns the audio, the duration the container promises (None if unknown) and the
    decoder's error output ("" if none).
    """
    exe = _ffmpeg(name)
    path = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
    data = None if path else _read_bytes(source)
    channels, duration = _ffprobe(data, path)
    args = [exe, "-nostdin", "-v", "error", "-i", path if path else "pipe:0", "-vn",
            "-f", "f32le", "-acodec", "pcm_f32le", "-ac", str(channels), "-ar", str(sr), "pipe:1"]
    proc = subprocess.run(args, input=data, capture_output=True, timeout=3600)
    errors = proc.stderr.decode(errors="replace").strip()
    if proc.returncode != 0 or not proc.stdout:
        reason = errors.splitlines()
        last = reason[-1] if reason else "no audio stream"
        raise AudioError(f"{name}: not a readable audio file ({_short(last)})")
    y = np.frombuffer(proc.stdout, dtype=np.float32)
    y = y[: len(y) - len(y) % channels].reshape(-1, channels).T
    return np.ascontiguousarray(y), duration, errors


def _wav_declared_seconds(head: bytes) -> float | None:
    """Duration a RIFF/WAVE header's ``data`` chunk declares; None if not a WAV or unknown.

    libsndfile clamps a cut WAV's frame count to the bytes present, so the header is read
    here. Streamed WAVs that leave the sizes at 0 or 0xFFFFFFFF declare nothing.
    """
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
        return None
    endian = "<" if head[:4] == b"RIFF" else ">"
    pos, block_align, rate = 12, 0, 0
    while pos + 8 <= len(head):
        cid, size = head[pos : pos + 4], struct.unpack(endian + "I", head[pos + 4 : pos + 8])[0]
        body = pos + 8
        if cid == b"fmt " and body + 14 <= len(head):
            rate = struct.unpack(endian + "I", head[body + 4 : body + 8])[0]
            block_align = struct.unpack(endian + "H", head[body + 12 : body + 14])[0]
        elif cid == b"data":
            if size in (0, 0xFFFFFFFF) or not block_align or not rate:
                return None
            return size // block_align / rate
        pos = body + size + (size & 1)
    return None


def _head(source: str | os.PathLike | bytes | bytearray, n: int = 1 << 16) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source[:n])
    with open(source, "rb") as fh:
        return fh.read(n)


def _check_complete(name: str, decoded: float, expected: float | None, problem: str, *,
                    allow_partial: bool) -> None:
    """AudioError if less was decoded than the header promised, or the decoder reported errors."""
    if allow_partial:
        return
    fix = "re-copy or re-upload the file, or pass allow_partial=True (--allow-partial) to use the decoded part"
    if expected is not None and decoded < expected - max(0.1, 0.01 * expected):
        why = f"; decoder: {_short(problem)}" if problem else ""
        raise AudioError(f"{name}: truncated: decoded {decoded:.2f} s of {expected:.2f} s{why}; {fix}")
    if problem:
        raise AudioError(f"{name}: corrupt audio data (decoder: {_short(problem)}); {fix}")


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _soundfile_source(source: AudioSource) -> str | BinaryIO:
    if isinstance(source, (bytes, bytearray)):
        return io.BytesIO(bytes(source))
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return source


def _soundfile_read(handle: sf.SoundFile) -> tuple[np.ndarray, str]:
    """Read an open file to the end, or up to the first decoder error (its message returned).

    One-second reads: libsndfile returns nothing of a read that fails, so this keeps all but
    the last second before the damage.
    """
    parts, problem = [], ""
    while True:
        try:
            data = handle.read(handle.samplerate, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            problem = str(exc)
            break
        if not len(data):
            break
        parts.append(data)
    y = np.concatenate(parts) if parts else np.zeros((0, handle.channels), np.float32)
    return np.ascontiguousarray(y.T), problem


def _decode(source: AudioSource, *, sr: int, allow_partial: bool = False) -> np.ndarray:
    """Decode ``source`` to float32 ``(channels, n)`` at ``sr``; see :func:`load`."""
    name = describe(source)
    _check_exists(source)
    if not isinstance(source, (bytes, bytearray, str, os.PathLike)):
        source = _read_bytes(source)  # file objects are read once, so both decoders can try
        if not source:
            raise AudioError(f"{name}: empty input")
    try:
        handle = sf.SoundFile(_soundfile_source(source))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        y, expected, problem = _ffmpeg_decode(source, sr=sr, name=name)
    else:
        with handle:
            native, frames = handle.samplerate, handle.frames
            y, problem = _soundfile_read(handle)
        expected = frames / native if frames > 0 else None
        declared = _wav_declared_seconds(_head(source))
        if declared is not None:
            expected = max(expected or 0.0, declared)
        if problem and shutil.which("ffmpeg"):  # libsndfile stopped: ffmpeg may decode more of it
            try:
                with_ffmpeg = _ffmpeg_decode(source, sr=native, name=name)
            except AudioError:  # ffmpeg decodes nothing either: judge what libsndfile got
                with_ffmpeg = (y[:, :0], None, problem)
            if with_ffmpeg[0].shape[-1] > y.shape[-1]:
                y, problem = with_ffmpeg[0], with_ffmpeg[2]
        if y.shape[-1] == 0:
            _check_complete(name, 0.0, expected, problem, allow_partial=False)
            raise AudioError(f"{name}: audio has zero samples")
        y = resample(y, native, sr)
    _check_complete(name, y.shape[-1] / sr, expected, problem, allow_partial=allow_partial)
    return validate(y, name=name)


def load(
    source: AudioSource,
    *,
    sr: int = SAMPLE_RATE,
    channels: Channels = "mix",
    allow_partial: bool = False,
) -> np.ndarray:
    """Load audio from a path, bytes or file object as float32 at ``sr``.

    WAV, FLAC, Ogg/Vorbis, Opus, MP3 and AIFF are decoded by soundfile (whatever the file is
    named); anything else ffmpeg reads (m4a, mp4, webm, aac, …) through an ffmpeg subprocess.

    Parameters
    ----------
    source : path, bytes or binary file object
    sr : int
        Target sample rate; resampling uses the exact rational ratio.
    channels : {"mix", "split"}
        ``"mix"`` averages channels to mono; ``"split"`` keeps them apart (for stereo calls with
        agent and customer on separate channels).
    allow_partial : bool
        Accept a file cut short or with decoder errors, returning what could be decoded
        (default: an :class:`AudioError` that says "truncated: decoded X s of Y s").

    Returns
    -------
    np.ndarray [shape=(n,)] for ``"mix"``, [shape=(channels, n)] for ``"split"``; float32

    Raises
    ------
    AudioError
        Missing, empty, corrupt, truncated, non-audio, unsupported or non-finite input.

    Examples
    --------
    >>> import io, soundfile as sf
    >>> buf = io.BytesIO(); sf.write(buf, np.zeros(8000), 8000, format="WAV"); _ = buf.seek(0)
    >>> load(buf).shape
    (16000,)
    """
    if channels not in ("mix", "split"):
        raise ParameterError(f"channels must be 'mix' or 'split', got {channels!r}")
    y = _decode(source, sr=sr, allow_partial=allow_partial)
    if channels == "mix":
        return y.mean(axis=0).astype(np.float32, copy=False) if y.shape[0] > 1 else y[0]
    return y


def info(source: str | os.PathLike) -> AudioInfo:
    """Read a file's rate, channels and length without decoding it (ffmpeg formats: decoded)."""
    name = describe(source)
    _check_exists(source)
    try:
        i = sf.info(os.fspath(source))
        return AudioInfo(i.samplerate, i.channels, i.frames, i.frames / i.samplerate, i.format)
    except (sf.LibsndfileError, RuntimeError):
        y = _ffmpeg_decode(source, sr=SAMPLE_RATE, name=name)[0]
        return AudioInfo(SAMPLE_RATE, y.shape[0], y.shape[1], y.shape[1] / SAMPLE_RATE, "ffmpeg")


def stream(
    source: str | os.PathLike,
    *,
    block_seconds: float = 60.0,
    sr: int = SAMPLE_RATE,
    channels: Channels = "mix",
    allow_partial: bool = False,
) -> Iterator[np.ndarray]:
    """Yield consecutive blocks of a file so that hours of audio are processed in flat memory.

    Blocks are float32 ``(n,)`` (``"mix"``) or ``(channels, n)`` (``"split"``), ``block_seconds``
    long at ``sr`` except the last. Concatenated, they equal :func:`load` of the whole file
    (within resampling precision at block edges). A file cut short raises :class:`AudioError`
    after its last whole block, unless ``allow_partial`` (see :func:`load`).

    Examples
    --------
    >>> total = sum(b.shape[-1] for b in stream("call.flac", block_seconds=30))  # doctest: +SKIP
    """
    if block_seconds <= 0:
        raise ParameterError(f"block_seconds must be positive, got {block_seconds}")
    name = describe(source)
    _check_exists(source)
    try:
        handle = sf.SoundFile(os.fspath(source))
    except (sf.LibsndfileError, RuntimeError):
        yield from _stream_ffmpeg(source, block_seconds=block_seconds, sr=sr, channels=channels,
                                  allow_partial=allow_partial)
        return
    with handle:
        native, total = handle.samplerate, handle.frames
        if total == 0:
            raise AudioError(f"{name}: audio has zero samples")
        declared = _wav_declared_seconds(_head(source))
        read = 0
        # Blocks and context are whole multiples of the resampling period (``down`` input
        # samples <-> ``up`` output samples), so every block maps to exact output indices and
        # the concatenated blocks equal a whole-file resample up to edge effects in the context.
        g = gcd(native, sr)
        up, down = sr // g, native // g
        block = max(1, int(round(block_seconds * native / down))) * down
        ctx = 0 if native == sr else -(-4096 // down) * down
        problem = ""
        for start in range(0, total, block):
            stop = min(total, start + block)
            lo, hi = max(0, start - ctx), min(total, stop + ctx)
            try:
                handle.seek(lo)
                data = handle.read(hi - lo, dtype="float32", always_2d=True).T
            except (sf.LibsndfileError, RuntimeError):  # damaged: keep the seconds before the damage
                handle.seek(lo)
                data, problem = _soundfile_read(handle)
                data = data[:, : hi - lo]
            read = max(read, lo + data.shape[1])
            if data.shape[1] > start - lo:
                out = resample(data, native, sr)
                first = (start - lo) // down * up
                length = -(-(stop - start) * up // down)
                out = validate(out[:, first : first + length], name=name)
                yield out.mean(axis=0) if channels == "mix" else out
            if problem or data.shape[1] < hi - lo:  # the file ended before its header said it would
                break
        expected = max(total / native, declared or 0.0)
        _check_complete(name, min(read, total) / native, expected, problem, allow_partial=allow_partial)


def _stream_ffmpeg(
    source: str | os.PathLike, *, block_seconds: float, sr: int, channels: Channels, allow_partial: bool
) -> Iterator[np.ndarray]:
    name = describe(source)
    exe = _ffmpeg(name)
    path = os.fspath(source)
    n_ch, duration = _ffprobe(None, path)
    args = [exe, "-nostdin", "-v", "error", "-i", path, "-vn", "-f", "f32le", "-acodec",
            "pcm_f32le", "-ac", str(n_ch), "-ar", str(sr), "pipe:1"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None  # for type checkers: PIPE was requested
    nbytes = int(round(block_seconds * sr)) * n_ch * 4
    got_any, samples = False, 0
    try:
        while True:
            buf = proc.stdout.read(nbytes)
            if not buf:
                break
            y = np.frombuffer(buf[: len(buf) - len(buf) % (4 * n_ch)], dtype=np.float32)
            y = y.reshape(-1, n_ch).T
            if y.shape[1] == 0:
                continue
            got_any = True
            samples += y.shape[1]
            y = validate(y, name=name)
            yield y.mean(axis=0) if channels == "mix" else y
    finally:
        proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        code = proc.wait()
    if code != 0 or not got_any:
        lines = err.strip().splitlines()
        raise AudioError(f"{name}: not a readable audio file ({_short(lines[-1] if lines else 'no audio stream')})")
    _check_complete(name, samples / sr, duration, err.strip(), allow_partial=allow_partial)
