"""Speaker embeddings on ONNX Runtime: resemblyzer's voice encoder with a numpy mel frontend.

The encoder (``assets/speaker/voice_encoder.onnx``, exported once by
:mod:`emovox.models.speaker_export` from the weights inside the resemblyzer 0.1.4 wheel,
Apache-2.0) is a 3-layer LSTM over 40-band mel *power* frames (25 ms window, 10 ms hop): its
input is not logged, so every window is first brought to resemblyzer's loudness (-30 dBFS RMS).
Its output is a unit-length 256-d vector; cosine similarity compares two voices.

A linear projection (``projection.npz``: LDA on the corpora's ``tune`` speakers, trained by
:mod:`emovox.evaluation.speaker_projection`) follows where it ships: it keeps the directions along
which speakers differ and shrinks those along which one voice varies (emotion, words, channel),
which more than halves the diarizer's speaker confusion on acted speech. ``speaker.json`` records
its SHA-256 and the ``auto`` thresholds chosen with it.

Only numpy and ONNX Runtime run here; the frontend equals ``librosa.feature.melspectrogram(y,
sr=16000, n_fft=400, hop_length=160, n_mels=40)`` (what resemblyzer computes) to float32 rounding.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from .._numeric import unit_rows
from ..audio import SAMPLE_RATE
from ..errors import ModelError, ParameterError
from ..features.logmel import mel_filterbank

__all__ = ["SPEAKER_DIR", "N_FFT", "HOP_LENGTH", "N_MELS", "speaker_mels", "frames_for", "SpeakerEncoder"]

SPEAKER_DIR = Path(__file__).resolve().parents[1] / "assets" / "speaker"
N_FFT = 400  # 25 ms
HOP_LENGTH = 160  # 10 ms
N_MELS = 40
TARGET_DBFS = -30.0
DEFAULT_AUTO_GAIN = (0.03, 0.0225)  # raw 256-d embeddings (no projection); chosen on tune speakers


@lru_cache(maxsize=1)
def _hann() -> np.ndarray:
    n = np.arange(N_FFT)
    w = (0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)).astype(np.float32)  # periodic, as librosa's
    w.setflags(write=False)
    return w


def frames_for(n_samples: int) -> int:
    """Mel frames of ``n_samples`` of audio (centred frames, as librosa): ``1 + n // 160``."""
    return 1 + int(n_samples) // HOP_LENGTH


def speaker_mels(y: np.ndarray) -> np.ndarray:
    """The encoder's input: mel power spectrogram of 16 kHz mono audio.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float at 16 kHz

    Returns
    -------
    np.ndarray [shape=(1 + n // 160, 40)], float32 (frames first, as the encoder reads them)

    Examples
    --------
    >>> speaker_mels(np.zeros(16000, dtype=np.float32)).shape
    (101, 40)
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ParameterError(f"speaker_mels needs mono audio (n,), got shape {y.shape}")
    pad = N_FFT // 2
    y = np.pad(y, (pad, pad))  # zeros, as librosa's center=True, pad_mode="constant"
    n = 1 + (len(y) - N_FFT) // HOP_LENGTH
    frames = np.lib.stride_tricks.as_strided(y, shape=(n, N_FFT), strides=(y.strides[0] * HOP_LENGTH, y.strides[0]))
    spec = np.fft.rfft(frames * _hann(), axis=1)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    return power @ mel_filterbank(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS).T


def _gain_to_target(y: np.ndarray) -> float:
    """Power gain that brings ``y`` to -30 dBFS RMS (resemblyzer's ``normalize_volume``, both ways)."""
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if len(y) else 0.0
    if rms < 1e-5:
        return 1.0
    return float((10 ** (TARGET_DBFS / 20) / rms) ** 2)


class SpeakerEncoder:
    """resemblyzer's voice encoder on ONNX Runtime, with the shipped projection after it.

    Use :meth:`load`; :meth:`embed_windows` gives one unit vector per window of a signal
    (``dims`` long: the projection's output, or 256 without one).

    Examples
    --------
    >>> enc = SpeakerEncoder.load()
    >>> y = (0.1 * np.sin(np.arange(24000) / 8)).astype(np.float32)
    >>> enc.embed_windows(y, [(0, 16000), (8000, 24000)]).shape == (2, enc.dims)
    True
    """

    def __init__(self, session, meta: dict, projection: tuple[np.ndarray, np.ndarray] | None = None):
        self._session = session
        self.meta = meta
        self.projection = projection

    @property
    def dims(self) -> int:
        """Length of the embeddings :meth:`embed_windows` returns."""
        return 256 if self.projection is None else int(self.projection[1].shape[0])

    @property
    def auto_gain(self) -> tuple[float, ...]:
        """The ``auto`` speaker-count thresholds that go with these embeddings (see DiarizationConfig)."""
        if self.projection is None:
            return DEFAULT_AUTO_GAIN
        return tuple(float(g) for g in self.meta["projection"]["auto_gain"])

    @classmethod
    def load(cls, directory: str | Path | None = None, *, threads: int | None = None,
             projection: bool = True) -> SpeakerEncoder:
        """Open ``voice_encoder.onnx`` (default: the shipped one) and, unless ``projection=False``,
        the projection ``speaker.json`` names, checking their SHA-256."""
        import onnxruntime as ort

        d = Path(directory) if directory else SPEAKER_DIR
        meta_path, model_path = d / "speaker.json", d / "voice_encoder.onnx"
        if not meta_path.is_file() or not model_path.is_file():
            raise ModelError(f"{d}: no speaker encoder (voice_encoder.onnx + speaker.json); reinstall emovox "
                             "or re-export it with python -m emovox.models.speaker_export")
        meta = json.loads(meta_path.read_text())
        data = _checked(model_path, meta, "python -m emovox.models.speaker_export")
        matrices = None
        if projection and "projection" in meta:
            proj_path = d / meta["projection"]["file"]
            if not proj_path.is_file():
                raise ModelError(f"{proj_path}: missing (speaker.json names it); reinstall emovox")
            _checked(proj_path, meta, "python -m emovox.evaluation.speaker_projection")
            with np.load(proj_path, allow_pickle=False) as z:
                matrices = (z["mean"].astype(np.float32), z["matrix"].astype(np.float32))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or 1)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        return cls(session, meta, matrices)

    def embed_mels(self, mels: np.ndarray) -> np.ndarray:
        """Embeddings of a batch of mel windows ``[batch, frames, 40]`` -> ``[batch, 256]`` (unit length)."""
        mels = np.ascontiguousarray(mels, dtype=np.float32)
        if mels.ndim != 3 or mels.shape[2] != N_MELS or mels.shape[1] < 1:
            raise ParameterError(f"mel windows must be [batch, frames, {N_MELS}], got shape {mels.shape}")
        if len(mels) == 0:
            return np.zeros((0, 256), np.float32)
        return self._session.run(None, {"mels": mels})[0]

    def embed_windows(self, y: np.ndarray, windows: Sequence[tuple[int, int]], *, batch: int = 64) -> np.ndarray:
        """One embedding per ``(start, end)`` sample window of ``y``.

        Each window is brought to -30 dBFS and its mel frames (computed once for the span the
        windows cover) go to the encoder; windows of equal length share a batch. Through the
        projection where one is loaded, then brought back to unit length.

        Returns
        -------
        np.ndarray [shape=(len(windows), dims)], float32
        """
        out = np.zeros((len(windows), 256), np.float32)
        if not windows:
            return out[:, : self.dims]
        lo = min(a for a, _ in windows)
        hi = max(b for _, b in windows)
        mels = speaker_mels(np.asarray(y[lo:hi], dtype=np.float32))
        groups: dict[int, list[int]] = {}
        slices = []
        for i, (a, b) in enumerate(windows):
            f0 = (a - lo) // HOP_LENGTH
            nf = max(1, (b - a) // HOP_LENGTH)
            slices.append((f0, nf, _gain_to_target(y[a:b])))
            groups.setdefault(nf, []).append(i)
        for nf, idx in groups.items():
            for k in range(0, len(idx), batch):
                part = idx[k : k + batch]
                x = np.stack([mels[slices[i][0] : slices[i][0] + nf] * np.float32(slices[i][2]) for i in part])
                out[part] = self.embed_mels(x)
        if self.projection is None:
            return out
        mean, matrix = self.projection
        return unit_rows((unit_rows(out) - mean) @ matrix.T).astype(np.float32)


def _checked(path: Path, meta: dict, rebuild: str) -> bytes:
    """The bytes of ``path`` if their SHA-256 is the one ``speaker.json`` records."""
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != meta.get("sha256", {}).get(path.name):
        raise ModelError(f"{path}: SHA-256 does not match speaker.json; reinstall emovox or rebuild it with {rebuild}")
    return data
