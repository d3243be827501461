"""Diarization you can check: synthetic conversations from the corpora, scored by DER.

:func:`make_conversation` joins clips of two or three speakers of one corpus into a mono
"conversation": turns of 1-8 s (one or more clips of a speaker, their leading and trailing
silence trimmed), gaps, some overlap, optionally through a telephone channel. Its reference is
exact, because it was built. :func:`der` scores a hypothesis against it with the diarization
error rate (missed speech + false alarm + speaker confusion over reference speech, with a
0.25 s collar around every reference boundary and the best one-to-one speaker mapping), as
NIST's md-eval does. :func:`run_benchmark` does both over many conversations.

Speakers are split once per corpus into a ``tune`` half (for choosing thresholds) and a
``test`` half (for the figures), so reported numbers are on voices no setting was chosen on.
The corpora are research data: conversations are made in memory and never written out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from ..audio import SAMPLE_RATE, load
from ..corpora import Item, load_corpus
from ..errors import DataError, ParameterError

__all__ = ["Conversation", "speaker_pools", "corpus_speaker_pools", "trim_edges", "make_conversation", "der", "run_benchmark", "format_results", "emotion_cost",
           "CORPORA"]

CORPORA = ("crema-d", "ravdess")
Span = tuple[float, float, str]


@dataclass
class Conversation:
    """A built conversation: ``audio`` [n] at 16 kHz, ``reference`` (start, end, speaker) in
    seconds (may overlap), and ``clips`` (start, end, speaker, item) for per-clip scoring."""

    audio: np.ndarray
    reference: list[Span]
    speakers: list[str]
    corpus: str
    clips: list[tuple[float, float, str, Item]] = field(default_factory=list)


def speaker_pools(items: Sequence[Item], *, part: Literal["tune", "test", "all"] = "test",
                  min_clips: int = 8) -> dict[str, list[Item]]:
    """Clips per speaker of one half of the speakers (sorted ids: even positions tune, odd test)."""
    by: dict[str, list[Item]] = {}
    for it in items:
        by.setdefault(it.speaker, []).append(it)
    names = sorted(s for s, v in by.items() if len(v) >= min_clips)
    if part != "all":
        names = names[1::2] if part == "test" else names[0::2]
    return {s: sorted(by[s], key=lambda i: i.path) for s in names}


def trim_edges(y: np.ndarray, *, floor_db: float = 40.0) -> np.ndarray:
    """Cut leading and trailing silence (10 ms frames quieter than the loudest minus ``floor_db``)."""
    n = len(y) // 160
    if n == 0:
        return y
    e = 10 * np.log10(np.mean(y[: n * 160].reshape(n, 160) ** 2, axis=1) + 1e-10)
    loud = np.flatnonzero(e > max(e.max() - floor_db, -60.0))
    if len(loud) == 0:
        return y[:0]
    return y[loud[0] * 160 : (loud[-1] + 1) * 160]


def _level(y: np.ndarray, dbfs: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(y.astype(np.float64) ** 2))) + 1e-9
    return (y * (10 ** (dbfs / 20) / rms)).astype(np.float32)


def make_conversation(pool: dict[str, list[Item]], *, n_speakers: int = 2, rng: np.random.Generator,
                      seconds: float = 60.0, turn_seconds: tuple[float, float] = (1.0, 8.0),
                      gap_seconds: tuple[float, float] = (0.2, 1.0), overlap_prob: float = 0.1,
                      overlap_seconds: tuple[float, float] = (0.2, 0.6), telephone: bool = False,
                      loader: Callable[[str], np.ndarray] = load) -> Conversation:
    """A synthetic mono conversation of ``n_speakers`` speakers drawn from ``pool``.

    Speakers take turns (never the same one twice in a row); a turn is 1-8 s of one speaker's
    clips; turns are separated by a gap, or overlap the previous one with ``overlap_prob``.
    Each speaker has a level of -26 +- 4 dBFS. ``telephone`` passes the mix through 8 kHz
    band-pass mu-law (:func:`emovox.audio.augment.telephone`).
    """
    if not 1 <= n_speakers <= len(pool):
        raise ParameterError(f"need 1..{len(pool)} speakers from this pool, got {n_speakers}")
    names = list(rng.choice(sorted(pool), size=n_speakers, replace=False))
    level = {s: float(rng.uniform(-30, -22)) for s in names}
    decks = {s: list(rng.permutation(len(pool[s]))) for s in names}
    pieces: list[tuple[int, np.ndarray, str, list[tuple[int, int, Item]]]] = []
    t = 0
    prev = None
    corpus = pool[names[0]][0].corpus
    while t < seconds * SAMPLE_RATE:
        who = names[0] if n_speakers == 1 else str(rng.choice([s for s in names if s != prev]))
        target = rng.uniform(*turn_seconds) * SAMPLE_RATE
        chunks: list[np.ndarray] = []
        spans: list[tuple[int, int, Item]] = []
        n = 0
        while n < target or not chunks:
            if not decks[who]:
                decks[who] = list(rng.permutation(len(pool[who])))
            item = pool[who][decks[who].pop()]
            y = trim_edges(loader(item.path))
            if len(y) < SAMPLE_RATE // 4:
                continue
            if chunks:
                pause = int(rng.uniform(0.05, 0.25) * SAMPLE_RATE)
                chunks.append(np.zeros(pause, np.float32))
                n += pause
            spans.append((n, n + len(y), item))
            chunks.append(_level(y, level[who]))
            n += len(y)
            if n > turn_seconds[1] * SAMPLE_RATE:
                break
        if pieces and rng.random() < overlap_prob and n_speakers > 1:
            start = t - int(rng.uniform(*overlap_seconds) * SAMPLE_RATE)
            start = max(start, pieces[-1][0] + SAMPLE_RATE // 2)
        else:
            start = t + (int(rng.uniform(*gap_seconds) * SAMPLE_RATE) if pieces else int(0.5 * SAMPLE_RATE))
        pieces.append((start, np.concatenate(chunks), who, spans))
        t = start + n
        prev = who
    audio = np.zeros(t + SAMPLE_RATE // 2, np.float32)
    reference: list[Span] = []
    clips: list[tuple[float, float, str, Item]] = []
    for start, y, who, spans in pieces:
        audio[start : start + len(y)] += y
        for a, b, item in spans:  # a pause between clips of one turn is part of the turn
            clips.append(((start + a) / SAMPLE_RATE, (start + b) / SAMPLE_RATE, who, item))
        reference.append((start / SAMPLE_RATE, (start + len(y)) / SAMPLE_RATE, who))
    if telephone:
        from ..audio.augment import telephone as phone

        audio = phone(audio)
    audio = np.clip(audio, -1.0, 1.0)
    return Conversation(audio=audio, reference=reference, speakers=names, corpus=corpus, clips=clips)


def _grid(spans: Sequence[Span], names: list[str], n: int, step: float) -> np.ndarray:
    m = np.zeros((len(names), n), bool)
    idx = {s: i for i, s in enumerate(names)}
    for a, b, s in spans:
        m[idx[s], int(round(a / step)) : int(round(b / step))] = True
    return m


def der(reference: Sequence[Span], hypothesis: Sequence[Span], *, collar: float = 0.25,
        step: float = 0.01) -> dict:
    """Diarization error rate of ``hypothesis`` against ``reference`` (spans in seconds).

    Frames within ``collar`` seconds of a reference boundary are not scored. Speakers are mapped
    one to one to maximise the matched time (Hungarian). Overlapped reference speech counts once
    per speaker, as in md-eval.

    Returns
    -------
    dict with ``der``, ``missed``, ``false_alarm``, ``confusion`` (shares of scored reference
    speech) and ``speech`` (its seconds), ``mapping`` (hypothesis -> reference speaker)

    Examples
    --------
    >>> ref = [(0.0, 10.0, "a"), (10.0, 20.0, "b")]
    >>> round(der(ref, [(0.0, 10.0, "x"), (10.0, 20.0, "y")])["der"], 3)
    0.0
    >>> round(der(ref, [(0.0, 20.0, "x")])["der"], 3)  # b's 9.75 s scored are confused
    0.5
    """
    from scipy.optimize import linear_sum_assignment

    end = max([b for _, b, _ in reference] + [b for _, b, _ in hypothesis] + [0.0])
    n = int(np.ceil(end / step)) + 1
    rn = sorted({s for *_, s in reference})
    hn = sorted({s for *_, s in hypothesis})
    ref = _grid(reference, rn, n, step)
    hyp = _grid(hypothesis, hn, n, step)
    scored = np.ones(n, bool)
    c = int(round(collar / step))
    for a, b, _ in reference:
        for edge in (a, b):
            i = int(round(edge / step))
            scored[max(0, i - c) : i + c] = False
    ref, hyp = ref[:, scored], hyp[:, scored]
    overlap = ref.astype(np.float32) @ hyp.T.astype(np.float32)  # [ref, hyp] matched frames
    mapping: dict[str, str] = {}
    correct = 0.0
    if overlap.size:
        ri, hi = linear_sum_assignment(-overlap)
        correct = float(overlap[ri, hi].sum())
        mapping = {hn[h]: rn[r] for r, h in zip(ri, hi, strict=True)}
    n_ref, n_hyp = ref.sum(axis=0), hyp.sum(axis=0)
    total = float(n_ref.sum())
    missed = float(np.maximum(n_ref - n_hyp, 0).sum())
    false_alarm = float(np.maximum(n_hyp - n_ref, 0).sum())
    confusion = float(np.minimum(n_ref, n_hyp).sum()) - correct
    denom = max(total, 1.0)
    return {"der": (missed + false_alarm + confusion) / denom, "missed": missed / denom,
            "false_alarm": false_alarm / denom, "confusion": confusion / denom,
            "speech": total * step, "mapping": mapping}


def corpus_speaker_pools(data_dir: str | Path, corpus: str, part: Literal["tune", "test", "all"]) -> dict[str, list[Item]]:
    """:func:`speaker_pools` of the corpus ``corpus`` under ``data_dir`` (a clear error if it is not there)."""
    root = Path(data_dir) / corpus
    if not root.is_dir():
        raise DataError(f"{root}: corpus not found; set --data or $EMOVOX_DATA to the corpora folder")
    return speaker_pools(load_corpus(corpus, root).items, part=part)


def run_benchmark(data_dir: str | Path, *, conversations: int = 40, seconds: float = 60.0, seed: int = 0,
                  part: Literal["tune", "test", "all"] = "test", corpora: Sequence[str] = CORPORA,
                  config=None, counts: Sequence[int] = (1, 3), progress: Callable[[str], None] | None = None) -> dict:
    """DER of two-speaker conversations (clean and telephone, ``speakers=2`` and ``auto``), the
    speaker count of ``auto`` on those plus a quarter as many of each size in ``counts``, and the
    speaker step's CPU time per hour of audio (2-speaker clean runs, VAD excluded, one thread)."""
    from ..inference.diarization import DiarizationConfig, Speakers, diarize, speech_turns
    from ..inference.speaker import SpeakerEncoder

    config = config or DiarizationConfig()
    encoder = SpeakerEncoder.load()
    pools = {c: corpus_speaker_pools(data_dir, c, part) for c in corpora}
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    jobs = [(2, c) for i, c in zip(range(conversations), np.resize(list(corpora), conversations), strict=True)]
    for k in counts:
        jobs += [(k, c) for _, c in zip(range(max(1, conversations // 4)), np.resize(list(corpora), conversations), strict=False)]
    for j, (k, corpus) in enumerate(jobs):
        conv = make_conversation(pools[corpus], n_speakers=k, rng=rng, seconds=seconds)
        for phone in ((False, True) if k == 2 else (False,)):
            y = conv.audio
            if phone:
                from ..audio.augment import telephone

                y = telephone(y)
            turns = speech_turns(y)
            row: dict = {"corpus": corpus, "speakers": k, "telephone": phone, "seconds": len(y) / SAMPLE_RATE}
            modes: list[Speakers] = ["auto", 2] if k == 2 else ["auto"]
            for mode in modes:
                t0 = time.process_time()  # CPU time: the machine is shared, wall time is not ours
                d = diarize(y, speakers=mode, encoder=encoder, config=config, turns=turns)
                dt = time.process_time() - t0
                score = der(conv.reference, d.spans())
                row[f"der_{mode}"] = score["der"]
                row[f"parts_{mode}"] = {k2: score[k2] for k2 in ("missed", "false_alarm", "confusion")}
                row[f"time_{mode}"] = dt
                if mode == "auto":
                    row["found"] = len(d.speakers)
            rows.append(row)
        if progress:
            progress(f"{j + 1}/{len(jobs)} {corpus} {k} speakers: " +
                     ", ".join(f"DER {r.get('der_2', r['der_auto']):.3f} found {r['found']}" for r in rows[-2 if k == 2 else -1:]))
    return {"rows": rows, "summary": summarize_rows(rows), "config": vars(config) if hasattr(config, "__dict__") else {},
            "conversations": conversations, "seconds": seconds, "seed": seed, "part": part, "corpora": list(corpora)}


def summarize_rows(rows: list[dict]) -> dict:
    """Pooled DER (weighted by conversation length), count accuracy and seconds per audio hour."""
    def pooled(sel: list[dict], key: str) -> float:
        w = np.array([r["seconds"] for r in sel])
        return float(np.sum(w * np.array([r[key] for r in sel])) / np.sum(w)) if sel else float("nan")

    two = [r for r in rows if r["speakers"] == 2 and not r["telephone"]]
    phone = [r for r in rows if r["speakers"] == 2 and r["telephone"]]
    out: dict = {
        "der_2": pooled(two, "der_2"), "der_auto": pooled(two, "der_auto"),
        "der_2_telephone": pooled(phone, "der_2"), "der_auto_telephone": pooled(phone, "der_auto"),
        "parts_2": {k: pooled([{**r, k: r["parts_2"][k]} for r in two], k) for k in ("missed", "false_alarm", "confusion")},
        "count_accuracy": {}, "seconds_per_hour": float(sum(r["time_2"] for r in two) / max(1e-9, sum(r["seconds"] for r in two)) * 3600),
        "per_corpus": {},
    }
    for k in sorted({r["speakers"] for r in rows}):
        sel = [r for r in rows if r["speakers"] == k]
        out["count_accuracy"][str(k)] = float(np.mean([r["found"] == k for r in sel]))
    out["count_accuracy"]["all"] = float(np.mean([r["found"] == r["speakers"] for r in rows]))
    for c in sorted({r["corpus"] for r in two}):
        out["per_corpus"][c] = {"der_2": pooled([r for r in two if r["corpus"] == c], "der_2"),
                                "der_2_telephone": pooled([r for r in phone if r["corpus"] == c], "der_2")}
    return out


def format_results(result: dict) -> list[str]:
    """Markdown lines of a :func:`run_benchmark` result."""
    s = result["summary"]
    n2 = sum(1 for r in result["rows"] if r["speakers"] == 2 and not r["telephone"])
    counts = ", ".join(f"{k} speakers {100 * v:.0f}%" for k, v in s["count_accuracy"].items() if k != "all")
    lines = [
        "| measure | value | target |", "|---|---|---|",
        f"| DER, 2 speakers, `--speakers 2` ({n2} conversations) | {100 * s['der_2']:.1f}% | ≤ 10% |",
        f"| of which missed / false alarm / confusion | {100 * s['parts_2']['missed']:.1f} / "
        f"{100 * s['parts_2']['false_alarm']:.1f} / {100 * s['parts_2']['confusion']:.1f}% | |",
        f"| DER, 2 speakers, `--speakers auto` | {100 * s['der_auto']:.1f}% | |",
        f"| DER, 2 speakers, telephone channel, `--speakers 2` | {100 * s['der_2_telephone']:.1f}% | ≤ 15% |",
        f"| DER, 2 speakers, telephone channel, `--speakers auto` | {100 * s['der_auto_telephone']:.1f}% | |",
        f"| `auto` count right, all conversations | {100 * s['count_accuracy']['all']:.0f}% ({counts}) | ≥ 90% |",
        f"| speaker step, CPU seconds per hour of audio (one thread, VAD excluded) | {s['seconds_per_hour']:.1f} s | ≤ 3 s |",
    ]
    for c, v in s["per_corpus"].items():
        lines.append(f"| DER `--speakers 2` {c}: clean / telephone | {100 * v['der_2']:.1f}% / "
                     f"{100 * v['der_2_telephone']:.1f}% | |")
    return lines


def _ua(pairs: list[tuple[str, str | None]]) -> float:
    """Unweighted average recall of (true, predicted) pairs; a None prediction is wrong."""
    classes = sorted({t for t, _ in pairs})
    return float(np.mean([np.mean([p == c for t, p in pairs if t == c]) for c in classes])) if classes else float("nan")


def emotion_cost(data_dir: str | Path, *, conversations: int = 20, seconds: float = 60.0, seed: int = 1,
                 part: Literal["tune", "test", "all"] = "test", corpora: Sequence[str] = CORPORA,
                 predictor=None, progress: Callable[[str], None] | None = None) -> dict:
    """What diarization errors cost the emotions: UA of each clip's emotion read from its
    speaker's lane of ``analyze(conversation, speakers=2)`` (probabilities of the overlapping
    segments, weighted by overlap; a clip whose speaker's lane has nothing there is wrong),
    against the same clips predicted one by one, and against lanes cut at the true speaker turns
    (what the timeline's windows cost without any diarization error)."""
    from ..inference import Predictor
    from ..inference.diarization import Diarization, analyze_speakers

    predictor = predictor or Predictor.load()
    pools = {c: corpus_speaker_pools(data_dir, c, part) for c in corpora}
    rng = np.random.default_rng(seed)
    alone: list[tuple[str, str | None]] = []
    lanes: list[tuple[str, str | None]] = []
    oracle: list[tuple[str, str | None]] = []
    for j, corpus in zip(range(conversations), np.resize(list(corpora), conversations), strict=True):
        conv = make_conversation(pools[str(corpus)], n_speakers=2, rng=rng, seconds=seconds)
        result = analyze_speakers(conv.audio, predictor=predictor, speakers=2, name=f"conv{j}")
        mapping = der(conv.reference, [(s["start"], s["end"], s["channel"]) for s in result.segments
                                       if s["emotion"] != "no_speech"])["mapping"]
        lane_of = {ref: hyp for hyp, ref in mapping.items()}
        truth = Diarization([(int(a * SAMPLE_RATE), int(b * SAMPLE_RATE), who) for a, b, who in conv.reference],
                            list(conv.speakers), 2)
        true_lanes = analyze_speakers(conv.audio, predictor=predictor, speakers=2, name=f"conv{j}",
                                      diarization=truth).segments
        clips = [c for c in conv.clips if c[3].label in predictor.labels]
        preds = predictor.predict_many([conv.audio[int(a * SAMPLE_RATE):int(b * SAMPLE_RATE)] for a, b, _, _ in clips],
                                       vad=False)
        for (a, b, who, item), p in zip(clips, preds, strict=True):
            alone.append((item.label, p.label))
            lanes.append((item.label, _read_lane(result.segments, lane_of.get(who), a, b, predictor.labels)))
            oracle.append((item.label, _read_lane(true_lanes, who, a, b, predictor.labels)))
        if progress:
            progress(f"{j + 1}/{conversations}: UA alone {_ua(alone):.3f}, from speaker lanes {_ua(lanes):.3f}, "
                     f"from true-speaker lanes {_ua(oracle):.3f}")
    return {"clips": len(alone), "ua_alone": _ua(alone), "ua_lanes": _ua(lanes), "ua_true_lanes": _ua(oracle),
            "model": predictor.card.name, "model_version": predictor.card.version,
            "window_seconds": predictor.window_samples / SAMPLE_RATE}


def _read_lane(segments: list[dict], lane: str | None, start: float, end: float, labels: Sequence[str]) -> str | None:
    """The emotion of ``lane`` over ``[start, end]`` s: segment probabilities weighted by overlap."""
    acc = np.zeros(len(labels))
    for s in segments:
        ov = min(end, s["end"]) - max(start, s["start"])
        if s["channel"] == lane and ov > 0 and s["probabilities"]:
            acc += ov * np.array([s["probabilities"].get(k, 0.0) for k in labels])
    return labels[int(np.argmax(acc))] if acc.sum() > 0 else None


def benchmark_markdown(data_dir: str | Path, *, conversations: int = 40, seed: int = 0,
                       command: str = "emovox benchmark --diarization",
                       progress: Callable[[str], None] | None = None) -> tuple[dict, str]:
    """Run :func:`run_benchmark` on the ``test`` speakers and :func:`emotion_cost`; return the
    results and the Markdown body of the ``diarization`` section of docs/benchmarks.md."""
    import platform

    from ..inference.diarization import DiarizationConfig
    from ..inference.speaker import SpeakerEncoder

    t0 = time.perf_counter()
    result = run_benchmark(data_dir, conversations=conversations, seed=seed, progress=progress)
    cost = emotion_cost(data_dir, conversations=max(2, conversations // 2), seed=seed + 1, progress=progress)
    result["emotion"] = cost
    cfg = DiarizationConfig()
    meta = SpeakerEncoder.load().meta.get("projection")
    projection = "" if not meta else (
        f", then an LDA to {meta['dims']} dimensions trained on {meta['trained_on']['speakers']} speakers "
        f"(each also at speeds {', '.join(f'{v:g}' for v in meta['trained_on'].get('speeds', [1.0]) if v != 1.0)} "
        f"as a speaker of its own) "
        f"({', '.join(meta['trained_on']['corpora'])}; none of the `test` speakers); "
        f"`auto` thresholds {tuple(meta['auto_gain'])} chosen on conversations of held-out `tune` speakers "
        f"(two-fold cross-validation)")
    n2 = sum(1 for r in result["rows"] if r["speakers"] == 2 and not r["telephone"])
    lines = [
        f"Command: `{command}` ({time.perf_counter() - t0:.0f} s on {platform.machine()}). "
        f"{n2} two-speaker conversations of {result['seconds']:.0f} s, half CREMA-D and half RAVDESS, "
        f"from the `test` half of each corpus's speakers (no setting was chosen on them); each also "
        f"through the telephone channel; plus {n2 // 4} one-speaker and {n2 // 4} three-speaker "
        f"conversations for the `auto` count. Turns of 1–8 s, gaps of 0.2–1 s, 10% of turns overlap "
        f"the previous by 0.2–0.6 s. DER with a 0.25 s collar, pooled over conversations.",
        "",
        *format_results(result),
        f"| emotion UA of each clip: alone / read from its speaker's lane / from a lane cut at the true "
        f"speaker turns ({cost['clips']} clips, model {cost['model']} {cost['model_version']}) | "
        f"{100 * cost['ua_alone']:.1f}% / {100 * cost['ua_lanes']:.1f}% / {100 * cost['ua_true_lanes']:.1f}% | |",
        "",
        f"Diarization errors change the emotions' UA by {100 * (cost['ua_lanes'] - cost['ua_true_lanes']):+.1f} points "
        f"(speaker lanes against lanes cut at the true turns). The gap to the clips alone is not "
        f"diarization: a turn joins several acted clips, each with its own emotion, without a pause, and "
        f"the timeline's cells (the model's {cost['window_seconds']:g} s windows) straddle them — a real "
        f"speaker's emotion does not change every 2-3 s.",
        "",
        f"Encoder: resemblyzer 0.1.4's voice encoder on ONNX Runtime{projection}; windows "
        f"{cfg.window_seconds} s, hop {cfg.hop_seconds} s; spectral clustering (NME), Viterbi boundary refinement.",
    ]
    return result, "\n".join(lines)
