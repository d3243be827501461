"""Live audio: accumulate 16 kHz samples chunk by chunk and predict the latest window every step.

:class:`StreamingPredictor` keeps only the last ``window_seconds`` of audio. Every
``update_seconds`` of audio received it predicts the window that ends there (with
:meth:`Predictor.predict_many`, VAD on, so silence gives ``"no_speech"``) and returns one
segment in the shape every emovox interface uses. The segments tile the stream (each covers
the audio received since the previous one), so :meth:`summary` is the summary of a timeline,
exactly as :func:`~emovox.inference.analyze` builds it. A speaker-normalised model (kind
``whisper_embed``) takes each window relative to the running neutral reference of the stream's
speech so far, and uses its global head until that reference has enough weight. :meth:`~StreamingPredictor.feed` and
:meth:`~StreamingPredictor.flush` hold a lock, so calls from several threads run one at a time.
"""

from __future__ import annotations

import threading

import numpy as np

from ..audio import SAMPLE_RATE, validate
from ..errors import AudioError, ParameterError
from .outputs import segment_record
from .predictor import NO_SPEECH, Prediction, Predictor
from .summary import summarize

__all__ = ["StreamingPredictor", "RunningReference", "pcm16_to_float"]


class RunningReference:
    """A weighted running mean of vectors: a stream's neutral reference (weights: P(neutral) of each window)."""

    def __init__(self) -> None:
        self.weight = 0.0
        self.count = 0
        self._sum: np.ndarray | None = None

    def add(self, x: np.ndarray, weight: float) -> None:
        x = np.asarray(x, np.float64)
        self._sum = weight * x if self._sum is None else self._sum + weight * x
        self.weight += float(weight)
        self.count += 1

    def mean(self) -> np.ndarray | None:
        """The weighted mean, or None before any weight."""
        return None if self._sum is None or self.weight <= 0 else self._sum / self.weight


def pcm16_to_float(data: bytes | bytearray | memoryview) -> np.ndarray:
    """Decode little-endian signed 16-bit PCM bytes to float32 in [-1, 1).

    Raises
    ------
    AudioError
        Empty input, or an odd number of bytes (a torn sample).
    """
    n = len(data)
    if n == 0:
        raise AudioError("empty PCM chunk")
    if n % 2:
        raise AudioError(f"PCM16 chunk of {n} bytes: the byte count must be even (2 bytes per sample)")
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


class StreamingPredictor:
    """Incremental predictions over a live 16 kHz mono stream.

    Parameters
    ----------
    predictor : Predictor
    update_seconds : float
        One prediction per this much audio received.
    window_seconds : float, optional
        Context of each prediction (default: the model's window).
    name, channel : str
        What to put in the segments' ``file`` and ``channel`` fields.

    Examples
    --------
    >>> live = StreamingPredictor(Predictor.load())                   # doctest: +SKIP
    >>> for chunk in chunks:                                           # doctest: +SKIP
    ...     for seg in live.feed(chunk):
    ...         print(seg["start"], seg["end"], seg["emotion"])
    >>> live.flush(); live.summary()["dominant_emotion"]               # doctest: +SKIP
    """

    def __init__(self, predictor: Predictor, *, update_seconds: float = 1.0,
                 window_seconds: float | None = None, name: str = "<stream>", channel: str = "mix"):
        if update_seconds <= 0:
            raise ParameterError(f"update_seconds must be > 0, got {update_seconds}")
        window_seconds = predictor.card.window_seconds if window_seconds is None else window_seconds
        if window_seconds <= 0:
            raise ParameterError(f"window_seconds must be > 0, got {window_seconds}")
        self.predictor = predictor
        self.step = max(1, int(round(update_seconds * SAMPLE_RATE)))
        self.window = max(self.step, int(round(window_seconds * SAMPLE_RATE)))
        self.name = name
        self.channel = channel
        self.segments: list[dict] = []
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0  # stream sample index of _buffer[0]
        self._received = 0
        self._emitted = 0  # samples covered by segments so far
        self._lock = threading.Lock()  # feed/flush from worker threads never interleave
        self._reference = RunningReference()  # a speaker-normalised model's neutral reference of this stream

    @property
    def duration(self) -> float:
        """Seconds of audio received."""
        return self._received / SAMPLE_RATE

    def feed_pcm16(self, data: bytes | bytearray | memoryview) -> list[dict]:
        """:meth:`feed` for a chunk of little-endian PCM16 bytes."""
        return self.feed(pcm16_to_float(data))

    def feed(self, samples: np.ndarray) -> list[dict]:
        """Add 16 kHz mono samples; return the segments of every update step now complete.

        Parameters
        ----------
        samples : np.ndarray [shape=(n,)], float in [-1, 1] or integer PCM

        Returns
        -------
        list of dict, one per ``update_seconds`` boundary crossed (often none or one)
        """
        y = validate(samples, name=self.name)
        if y.ndim != 1:
            raise ParameterError(f"{self.name}: stream samples must be 1-D, got shape {y.shape}")
        with self._lock:
            self._buffer = np.concatenate([self._buffer, y])
            self._received += len(y)
            ends = list(range(self._emitted + self.step, self._received + 1, self.step))
            out = self._predict(ends)
            self._trim()
            return out

    def flush(self) -> list[dict]:
        """The segment for audio received since the last update (none if there is none)."""
        with self._lock:
            out = self._predict([self._received]) if self._received > self._emitted else []
            self._trim()
            return out

    def summary(self) -> dict:
        """Summary of the segments so far (the shape of ``Analysis.summary``)."""
        return summarize(self.segments, duration=self.duration, labels=self.predictor.labels)

    def _predict(self, ends: list[int]) -> list[dict]:
        if not ends:
            return []
        clips = []
        for end in ends:
            a = max(0, end - self.window) - self._buffer_start
            if a < 0:  # cannot happen while _trim keeps a window of history; never slice from the end
                raise AssertionError(f"{self.name}: streaming buffer lost audio (needs sample {a + self._buffer_start}, "
                                     f"holds from {self._buffer_start}); a bug in StreamingPredictor._trim: "
                                     "please report it with the chunk sizes sent")
            clips.append(self._buffer[a : end - self._buffer_start])
        out = []
        preds = self._speaker_predictions(clips) if self.predictor.speaker_normalised else self.predictor.predict_many(clips)
        for end, p in zip(ends, preds, strict=True):
            seg = segment_record(file=self.name, channel=self.channel,
                                 start=self._emitted / SAMPLE_RATE, end=end / SAMPLE_RATE,
                                 emotion=p.label, confidence=p.confidence, uncertain=p.uncertain,
                                 probabilities=p.probabilities)
            seg["window_start"] = round(max(0, end - self.window) / SAMPLE_RATE, 3)
            self._emitted = end
            out.append(seg)
        self.segments.extend({k: v for k, v in s.items() if k != "window_start"} for s in out)
        return out

    def _speaker_predictions(self, clips: list[np.ndarray]) -> list[Prediction]:
        """A speaker-normalised model on a stream: each window relative to the running neutral reference
        of the stream's speech windows so far (each weighted by its global-head P(neutral); the global
        head until the weights reach ``min_weight``). Causal: no window waits for later ones."""
        norm = self.predictor.card.normalisation
        assert norm is not None and self.predictor.heads is not None
        out = []
        for e in self.predictor.clip_embeddings(clips):
            if e is None:
                out.append(Prediction(NO_SPEECH, {}, 1.0, False))
                continue
            weight = float(self.predictor.neutral_weights(self.predictor.heads.logits(e[None], "global"))[0])
            self._reference.add(e, weight)
            reference = self._reference.mean() if self._reference.weight >= norm.min_weight else None
            logits, head = self.predictor.referenced_logits(e[None], reference)
            out.append(self.predictor.decide(logits[0], head=head))
        return out

    def _trim(self) -> None:
        """Keep the audio a future window can need: any later end (a step, or :meth:`flush` just
        after ``emitted``) looks back ``window`` samples, so keep from ``emitted - window`` on."""
        keep_from = max(0, self._emitted - self.window)
        cut = keep_from - self._buffer_start
        if cut > 0:
            self._buffer = self._buffer[cut:].copy()
            self._buffer_start = keep_from
