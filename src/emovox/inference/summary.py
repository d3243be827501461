"""Temporal smoothing of segment probabilities, and the summary of a timeline.

Summary shape (``Analysis.summary``; shares are fractions of speech time)::

    {"duration": s, "speech_seconds": s, "segments": n, "uncertain_share": f,
     "emotion_share": {label: f, ...}, "dominant_emotion": label | "no_speech",
     "negative_share": f,
     "peaks": {"anger": [{"channel", "start", "end", "score"}, ...],
               "distress": [...]},
     "per_channel": {name: {same keys but per_channel}, ...}}   # only when channels were split
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..labels import NEGATIVE_EMOTIONS

__all__ = ["smooth", "summarize", "ANGER", "DISTRESS"]

ANGER = frozenset({"angry"})
#: Emotions whose summed probability scores "distress" (sadness, fear; "unpleasant" in 4-class).
DISTRESS = frozenset({"sad", "fearful", "unpleasant"})
_NO_SPEECH = "no_speech"


def smooth(segments: list[dict], *, width: int = 1, labels: Sequence[str], max_gap: float = 1.0,
           min_confidence: float = 0.5, min_margin: float = 0.1) -> list[dict]:
    """Moving average of probabilities over up to ``width`` neighbours on each side.

    Neighbours count only within the same channel and when no more than ``max_gap`` seconds of
    silence separates them from the segment, so distinct turns far apart stay distinct. Weights
    are the segments' durations times 1 for the segment and 0.5 for a neighbour. ``emotion``,
    ``confidence`` and ``uncertain`` are recomputed; ``no_speech`` segments are left alone.
    """
    out = [dict(s) for s in segments]
    by_channel: dict[str, list[int]] = {}
    for i, s in enumerate(segments):
        if s["emotion"] != _NO_SPEECH:
            by_channel.setdefault(s["channel"], []).append(i)
    for idx in by_channel.values():
        probs = np.array([[segments[i]["probabilities"].get(k, 0.0) for k in labels] for i in idx])
        starts = np.array([segments[i]["start"] for i in idx])
        ends = np.array([segments[i]["end"] for i in idx])
        dur = np.maximum(ends - starts, 1e-3)
        for j, i in enumerate(idx):
            acc, total = probs[j] * dur[j], dur[j]
            for step in (-1, 1):
                k, edge = j, (starts[j] if step < 0 else ends[j])
                for _ in range(width):
                    k += step
                    if not 0 <= k < len(idx):
                        break
                    gap = edge - ends[k] if step < 0 else starts[k] - edge
                    if gap > max_gap:
                        break
                    acc = acc + 0.5 * dur[k] * probs[k]
                    total += 0.5 * dur[k]
                    edge = starts[k] if step < 0 else ends[k]
            p = acc / total
            order = np.argsort(-p)
            conf = float(p[order[0]])
            margin = conf - float(p[order[1]]) if len(p) > 1 else conf
            out[i]["probabilities"] = {k: round(float(v), 4) for k, v in zip(labels, p, strict=True)}
            out[i]["emotion"] = labels[order[0]]
            out[i]["confidence"] = round(conf, 4)
            out[i]["uncertain"] = bool(conf < min_confidence or margin < min_margin)
    return out


def _peaks(segments: list[dict], keys: frozenset, *, top: int = 3, min_score: float = 0.4,
           min_distance: float = 10.0) -> list[dict]:
    """The ``top`` highest-scoring segments (score = summed probability of ``keys``), spread out."""
    scored = sorted(
        ((sum(v for k, v in s["probabilities"].items() if k in keys), s) for s in segments),
        key=lambda t: -t[0],
    )
    chosen: list[dict] = []
    for score, s in scored:
        if score < min_score or len(chosen) >= top:
            break
        if any(abs(s["start"] - c["start"]) < min_distance and s["channel"] == c["channel"] for c in chosen):
            continue
        chosen.append({"channel": s["channel"], "start": s["start"], "end": s["end"], "score": round(score, 4)})
    return sorted(chosen, key=lambda c: c["start"])


def _summary(segments: list[dict], *, duration: float, labels: Sequence[str]) -> dict:
    speech = [s for s in segments if s["emotion"] != _NO_SPEECH]
    seconds = {k: 0.0 for k in labels}
    uncertain = 0.0
    for s in speech:
        d = s["end"] - s["start"]
        seconds[s["emotion"]] = seconds.get(s["emotion"], 0.0) + d
        uncertain += d if s["uncertain"] else 0.0
    total = sum(seconds.values())
    share = {k: round(v / total, 4) if total else 0.0 for k, v in seconds.items()}
    dominant = max(share, key=lambda k: share[k]) if total else _NO_SPEECH
    out: dict = {
        "duration": round(duration, 3),
        "speech_seconds": round(total, 3),
        "segments": len(speech),
        "uncertain_share": round(uncertain / total, 4) if total else 0.0,
        "emotion_share": dict(sorted(share.items(), key=lambda kv: -kv[1])),
        "dominant_emotion": dominant,
        "negative_share": round(sum(v for k, v in share.items() if k in NEGATIVE_EMOTIONS), 4),
        "peaks": {},
    }
    if ANGER & set(labels):
        out["peaks"]["anger"] = _peaks(speech, ANGER)
    if DISTRESS & set(labels):
        out["peaks"]["distress"] = _peaks(speech, DISTRESS)
    return out


def summarize(segments: list[dict], *, duration: float, labels: Sequence[str],
              channels: Sequence[str] | None = None) -> dict:
    """Summary of a timeline (shape in the module docstring); per channel if ``channels``."""
    out = _summary(segments, duration=duration, labels=labels)
    if channels:
        out["per_channel"] = {
            c: _summary([s for s in segments if s["channel"] == c], duration=duration, labels=labels)
            for c in channels
        }
    return out
