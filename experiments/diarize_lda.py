"""Experiment (issue #15): a speaker-discriminant projection of the voice encoder's embeddings.

    python experiments/diarize_lda.py embed                 # training windows -> runs/exp/diarize_lda/train.npz
    python experiments/diarize_lda.py cv --shrink 0.3 --conversations 100 --projections lda24 lda32 lda48
    python experiments/diarize_lda.py tune --conversations 20 --set switch_penalty=2
    python experiments/diarize_lda.py test --projection lda32 --conversations 40

The shipped projection is built by ``python -m emovox.evaluation.speaker_projection`` with the
settings ``cv`` chose; this script is where they were searched.

Most of the diarizer's error is speaker confusion on acted speech: an actor's anger moves their
resemblyzer embedding about as far as a change of actor (docs/experiments.md). The classical
answer of speaker recognition back-ends (i-vector / x-vector systems: LDA, WCCN before PLDA) is a
linear map learnt on many speakers that keeps the directions along which *speakers* differ and
shrinks those along which one speaker's windows vary (emotion, channel, words).

Training windows: every clip of the ``tune`` half of CREMA-D's and RAVDESS's speakers (the
benchmark's ``test`` half is never touched) plus all of SAVEE and TESS (never in a benchmark
conversation), leading/trailing silence trimmed, clean and through the telephone channel, cut into
the diarizer's windows (1.5 s, hop 0.75 s). One class per speaker.

Projections: ``none``; ``lda<d>`` (generalised eigenvectors of between- vs within-speaker scatter,
the within scatter shrunk towards its mean variance, top ``d``); ``wccn`` (within-speaker whitening,
all 256 dims). Each maps a unit embedding ``x`` to ``P (x - mean)``; the diarizer normalises again.

``cv`` splits the ``tune`` speakers of CREMA-D and RAVDESS into two folds: the projection learns on
one (plus SAVEE and TESS) and is scored on conversations of the other, so dimensions, shrinkage and
the ``auto`` thresholds are chosen on speakers the projection never saw. ``tune`` scores each
projection on ``tune`` conversations, i.e. on its own training speakers (it flatters the
projection; use it only to compare diarizer settings), and records, per conversation, the mean window-to-centroid similarity for k = 1..4
voices, so the ``auto`` thresholds can be chosen for each projection on these speakers only.
``test`` runs the benchmark's own conversations (``test`` speakers) with a projection and the
thresholds chosen on ``tune``. Appends to runs/exp/diarize_lda.tsv.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from emovox._numeric import unit_rows
from emovox.audio import SAMPLE_RATE, load, resample
from emovox.audio.augment import telephone
from emovox.corpora import load_corpus
from emovox.evaluation.diarization import der, make_conversation, speaker_pools, trim_edges
from emovox.evaluation.speaker_projection import fit_lda
from emovox.inference.diarization import (
    MAX_SPEAKERS,
    DiarizationConfig,
    _fit,
    _nme,
    diarize,
    embedding_windows,
    pad_turns,
    speech_turns,
)
from emovox.inference.speaker import DEFAULT_AUTO_GAIN, SpeakerEncoder

OUT = Path("runs/exp/diarize_lda")
SETTINGS: dict = {"hop_seconds": 0.75}  # --hop, --set: DiarizationConfig fields in tune/test


def training_pools(data: Path) -> dict[str, list]:
    pools: dict[str, list] = {}
    for corpus in ("crema-d", "ravdess"):
        for s, items in speaker_pools(load_corpus(corpus, data / corpus).items, part="tune").items():
            pools[f"{corpus}/{s}"] = items
    for corpus in ("savee", "tess"):
        for s, items in speaker_pools(load_corpus(corpus, data / corpus).items, part="all").items():
            pools[f"{corpus}/{s}"] = items
    return pools


def embed_training(data: Path, *, max_clips: int, name: str = "train", speeds: tuple[float, ...] = (1.0,)) -> None:
    """Training windows; each speed factor other than 1 makes a new "speaker" ``<speaker>@<factor>``
    (speed perturbation, as x-vector recipes do: more classes for the between-speaker scatter)."""
    enc = SpeakerEncoder.load(projection=False)
    cfg = DiarizationConfig()
    pools = training_pools(data)
    rng = np.random.default_rng(0)
    embs, spk, phone = [], [], []
    t0 = time.time()
    for j, (s, items) in enumerate(sorted(pools.items())):
        pick = [items[i] for i in sorted(rng.choice(len(items), min(max_clips, len(items)), replace=False))]
        for it in pick:
            clean = trim_edges(load(it.path))
            for factor in speeds:
                # played `factor` times faster: resample to 16000 / factor Hz, read as 16 kHz
                y = clean if factor == 1.0 else resample(clean, SAMPLE_RATE, int(round(SAMPLE_RATE / factor)))
                label = s if factor == 1.0 else f"{s}@{factor:g}"
                for tel in (False, True):
                    z = telephone(y) if tel else y
                    w = embedding_windows([(0, len(z))], cfg)
                    if not w:
                        continue
                    e = enc.embed_windows(z, w)
                    embs.append(e)
                    spk += [label] * len(e)
                    phone += [tel] * len(e)
        print(f"{j + 1}/{len(pools)} {s}: {len(spk)} windows, {time.time() - t0:.0f} s", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez(OUT / f"{name}.npz", embeddings=np.concatenate(embs), speakers=np.array(spk), telephone=np.array(phone))


def fit_projection(name: str, X: np.ndarray, speakers: np.ndarray, shrink: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """``(mean [256], P [d, 256])`` of a projection named ``none``, ``wccn`` or ``lda<d>``."""
    X = unit_rows(X)
    mean = X.mean(0)
    if name == "none":
        return np.zeros_like(mean), np.eye(X.shape[1])
    if name.startswith("lda"):
        return fit_lda(X, speakers, dims=int(name.removeprefix("lda")), shrink=shrink)
    classes = np.unique(speakers)
    means = np.stack([X[speakers == c].mean(0) for c in classes])
    within = sum(np.cov((X[speakers == c] - means[i]).T, bias=True) * np.sum(speakers == c)
                 for i, c in enumerate(classes)) / len(X)
    within = (1 - shrink) * within + shrink * np.trace(within) / len(within) * np.eye(len(within))
    vals, vecs = np.linalg.eigh(within)
    return mean, vecs @ np.diag(vals ** -0.5) @ vecs.T  # wccn: within-speaker whitening


class ProjectedEncoder:
    """The shipped encoder with a linear map after it; raw embeddings cached per (signal, windows)."""

    def __init__(self, base: SpeakerEncoder):
        self.base = base
        self.cache: dict[tuple, np.ndarray] = {}
        self.mean: np.ndarray | None = None
        self.P: np.ndarray | None = None
        self.auto_gain = DEFAULT_AUTO_GAIN  # what diarize() reads when a config leaves it open

    def raw(self, y: np.ndarray, windows) -> np.ndarray:
        key = (len(y), float(y[:: 997].sum()), tuple(windows))
        if key not in self.cache:
            self.cache[key] = self.base.embed_windows(y, windows)
        return self.cache[key]

    def embed_windows(self, y: np.ndarray, windows) -> np.ndarray:
        e = self.raw(y, windows)
        if self.P is None:
            return e
        return (unit_rows(e) - self.mean) @ self.P.T


def count_scores(enc: ProjectedEncoder, y: np.ndarray, turns, cfg: DiarizationConfig) -> tuple[list[float], int]:
    """Mean window-to-own-centroid similarity for k = 1..4 voices (what ``auto`` compares), and the
    count NME's eigengap suggests (an alternative rule)."""
    turns = pad_turns(turns, pad=int(cfg.pad_seconds * SAMPLE_RATE), n=len(y))
    w = embedding_windows(turns, cfg)
    emb = unit_rows(enc.embed_windows(y, w))
    rng = np.random.default_rng(0)
    nme = _nme(emb, max_k=4) if len(emb) > 2 else (1, None)
    return [_fit(emb, k, config=cfg, rng=rng)[1] for k in range(1, min(4, len(emb)) + 1)], int(nme[0])


def choose_gains(rows: list[dict], proj: str) -> tuple[tuple[float, float], float]:
    """auto_gain (k=2, k>=3) maximising the count accuracy over ``rows`` (ties: the smaller gains)."""
    grid = np.round(np.arange(0.0, 0.2, 0.0025), 4)
    best = ((0.0, 0.0), -1.0)
    for g2 in grid:
        for g3 in grid:
            acc = np.mean([found(r["scores"][proj], (g2, g3)) == r["speakers"] for r in rows])
            if acc > best[1] + 1e-9:
                best = ((float(g2), float(g3)), float(acc))
    return best


def found(scores: list[float], gains: tuple[float, float]) -> int:
    k = 1
    for j in range(1, len(scores)):
        if scores[j] - scores[j - 1] <= gains[min(j - 1, 1)]:
            break
        k = j + 1
    return k


def conversations(data: Path, part: str, n: int, seed: int, keep=None):
    pools = {c: speaker_pools(load_corpus(c, data / c).items, part=part) for c in ("crema-d", "ravdess")}
    if keep is not None:  # cv: only the held-out fold's speakers
        pools = {c: {s: v for s, v in pool.items() if keep(f"{c}/{s}")} for c, pool in pools.items()}
    rng = np.random.default_rng(seed)
    jobs = [(2, c) for c in np.resize(["crema-d", "ravdess"], n)]
    jobs += [(k, c) for k in (1, 3) for c in np.resize(["crema-d", "ravdess"], max(1, n // 4))]
    for k, c in jobs:
        yield k, c, make_conversation(pools[str(c)], n_speakers=k, rng=rng, seconds=60.0)


def evaluate(data: Path, part: str, n: int, seed: int, projections: dict, gains: dict | None = None,
             keep=None) -> dict:
    base = SpeakerEncoder.load(projection=False)
    enc = ProjectedEncoder(base)
    rows = []
    t0 = time.time()
    for j, (k, corpus, conv) in enumerate(conversations(data, part, n, seed, keep)):
        for tel in ((False, True) if k == 2 else (False,)):
            y = telephone(conv.audio) if tel else conv.audio
            turns = speech_turns(y)
            row: dict = {"speakers": k, "corpus": str(corpus), "telephone": tel, "seconds": len(y) / SAMPLE_RATE,
                         "der": {}, "scores": {}, "der_auto": {}}
            for name, (mean, P) in projections.items():
                enc.mean, enc.P = (None, None) if name == "none" else (mean, P)
                cfg = DiarizationConfig(**SETTINGS, auto_gain=None if gains is None else tuple(gains[name]))
                if k == 2:
                    row["der"][name] = der(conv.reference, diarize(y, speakers=2, encoder=enc, config=cfg,  # type: ignore[arg-type]
                                                                   turns=turns).spans())["der"]
                    if gains is not None:
                        row["der_auto"][name] = der(conv.reference, diarize(y, speakers="auto", encoder=enc,  # type: ignore[arg-type]
                                                                            config=cfg, turns=turns).spans())["der"]
                row["scores"][name], row.setdefault("nme", {})[name] = count_scores(enc, y, turns, cfg)
            rows.append(row)
            enc.cache.clear()
        print(f"{j + 1} {k}spk {corpus} {time.time() - t0:.0f}s " + " ".join(
            f"{p}={r['der'].get(p, float('nan')):.3f}" for r in rows[-1:] for p in projections), flush=True)
    return {"rows": rows}


def pooled(rows: list[dict], proj: str, tel: bool, key: str = "der") -> float:
    sel = [r for r in rows if r["speakers"] == 2 and r["telephone"] == tel and proj in r[key]]
    w = np.array([r["seconds"] for r in sel])
    return float(np.sum(w * np.array([r[key][proj] for r in sel])) / np.sum(w)) if sel else float("nan")


def report(step: str, tag: str, rows: list[dict], names: list[str], shrink: float, log: Path) -> None:
    """Print and log, per projection, pooled DER (clean, telephone) and the count with the best thresholds."""
    for n in names:
        gains, acc = choose_gains(rows, n)
        nme = f"\tNME count {np.mean([r['nme'][n] == r['speakers'] for r in rows]):.2f}" if rows and "nme" in rows[0] else ""
        line = (f"{step}\t{tag}\t{n}\tshrink={shrink}\tDER2 {pooled(rows, n, False):.3f}\ttel "
                f"{pooled(rows, n, True):.3f}\tcount {acc:.2f} gains {gains}{nme}")
        print(line)
        with log.open("a") as f:
            f.write(line + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("step", choices=["embed", "tune", "cv", "test"])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--conversations", type=int, default=20)
    ap.add_argument("--max-clips", type=int, default=40, help="clips per training speaker")
    ap.add_argument("--projections", nargs="+", default=["none", "wccn", "lda32", "lda48", "lda60"])
    ap.add_argument("--projection", default="lda48", help="test: the projection chosen on tune")
    ap.add_argument("--shrink", type=float, default=0.1)
    ap.add_argument("--hop", type=float, default=0.75, help="window hop (s) of the diarizer in tune/test")
    ap.add_argument("--speeds", type=float, nargs="+", default=[1.0], help="embed: speed-perturbation factors")
    ap.add_argument("--set", nargs="*", default=[], help="other DiarizationConfig fields, e.g. switch_penalty=2")
    ap.add_argument("--train", default="train", help="name of the training-window file (embed writes it)")
    args = ap.parse_args()
    data = Path(args.data)
    SETTINGS["hop_seconds"] = args.hop
    for kv in args.set:
        key, value = kv.split("=")
        SETTINGS[key] = value == "True" if value in ("True", "False") else (int(value) if value.isdigit() else float(value))
    tag = "_".join([f"{args.train}_{args.shrink}_{args.hop}", *args.set])
    if args.step == "embed":
        embed_training(data, max_clips=args.max_clips, name=args.train, speeds=tuple(args.speeds))
        return
    z = np.load(OUT / f"{args.train}.npz")
    X, spk, tel_rows = z["embeddings"], z["speakers"], z["telephone"]
    names = args.projections if args.step in ("tune", "cv") else sorted({"none", args.projection})
    projections = {n: fit_projection(n, X, spk, args.shrink) for n in names}
    log = Path("runs/exp/diarize_lda.tsv")
    if args.step == "cv":
        # two folds of the tune speakers of CREMA-D and RAVDESS: the projection learns on one fold
        # (plus SAVEE and TESS) and is scored on conversations of the other, so dims, shrink and the
        # auto thresholds are chosen on speakers the projection never saw (the "tune" step scores
        # the very speakers it was trained on, which flatters it)
        base = np.array([s.split("@")[0] for s in spk])  # a speed-perturbed copy goes with its speaker
        corpus_speakers = sorted({s for s in base if s.split("/")[0] in ("crema-d", "ravdess")})
        fold_of = {s: i % 2 for i, s in enumerate(corpus_speakers)}
        rows = []
        for fold in (0, 1):
            train = np.array([fold_of.get(s, -1) != fold for s in base])
            # "tel-<name>": learnt on the telephone windows only (for telephone conversations)
            projections = {n: fit_projection(n.removeprefix("tel-"), X[train & (tel_rows | (n == n.removeprefix("tel-")))],
                                             spk[train & (tel_rows | (n == n.removeprefix("tel-")))], args.shrink)
                           for n in names}
            res = evaluate(data, "tune", args.conversations // 2, seed=7 + fold, projections=projections,
                           keep=lambda s, fold=fold: fold_of.get(s) == fold)
            rows += res["rows"]
        (OUT / f"cv_{tag}.json").write_text(json.dumps({"rows": rows}))
        report("cv", tag, rows, names, args.shrink, log)
        return
    if args.step == "tune":
        res = evaluate(data, "tune", args.conversations, seed=7, projections=projections)
        (OUT / f"tune_{tag}.json").write_text(json.dumps(res))
        report("tune", tag, res["rows"], names, args.shrink, log)
        return
    tune = json.loads((OUT / f"tune_{tag}.json").read_text())
    gains = {n: choose_gains(tune["rows"], n)[0] for n in names}
    res = evaluate(data, "test", args.conversations, seed=0, projections=projections, gains=gains)
    (OUT / f"test_{args.projection}.json").write_text(json.dumps(res))
    for n in names:
        acc = np.mean([found(r["scores"][n], gains[n]) == r["speakers"] for r in res["rows"]])
        line = (f"test\t{n}\tshrink={args.shrink}\tDER2 {pooled(res['rows'], n, False):.3f}\ttel "
                f"{pooled(res['rows'], n, True):.3f}\tauto {pooled(res['rows'], n, False, 'der_auto'):.3f}\t"
                f"count {acc:.2f} gains {gains[n]}")
        print(line)
        with log.open("a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    assert MAX_SPEAKERS >= 4
    main()
