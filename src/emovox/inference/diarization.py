"""Who spoke when in a mono recording: speaker embeddings of short windows, clustered.

Speech turns come from the same VAD and turn rules as :func:`~emovox.inference.analyze`. Each
turn is cut into windows (``window_seconds``, overlapping by ``1 - hop/window``); each window gets
a speaker embedding (:class:`~emovox.inference.speaker.SpeakerEncoder`). The embeddings are
clustered (spectral clustering with an NME-tuned affinity, then a few spherical k-means steps
on all windows); with ``speakers="auto"`` a voice is added while it makes the windows markedly
closer to their own voice (``auto_gain``). Boundaries are then refined frame by frame (30 ms):
every frame is scored against each voice by the windows that cover it, and a Viterbi pass with a
switching penalty picks the labels, so a change of speaker inside a turn lands between windows
rather than at a window edge.

Speakers are named ``speaker 1``, ``speaker 2``, ... in order of first appearance.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from .._numeric import unit_rows
from .._threads import limit_blas_threads
from ..audio import SAMPLE_RATE, describe, load, validate
from ..errors import ParameterError
from .analysis import (  # analysis imports this module only inside analyze()
    Analysis,
    SpeakerCells,
    finish_speaker,
    model_info,
    predict_turns,
)
from .segmentation import SegmentConfig, Segmenter
from .speaker import DEFAULT_AUTO_GAIN, SpeakerEncoder
from .summary import smooth, summarize
from .vad import FRAME_SAMPLES, FrameVAD, frame_energy_db, is_steady

__all__ = ["DiarizationConfig", "Diarization", "diarize", "analyze_speakers", "speaker_name", "check_speakers",
           "speech_turns", "pad_turns", "embedding_windows", "MAX_SPEAKERS"]

MAX_SPEAKERS = 6
Speakers = int | Literal["auto"]


def speaker_name(i: int) -> str:
    """Label of the ``i``-th speaker to appear (0-based): ``speaker 1``, ``speaker 2``, ..."""
    return f"speaker {i + 1}"


def check_speakers(speakers: object, *, max_speakers: int = MAX_SPEAKERS) -> Speakers:
    """Validate a ``speakers`` option: an int count ``1..max_speakers`` or ``"auto"``.

    Strings from users ("2") are parsed where they come in (the CLI, the API, the web app), not here.
    """
    if speakers == "auto":
        return "auto"
    if isinstance(speakers, bool) or not isinstance(speakers, numbers.Integral) \
            or not 1 <= int(speakers) <= max_speakers:
        raise ParameterError(f"speakers must be 'auto' or a count 1..{max_speakers}, got {speakers!r}")
    return int(speakers)


@dataclass(frozen=True)
class DiarizationConfig:
    """Settings of :func:`diarize` (seconds unless stated).

    window_seconds, hop_seconds : embedding windows inside speech turns.
    min_window_seconds : turns shorter than this get no embedding of their own (they take the
        voice of the nearest scored frame).
    switch_penalty : Viterbi cost of a change of speaker between two frames, in units of cosine
        similarity summed over frames.
    pad_seconds : speech turns are widened by this on each side (the VAD clips word edges).
    auto_gain : ``auto`` adds a k-th voice while it raises the windows' mean similarity to their
        own voice by more than ``auto_gain[k - 2]`` (the last value repeats); None: the encoder's
        own (:attr:`SpeakerEncoder.auto_gain`, chosen with its projection on the ``tune`` speakers
        of :mod:`emovox.evaluation.diarization`).
    max_auto : the most voices ``auto`` looks for.
    centre : subtract the recording's mean embedding before clustering (what every window shares:
        channel, room, corpus), leaving what tells the voices apart.
    max_cluster_windows : cluster at most this many windows; the rest join their nearest centroid.
    """

    window_seconds: float = 1.5
    hop_seconds: float = 0.75
    min_window_seconds: float = 0.4
    switch_penalty: float = 1.0
    kmeans_steps: int = 5
    max_cluster_windows: int = 600
    pad_seconds: float = 0.25
    auto_gain: tuple[float, ...] | None = None
    max_auto: int = 4
    centre: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.hop_seconds <= self.window_seconds or self.min_window_seconds <= 0:
            raise ParameterError(f"invalid diarization windows in {self}")
        if self.switch_penalty < 0 or self.max_cluster_windows < 10 or not 1 <= self.max_auto <= MAX_SPEAKERS:
            raise ParameterError(f"invalid diarization settings in {self}")


@dataclass
class Diarization:
    """The result of :func:`diarize`.

    ``turns``: ``(start, end, speaker)`` with times in samples at 16 kHz, sorted by start, not
    overlapping; ``speakers``: the labels in order of first appearance; ``message``: a note for
    the user when the recording did not give what was asked (no speech, fewer voices).
    """

    turns: list[tuple[int, int, str]]
    speakers: list[str]
    requested: Speakers
    message: str | None = None
    similarity: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32), repr=False)

    def spans(self) -> list[tuple[float, float, str]]:
        """Turns in seconds."""
        return [(a / SAMPLE_RATE, b / SAMPLE_RATE, s) for a, b, s in self.turns]


def speech_turns(y: np.ndarray, *, vad: Literal["webrtc", "energy"] = "webrtc", aggressiveness: int = 2,
                 segment_config: SegmentConfig | None = None) -> list[tuple[int, int]]:
    """VAD turns of a whole signal in samples (steady sounds such as tones and hum removed)."""
    seg = Segmenter(segment_config or SegmentConfig())
    frames = seg.feed(FrameVAD(aggressiveness=aggressiveness, method=vad).process(y)) + seg.flush()
    turns = [(a * FRAME_SAMPLES, b * FRAME_SAMPLES) for a, b in frames]
    return [(a, b) for a, b in turns if not is_steady(y[a:b])]


def pad_turns(turns: list[tuple[int, int]], *, pad: int, n: int) -> list[tuple[int, int]]:
    """Widen turns by ``pad`` samples each side, inside ``[0, n)``, merging any that meet."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(turns):
        a, b = max(0, a - pad), min(n, b + pad)
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def embedding_windows(turns: list[tuple[int, int]], config: DiarizationConfig) -> list[tuple[int, int]]:
    """The ``(start, end)`` sample windows that get a speaker embedding: each turn cut into
    ``window_seconds`` windows spread evenly at about ``hop_seconds`` apart; a turn no longer than a
    window is one window; turns under ``min_window_seconds`` get none."""
    win = int(config.window_seconds * SAMPLE_RATE)
    hop = int(config.hop_seconds * SAMPLE_RATE)
    least = int(config.min_window_seconds * SAMPLE_RATE)
    out: list[tuple[int, int]] = []
    for a, b in turns:
        if b - a < least:
            continue
        if b - a <= win:
            out.append((a, b))
            continue
        n = int(np.ceil((b - a - win) / hop)) + 1
        starts = np.linspace(a, b - win, n).round().astype(int)
        out.extend((int(s), int(s) + win) for s in starts)
    return out


def _centroids(emb: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    return unit_rows(np.stack([emb[labels == c].mean(axis=0) if np.any(labels == c) else np.zeros(emb.shape[1])
                                for c in range(k)]))


def _kmeans(x: np.ndarray, k: int, *, rng: np.random.Generator, restarts: int = 8, steps: int = 30) -> np.ndarray:
    """Euclidean k-means with k-means++ seeding and restarts; labels ``[n]``."""
    best, best_cost = np.zeros(len(x), int), np.inf
    for _ in range(restarts):
        cent = [x[int(rng.integers(len(x)))]]
        for _ in range(1, k):
            d = np.min(((x[:, None, :] - np.array(cent)[None]) ** 2).sum(-1), axis=1)
            cent.append(x[int(rng.choice(len(x), p=d / d.sum()))] if d.sum() > 0 else x[int(rng.integers(len(x)))])
        c = np.array(cent)
        lab = np.zeros(len(x), int)
        for _ in range(steps):
            lab = np.argmin(((x[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
            new = np.stack([x[lab == j].mean(0) if np.any(lab == j) else c[j] for j in range(k)])
            if np.allclose(new, c):
                break
            c = new
        cost = float(((x - c[lab]) ** 2).sum())
        if cost < best_cost:
            best, best_cost = lab, cost
    return best


def _nme(emb: np.ndarray, *, max_k: int) -> tuple[int, np.ndarray]:
    """The spectral embedding of unit rows ``emb`` under the p-neighbour binarised affinity chosen
    by NME (Park et al. 2019): the eigenvectors ``[n, n]`` of its graph Laplacian and the cluster
    count its largest eigengap suggests.

    For each candidate ``p`` (neighbours kept per row), the Laplacian's largest eigengap among
    the first ``max_k`` is normalised by its largest eigenvalue; the ``p`` with the lowest
    ``p / gap`` wins. It does not depend on the number of clusters asked, so :func:`_cluster`
    computes it once for all the counts it tries.
    """
    n = len(emb)
    sim = emb @ emb.T
    order = np.argsort(-sim, axis=1)
    best: tuple[float, int, np.ndarray] | None = None
    for p in sorted({int(v) for v in np.linspace(2, max(2, n // 4), 16).round()}):
        a = np.zeros_like(sim)
        np.put_along_axis(a, order[:, :p], 1.0, axis=1)
        a = (a + a.T) / 2
        lap = np.diag(a.sum(1)) - a
        vals, vecs = np.linalg.eigh(lap)
        gaps = np.diff(vals[: max_k + 1])
        g = float(gaps.max() / (vals[-1] + 1e-10))
        ratio = p / (g + 1e-10)
        if best is None or ratio < best[0]:
            best = (ratio, int(np.argmax(gaps)) + 1, vecs)
    assert best is not None  # at least one p is tried
    return best[1], best[2]


def _spectral(emb: np.ndarray, *, k: int | None, max_k: int, rng: np.random.Generator,
              nme: tuple[int, np.ndarray] | None = None) -> np.ndarray:
    """Spectral clustering of unit rows ``emb`` into ``k`` clusters (None: as many as NME finds)."""
    n = len(emb)
    if n <= 2:
        return np.zeros(n, int) if k in (None, 1) else np.arange(n) % max(1, k)
    found, vecs = nme if nme is not None else _nme(emb, max_k=max_k)
    k = found if k is None else k
    if k == 1:
        return np.zeros(n, int)
    return _kmeans(vecs[:, :k], k, rng=rng)


def _sample(emb: np.ndarray, config: DiarizationConfig, rng: np.random.Generator) -> np.ndarray:
    """At most ``max_cluster_windows`` rows of ``emb`` (in order) to cluster."""
    if len(emb) <= config.max_cluster_windows:
        return emb
    return emb[np.sort(rng.choice(len(emb), config.max_cluster_windows, replace=False))]


def _fit(emb: np.ndarray, k: int, *, config: DiarizationConfig, rng: np.random.Generator,
         sample: np.ndarray | None = None, nme: tuple[int, np.ndarray] | None = None) -> tuple[np.ndarray, float]:
    """``k`` voice centroids of ``emb`` (spectral clustering of ``sample``, then spherical k-means
    on all windows) and the windows' mean similarity to their own centroid."""
    sample = _sample(emb, config, rng) if sample is None else sample
    labels = _spectral(sample, k=k, max_k=MAX_SPEAKERS, rng=rng, nme=nme) if k > 1 else np.zeros(len(sample), int)
    cent = _centroids(sample, labels, int(labels.max()) + 1)
    for _ in range(config.kmeans_steps):
        labels = np.argmax(emb @ cent.T, axis=1)
        keep = np.bincount(labels, minlength=len(cent)) > 0
        cent = _centroids(emb, labels, len(cent))[keep]
    return cent, float(np.mean(np.max(emb @ cent.T, axis=1)))


def _gain(config: DiarizationConfig, k: int) -> float:
    gains = config.auto_gain or DEFAULT_AUTO_GAIN  # diarize() fills in the encoder's
    return gains[min(k - 2, len(gains) - 1)]


def _cluster(emb: np.ndarray, *, speakers: Speakers, config: DiarizationConfig,
             rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """Voice centroids ``[k, d]`` of unit window embeddings ``[n, d]``, and whether the last voice
    was weakly separated (a requested count above what ``auto`` would find)."""
    sample = _sample(emb, config, rng)
    nme = _nme(sample, max_k=MAX_SPEAKERS) if len(sample) > 2 else None  # shared by every count tried
    if speakers != "auto":
        k = min(int(speakers), len(emb))
        cent, score = _fit(emb, k, config=config, rng=rng, sample=sample, nme=nme)
        weak = False
        if k > 1:
            _, fewer = _fit(emb, k - 1, config=config, rng=rng, sample=sample, nme=nme)
            weak = score - fewer <= _gain(config, k)
        return cent, weak
    cent, score = _fit(emb, 1, config=config, rng=rng, sample=sample)
    for k in range(2, min(config.max_auto, len(emb)) + 1):
        more, more_score = _fit(emb, k, config=config, rng=rng, sample=sample, nme=nme)
        if more_score - score <= _gain(config, k):
            break
        cent, score = more, more_score
    return cent, False


def _viterbi(scores: np.ndarray, penalty: float) -> np.ndarray:
    """Best label path through ``scores [frames, k]`` (higher is better) with a cost per switch."""
    n, k = scores.shape
    if k == 1:
        return np.zeros(n, int)
    acc = scores[0].copy()
    back = np.zeros((n, k), np.int32)
    for t in range(1, n):
        stay = acc
        best = int(np.argmax(acc))
        move = acc[best] - penalty
        back[t] = np.where(stay >= move, np.arange(k), best)
        acc = np.maximum(stay, move) + scores[t]
    path = np.zeros(n, int)
    path[-1] = int(np.argmax(acc))
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def _frame_labels(turns: list[tuple[int, int]], windows: list[tuple[int, int]], sims: np.ndarray,
                  config: DiarizationConfig) -> list[tuple[int, int, int]]:
    """Speaker runs ``(start, end, cluster)`` in samples, from window similarities ``[n_windows, k]``."""
    starts = np.array([a for a, _ in windows], dtype=np.int64)
    ends = np.array([b for _, b in windows], dtype=np.int64)
    centres = (starts + ends) / 2
    out: list[tuple[int, int, int]] = []
    for a, b in turns:
        nf = max(1, (b - a) // FRAME_SAMPLES)
        t = a + (np.arange(nf) + 0.5) * FRAME_SAMPLES
        inside = np.flatnonzero((starts < b) & (ends > a))
        if len(inside) == 0:  # too short for a window: nearest window anywhere
            inside = np.array([int(np.argmin(np.abs(centres - (a + b) / 2)))])
            scores = np.repeat(sims[inside], nf, axis=0)
        else:
            # triangular weight: a window speaks most for the frames near its centre
            half = (ends[inside] - starts[inside]) / 2
            w = np.clip(1.0 - np.abs(t[:, None] - centres[inside][None, :]) / half[None, :], 0.0, None) + 1e-3
            cover = (t[:, None] >= starts[inside][None, :]) & (t[:, None] < ends[inside][None, :])
            w = np.where(cover, w, 1e-6)  # a frame no window covers leans on all of them alike
            scores = (w @ sims[inside]) / w.sum(axis=1, keepdims=True)
        path = _viterbi(scores, config.switch_penalty)
        edges = np.flatnonzero(np.diff(path)) + 1
        bounds = np.concatenate([[0], edges, [nf]])
        for f0, f1 in zip(bounds[:-1], bounds[1:], strict=True):
            s0 = a + int(f0) * FRAME_SAMPLES
            s1 = b if f1 == nf else a + int(f1) * FRAME_SAMPLES
            out.append((s0, s1, int(path[f0])))
    return out


def diarize(y: np.ndarray, *, speakers: Speakers = "auto", encoder: SpeakerEncoder | None = None,
            config: DiarizationConfig | None = None, vad: Literal["webrtc", "energy"] = "webrtc",
            aggressiveness: int = 2, segment_config: SegmentConfig | None = None,
            turns: list[tuple[int, int]] | None = None, seed: int = 0) -> Diarization:
    """Assign the speech of a mono recording to speakers.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float32 at 16 kHz
    speakers : int or "auto"
        How many voices to find; ``"auto"`` counts them (1..``MAX_SPEAKERS``). A count larger
        than the voices heard gives the voices heard, with a ``message``.
    encoder : SpeakerEncoder, optional
        Default: the shipped one.
    turns : list of (start, end) samples, optional
        Speech turns to use instead of running the VAD.

    Returns
    -------
    Diarization

    Examples
    --------
    >>> d = diarize(np.zeros(32000, np.float32), speakers=2)
    >>> d.turns, d.message
    ([], 'no speech found: no speakers to tell apart')
    """
    y = np.ascontiguousarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ParameterError(f"diarize needs mono audio (n,), got shape {y.shape}")
    speakers = check_speakers(speakers)
    config = config or DiarizationConfig()
    if turns is None:
        turns = speech_turns(y, vad=vad, aggressiveness=aggressiveness, segment_config=segment_config)
    turns = pad_turns(turns, pad=int(config.pad_seconds * SAMPLE_RATE), n=len(y))
    windows = embedding_windows(turns, config)
    if not windows:
        return Diarization([], [], speakers, message="no speech found: no speakers to tell apart")
    limit_blas_threads()  # the clustering's small eigenproblems: extra BLAS threads only spin
    encoder = encoder or SpeakerEncoder.load()
    if config.auto_gain is None:
        config = replace(config, auto_gain=encoder.auto_gain)
    emb = unit_rows(encoder.embed_windows(y, windows))
    if config.centre and len(emb) > 1:
        emb = unit_rows(emb - emb.mean(axis=0))
    cent, weak = _cluster(emb, speakers=speakers, config=config, rng=np.random.default_rng(seed))
    runs = _frame_labels(turns, windows, emb @ cent.T, config)
    order: dict[int, str] = {}
    out: list[tuple[int, int, str]] = []
    for a, b, c in sorted(runs):
        name = order.setdefault(c, speaker_name(len(order)))
        if out and out[-1][2] == name and out[-1][1] == a:
            out[-1] = (out[-1][0], b, name)
        else:
            out.append((a, b, name))
    names = list(order.values())
    message = None
    if speakers != "auto" and len(names) < int(speakers):
        message = (f"asked for {speakers} speakers but heard {len(names)} distinct "
                   f"voice{'s' if len(names) != 1 else ''}; the timeline has {len(names)}")
    elif weak:
        message = (f"asked for {speakers} speakers; the last of them is barely distinct from the others: "
                   f"the recording may hold fewer voices (try --speakers auto)")
    inv = {v: k for k, v in order.items()}
    sim = (cent @ cent.T)[np.ix_([inv[n] for n in names], [inv[n] for n in names])]
    return Diarization(out, names, speakers, message=message, similarity=sim.astype(np.float32))


class _SpeakerTrack:
    """What :func:`emovox.inference.analysis.predict_turns` reads of a channel: a name and audio."""

    def __init__(self, name: str, y: np.ndarray):
        self.name = name
        self._y = y

    def audio(self, a: int, b: int) -> np.ndarray:
        return self._y[a:b]


def _mono(source, *, name: str) -> np.ndarray:
    if isinstance(source, np.ndarray):
        y = validate(source, name=name)
        return y if y.ndim == 1 else np.ascontiguousarray(y.mean(axis=0), dtype=np.float32)
    return load(source, channels="mix")


def analyze_speakers(source, *, predictor, speakers: Speakers, smoothing: int = 1,
                     vad: Literal["webrtc", "energy"] = "webrtc", aggressiveness: int | None = None,
                     segment_config: SegmentConfig | None = None, hop_seconds: float | None = None,
                     name: str | None = None, encoder: SpeakerEncoder | None = None,
                     config: DiarizationConfig | None = None, diarization: Diarization | None = None):
    """:func:`emovox.inference.analyze` with ``speakers``: one timeline channel per speaker.

    The recording is decoded whole (diarization clusters the whole recording: about 230 MB per
    hour of audio), diarized, and each speaker's turns go through the same emotion path as a
    channel of a split stereo call. ``summary["speakers"]`` says what was asked and found, with a
    ``message`` when that differs (no speech, fewer voices than asked). ``diarization`` replaces
    the diarizer's answer with a known one (e.g. the reference turns of a test conversation, to
    measure what diarization errors cost).
    """
    speakers = check_speakers(speakers)
    file = name or (describe(source) if not isinstance(source, np.ndarray) else "<array>")
    y = _mono(source, name=file)
    hop = predictor.hop_samples if hop_seconds is None else int(round(hop_seconds * SAMPLE_RATE))
    if not 0 < hop <= predictor.window_samples:
        raise ParameterError(f"hop_seconds must be in (0, window_seconds], got {hop_seconds}")
    aggr = predictor.vad_aggressiveness if aggressiveness is None else aggressiveness
    d = diarization or diarize(y, speakers=speakers, encoder=encoder, config=config, vad=vad, aggressiveness=aggr,
                               segment_config=segment_config)
    segments: list[dict] = []
    heads: dict[str, str] = {}
    for who in d.speakers:
        turns = [(a, b) for a, b, s in d.turns if s == who]
        track = _SpeakerTrack(who, y)  # duck-types the two members of a channel that predict_turns reads
        held = SpeakerCells() if predictor.speaker_normalised else None
        segments.extend(predict_turns(predictor, track, turns, file=file, hop=hop,  # type: ignore[arg-type]
                                      pending=held))
        if held is not None:
            done, heads[who] = finish_speaker(predictor, held, file=file, channel=who)
            segments.extend(done)
    segments.sort(key=lambda s: (s["start"], s["channel"]))
    if smoothing:
        segments = smooth(segments, width=smoothing, labels=predictor.labels,
                          min_confidence=predictor.min_confidence, min_margin=predictor.min_margin)
    duration = len(y) / SAMPLE_RATE
    names = list(d.speakers) or ["mix"]
    summary = summarize(segments, duration=duration, labels=predictor.labels, channels=d.speakers or None)
    summary["speakers"] = {"requested": speakers, "found": len(d.speakers), "message": d.message}
    n = len(y) // FRAME_SAMPLES
    level = frame_energy_db(y[: n * FRAME_SAMPLES].reshape(n, FRAME_SAMPLES)) if n else np.zeros(0, np.float32)
    lanes = []
    for who in names:  # each lane shows the loudness of its own speaker's turns only
        mask = np.zeros(n, bool) if d.speakers else np.ones(n, bool)
        for a, b, s in d.turns:
            if s == who:
                mask[a // FRAME_SAMPLES : -(-b // FRAME_SAMPLES)] = True
        lanes.append(np.where(mask, level, np.float32(-100.0)).astype(np.float32))
    return Analysis(file=file, duration=duration, channels=names, labels=list(predictor.labels),
                    model=model_info(predictor, heads), segments=segments, summary=summary,
                    envelope=np.stack(lanes))
