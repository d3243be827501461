"""Analyse a long recording: stream it in blocks -> VAD -> turns -> windows -> emotions -> timeline.

Memory stays flat on multi-hour files: only the current block, the audio of the speech turn
still open, a per-frame loudness envelope (for plots) and the list of segments are held.
Turns that straddle a block boundary are completed in the next block, and the segments do not
depend on ``block_seconds`` (see :class:`~emovox.inference.segmentation.Segmenter`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..audio import SAMPLE_RATE, AudioSource, describe, load, stream, validate
from ..errors import AudioError, ParameterError
from .outputs import segment_record
from .predictor import NO_SPEECH, Predictor, single_thread_blas
from .segmentation import SegmentConfig, Segmenter, split_turn
from .summary import smooth, summarize
from .vad import FRAME_SAMPLES, FrameVAD, frame_energy_db, is_steady

__all__ = ["Analysis", "analyze", "predict_turns", "SpeakerCells", "finish_speaker", "model_info"]

DEFAULT_CHANNEL_NAMES = ("agent", "customer")


@dataclass
class Analysis:
    """The result of :func:`analyze`.

    ``segments`` is a list of the one segment shape of emovox::

        {"file", "channel", "start", "end", "emotion", "confidence", "uncertain",
         "probabilities": {label: p}}

    ``summary`` is built by :func:`emovox.inference.summary.summarize` (shares per emotion by
    speech time, dominant emotion, negative share, anger and distress peaks, per channel when
    split). ``envelope`` holds the loudness (dBFS) of each 30 ms frame per channel, for plots;
    it is not part of :meth:`to_dict`.
    """

    file: str
    duration: float
    channels: list[str]
    labels: list[str]
    model: dict
    segments: list[dict]
    summary: dict
    envelope: np.ndarray = field(default_factory=lambda: np.zeros((1, 0), np.float32), repr=False)

    def to_dict(self) -> dict:
        """The JSON document the CLI writes and the API returns."""
        return {
            "file": self.file,
            "duration": round(self.duration, 3),
            "channels": list(self.channels),
            "labels": list(self.labels),
            "model": dict(self.model),
            "segments": list(self.segments),
            "summary": self.summary,
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


class _Channel:
    """Streaming state of one channel: VAD, turn builder, and the audio of the open turn."""

    def __init__(self, name: str, vad: FrameVAD, config: SegmentConfig):
        self.name = name
        self.vad = vad
        self.segmenter = Segmenter(config)
        self.buffer = np.zeros(0, dtype=np.float32)
        self.buffer_start = 0  # sample index of buffer[0]
        self.envelope: list[np.ndarray] = []
        self.env_carry = np.zeros(0, dtype=np.float32)

    def feed(self, y: np.ndarray, *, final: bool) -> list[tuple[int, int]]:
        """Add a block; return the turns (samples) that became final."""
        self.buffer = np.concatenate([self.buffer, y])
        self._envelope(y)
        frames = self.segmenter.feed(self.vad.process(y))
        if final:
            frames += self.segmenter.flush()
        return [(a * FRAME_SAMPLES, b * FRAME_SAMPLES) for a, b in frames]

    def _envelope(self, y: np.ndarray) -> None:
        y = np.concatenate([self.env_carry, y])
        n = len(y) // FRAME_SAMPLES
        self.env_carry = y[n * FRAME_SAMPLES:]
        if n:
            self.envelope.append(frame_energy_db(y[: n * FRAME_SAMPLES].reshape(n, FRAME_SAMPLES)))

    def audio(self, a: int, b: int) -> np.ndarray:
        return self.buffer[a - self.buffer_start : b - self.buffer_start]

    def trim(self, seen_samples: int) -> None:
        """Drop audio no future turn can need."""
        pending = self.segmenter.pending_start
        keep_from = pending * FRAME_SAMPLES if pending is not None else seen_samples - self.vad.carry_samples
        cut = max(0, keep_from - self.buffer_start)
        if cut:
            self.buffer = self.buffer[cut:].copy()
            self.buffer_start += cut


@dataclass
class SpeakerCells:
    """The timeline cells of one speaker held back for a speaker-normalised model, with their embeddings.

    Such a model decides a speaker's cells together, standardised by that speaker's statistics
    (:meth:`Predictor.speaker_logits`), so the cells wait until the speaker's last turn: 4 bytes per
    embedding value (4 KB per cell, ~7 MB for an hour of speech with 2 s cells).
    """

    cells: list[tuple[int, int]] = field(default_factory=list)
    embeddings: list[np.ndarray] = field(default_factory=list)


def finish_speaker(predictor: Predictor, pending: SpeakerCells, *, file: str, channel: str) -> tuple[list[dict], str]:
    """Segments of a speaker's held-back cells, and the head that decided them (``speaker``/``global``)."""
    if not pending.cells:
        return [], "global"
    logits, head = predictor.speaker_logits(np.stack(pending.embeddings))
    out = []
    for (c0, c1), z in zip(pending.cells, logits, strict=True):
        p = predictor.decide(z, head=head)
        out.append(_segment(file, channel, c0, c1, p.label, p.probabilities, p.confidence, p.uncertain))
    return out, head


def model_info(predictor: Predictor, heads: dict[str, str] | None = None) -> dict:
    """``Analysis.model``: name and version, and for a speaker-normalised model the head of each channel."""
    info: dict = {"name": predictor.card.name, "version": predictor.card.version}
    if heads is not None and predictor.speaker_normalised:
        info["heads"] = dict(heads)
    return info


def _blocks(source: AudioSource | np.ndarray, *, channels: Literal["mix", "split"], block_seconds: float,
            allow_partial: bool = False) -> Iterator[np.ndarray]:
    """Blocks ``[channels, n]`` of the source at 16 kHz."""
    if isinstance(source, np.ndarray):
        y = validate(source)
        y = y[None, :] if y.ndim == 1 else y
        if y.ndim != 2:
            raise ParameterError(f"audio array must be (n,) or (channels, n), got shape {source.shape}")
        if y.shape[0] >= y.shape[1]:  # more channels than samples: soundfile's (n, channels)
            raise ParameterError(f"audio array of shape {source.shape} is ambiguous: pass (channels, n) or (n,); "
                                 "transpose soundfile's (n, channels) with y.T, or read with emovox.audio.load")
        if channels == "mix":
            y = y.mean(axis=0, keepdims=True)
        step = max(FRAME_SAMPLES, int(block_seconds * SAMPLE_RATE))
        for i in range(0, y.shape[1], step):
            yield y[:, i : i + step]
        return
    if isinstance(source, (str, os.PathLike)):
        for block in stream(source, block_seconds=block_seconds, channels=channels, allow_partial=allow_partial):
            yield block[None, :] if block.ndim == 1 else block
        return
    y = load(source, channels=channels, allow_partial=allow_partial)
    yield from _blocks(y, channels="split", block_seconds=block_seconds)


def _lookahead(it: Iterator[np.ndarray]) -> Iterator[tuple[np.ndarray, bool]]:
    """Yield ``(block, is_last)``."""
    prev = next(it, None)
    if prev is None:
        return
    for item in it:
        yield prev, False
        prev = item
    yield prev, True


def analyze(
    source: AudioSource | np.ndarray,
    *,
    predictor: Predictor | None = None,
    channels: Literal["mix", "split"] = "mix",
    channel_names: Sequence[str] = DEFAULT_CHANNEL_NAMES,
    smoothing: int = 1,
    block_seconds: float = 60.0,
    vad: Literal["webrtc", "energy"] = "webrtc",
    aggressiveness: int | None = None,
    segment_config: SegmentConfig | None = None,
    hop_seconds: float | None = None,
    name: str | None = None,
    speakers: int | Literal["auto"] | None = None,
    allow_partial: bool = False,
) -> Analysis:
    """Per-segment emotions of a recording, with a summary.

    Parameters
    ----------
    source : path, bytes, file object, or np.ndarray [shape=(n,) or (channels, n)] at 16 kHz
        Paths are streamed block by block (flat memory); other sources are decoded whole.
    predictor : Predictor, optional
        Default: ``Predictor.load()`` (the shipped model).
    channels : {"mix", "split"}
        ``"split"`` analyses each channel alone (a stereo call: agent left, customer right).
    channel_names : names of channels 0, 1, ... when split (extra channels are ``ch2``, ...).
    smoothing : int
        Average each segment's probabilities with this many neighbours on each side (0: off).
    block_seconds : float
        Streaming block length; the result does not depend on it.
    vad : {"webrtc", "energy"}
    hop_seconds : float, optional
        Timeline cell length inside long turns; each cell is predicted from a model window
        centred on it (default: the model's ``hop_seconds``, so windows overlap by half; the
        model's ``window_seconds`` gives non-overlapping windows and half the model time).
    name : str, optional
        What to put in the segments' ``file`` field (default: the path).
    speakers : int, "auto" or None
        Tell the voices of a mono recording apart (``channels="mix"`` only): each speaker becomes
        a channel ``speaker 1``, ``speaker 2``, ... in order of first appearance, with the per-channel
        summary of a split call; ``summary["speakers"]`` says what was asked and found (see
        :func:`emovox.inference.diarization.analyze_speakers`). The file is decoded whole.
    allow_partial : bool
        Analyse what can be decoded of a file cut short (default: :class:`AudioError`,
        "truncated: decoded X s of Y s"; see :func:`emovox.audio.load`).

    Returns
    -------
    Analysis

    Examples
    --------
    >>> result = analyze("call.wav", channels="split")            # doctest: +SKIP
    >>> result.summary["dominant_emotion"]                         # doctest: +SKIP
    'neutral'
    """
    if channels not in ("mix", "split"):
        raise ParameterError(f"channels must be 'mix' or 'split', got {channels!r}")
    if block_seconds <= 0:
        raise ParameterError(f"block_seconds must be positive, got {block_seconds}")
    if smoothing < 0:
        raise ParameterError(f"smoothing must be >= 0, got {smoothing}")
    predictor = predictor or Predictor.load()
    if speakers is not None:
        from .diarization import analyze_speakers

        if channels != "mix":
            raise ParameterError("speakers needs channels='mix': a split call already has one speaker per channel")
        with single_thread_blas():
            return analyze_speakers(source, predictor=predictor, speakers=speakers, smoothing=smoothing, vad=vad,
                                    aggressiveness=aggressiveness, segment_config=segment_config,
                                    hop_seconds=hop_seconds, name=name)
    with single_thread_blas():
        return _analyze(source, predictor=predictor, channels=channels, channel_names=channel_names,
                        smoothing=smoothing, block_seconds=block_seconds, vad=vad,
                        aggressiveness=aggressiveness, segment_config=segment_config,
                        hop_seconds=hop_seconds, name=name, allow_partial=allow_partial)


def _analyze(source: AudioSource | np.ndarray, *, predictor: Predictor, channels: Literal["mix", "split"],
             channel_names: Sequence[str], smoothing: int, block_seconds: float,
             vad: Literal["webrtc", "energy"], aggressiveness: int | None,
             segment_config: SegmentConfig | None, hop_seconds: float | None, name: str | None,
             allow_partial: bool) -> Analysis:
    hop = predictor.hop_samples if hop_seconds is None else int(round(hop_seconds * SAMPLE_RATE))
    if not 0 < hop <= predictor.window_samples:
        raise ParameterError(f"hop_seconds must be in (0, window_seconds], got {hop_seconds}")
    file = name or (describe(source) if not isinstance(source, np.ndarray) else "<array>")
    aggr = predictor.vad_aggressiveness if aggressiveness is None else aggressiveness
    states: list[_Channel] = []
    segments: list[dict] = []
    pending: dict[str, SpeakerCells] | None = {} if predictor.speaker_normalised else None
    seen = 0
    for block, last in _lookahead(_blocks(source, channels=channels, block_seconds=block_seconds,
                                                     allow_partial=allow_partial)):
        if not states:
            if channels == "split" and block.shape[0] < 2:
                raise ParameterError(f"{file}: has one channel; --channels split needs a stereo call")
            names = (["mix"] if channels == "mix" else
                     [channel_names[i] if i < len(channel_names) else f"ch{i}" for i in range(block.shape[0])])
            config = segment_config or SegmentConfig()
            states = [_Channel(n, FrameVAD(aggressiveness=aggr, method=vad), config) for n in names]
        seen += block.shape[1]
        for state, y in zip(states, block, strict=True):
            turns = state.feed(np.ascontiguousarray(y, dtype=np.float32), final=last)
            held = None if pending is None else pending.setdefault(state.name, SpeakerCells())
            segments.extend(predict_turns(predictor, state, turns, file=file, hop=hop, pending=held))
            state.trim(seen)
    if not states:
        raise AudioError(f"{file}: audio has zero samples")
    heads: dict[str, str] = {}
    for channel, held in (pending or {}).items():
        done, heads[channel] = finish_speaker(predictor, held, file=file, channel=channel)
        segments.extend(done)
    segments.sort(key=lambda s: (s["start"], s["channel"]))
    if smoothing:
        segments = smooth(segments, width=smoothing, labels=predictor.labels,
                          min_confidence=predictor.min_confidence, min_margin=predictor.min_margin)
    duration = seen / SAMPLE_RATE
    names = [s.name for s in states]
    summary = summarize(segments, duration=duration, labels=predictor.labels,
                        channels=names if channels == "split" else None)
    envelope = np.stack([np.concatenate(s.envelope) if s.envelope else np.zeros(0, np.float32) for s in states])
    return Analysis(file=file, duration=duration, channels=names, labels=list(predictor.labels),
                    model=model_info(predictor, heads), segments=segments, summary=summary, envelope=envelope)


def predict_turns(predictor: Predictor, state: _Channel, turns: list[tuple[int, int]], *,
                  file: str, hop: int, pending: SpeakerCells | None = None) -> list[dict]:
    """Segments for the finished turns of one channel (one model batch for all their windows).

    The model inputs come from :meth:`Predictor.window_inputs`: slices of one log-mel of the turn
    for sliding-window models, each window through the frontend for chunked (Whisper) models.
    With ``pending`` (a speaker-normalised model) the speech cells' embeddings are added to it
    instead, to be decided by :func:`finish_speaker`; only ``no_speech`` segments are returned.
    """
    cells: list[tuple[int, int]] = []
    feats: list[np.ndarray] = []
    out: list[dict] = []
    for a, b in turns:
        y = state.audio(a, b)
        if is_steady(y):
            out.append(_segment(file, state.name, a, b, NO_SPEECH, {}, 1.0, False))
            continue
        parts = split_turn(a, b, window=predictor.window_samples, hop=hop)
        feats.extend(predictor.window_inputs(y, [(w0 - a, w1 - a) for _, _, w0, w1 in parts]))
        cells.extend((c0, c1) for c0, c1, _, _ in parts)
    if feats and pending is not None:
        pending.cells.extend(cells)
        pending.embeddings.extend(predictor.outputs(feats))
    elif feats:
        logits = predictor.logits(feats)
        for (c0, c1), z in zip(cells, logits, strict=True):
            p = predictor.decide(z)
            out.append(_segment(file, state.name, c0, c1, p.label, p.probabilities, p.confidence, p.uncertain))
    return out


def _segment(file: str, channel: str, a: int, b: int, emotion: str, probs: dict,
             confidence: float, uncertain: bool) -> dict:
    return segment_record(file=file, channel=channel, start=a / SAMPLE_RATE, end=b / SAMPLE_RATE,
                          emotion=emotion, confidence=confidence, uncertain=uncertain,
                          probabilities=probs)
