"""Experiment (issue #12): a speaker's statistics from their *neutral* speech (iterative feature
normalisation, Busso et al. 2011), against all-clip speaker statistics, when a call is not balanced.

    python experiments/neutral_reference.py --embeddings runs/embed/base-l3/int8.onnx --protocols 2 1 3

experiments/speaker_heads.py showed the catch of standardising a speaker by all their segments: the
corpora's speakers act every emotion equally often, a caller does not. A speaker angry throughout is
pulled to the middle (recall of that emotion 12-18 %), and a call of 70 % one emotion and 30 % neutral
scores 38-40 % UA. Here the reference is the speaker's neutral voice instead:

- training: each training speaker's embeddings minus the mean of their neutral clips (labels known);
  a scaler + logistic regression on that (the ``neutral`` head);
- a call: the global head's P(neutral) weighs each segment into the speaker's reference mean; then
  (``--iterations`` times) the neutral head re-weighs them. A speaker whose weights sum to less than
  ``--min-weight`` (no neutral speech found) goes through the global head.

Scenarios on each fold's test speakers (groups of that speaker's clips): all clips (balanced);
``mostly neutral`` (7 neutral + 3 of one emotion, the common call); ``skewed`` (7 of one emotion + 3
neutral); ``one emotion`` (only one emotion; recall); ``short call k`` (k random clips). Heads:
``global`` (raw), ``speaker`` (all-clip standardisation), ``neutral`` (this). Appends to
runs/exp/neutral_reference.tsv.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.preprocessing import StandardScaler
from speaker_heads import load_embeddings  # experiments/ is on sys.path when run as a script

from emovox.evaluation.protocols import build_protocol
from emovox.features.normalise import standardise_by_group

NEUTRAL = ("neutral", "calm")


class Head:
    def __init__(self, X: np.ndarray, y: np.ndarray, C: float):
        self.scaler = StandardScaler().fit(X)
        self.clf = LogisticRegression(C=C, max_iter=3000).fit(self.scaler.transform(X), y)
        self.classes = self.clf.classes_
        self.neutral = np.isin(self.classes, NEUTRAL)

    def proba(self, X: np.ndarray) -> np.ndarray:
        return self.clf.predict_proba(self.scaler.transform(X))


def neutral_reference(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    return (w[:, None] * X).sum(0) / w.sum()


class Decider:
    def __init__(self, g: Head, s: Head, n: Head, iterations: int, min_weight: float):
        self.g, self.s, self.n, self.iterations, self.min_weight = g, s, n, iterations, min_weight

    def __call__(self, X: np.ndarray) -> dict[str, np.ndarray]:
        pg = self.g.proba(X)
        Z = (X - X.mean(0)) / np.maximum(X.std(0), 1e-6)
        out = {"global": self.g.classes[pg.argmax(1)], "speaker": self.s.classes[self.s.proba(Z).argmax(1)]}
        w = pg[:, self.g.neutral].sum(1)
        if w.sum() < self.min_weight:
            out["neutral"] = out["global"]
            return out
        for _ in range(self.iterations + 1):
            pn = self.n.proba(X - neutral_reference(X, w))
            w = pn[:, self.n.neutral].sum(1)
        out["neutral"] = self.n.classes[pn.argmax(1)]
        return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--embeddings", required=True, help="prefix of embed_onnx.py's shards; several joined by ','"
                    " are concatenated per clip (two encoders side by side)")
    ap.add_argument("--protocols", nargs="+", default=["2", "1", "3"])
    ap.add_argument("--C", type=float, default=0.01)
    ap.add_argument("--iterations", type=int, default=1)
    ap.add_argument("--min-weight", type=float, default=2.0)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--augmented", help="embeddings of an augmented copy (experiments/embed_onnx.py --augment)")
    ap.add_argument("--train-augmented", action="store_true",
                    help="add the augmented copy to training, as speakers of their own")
    ap.add_argument("--test-augmented", action="store_true", help="test on the augmented copies instead of clean")
    args = ap.parse_args()
    table = load_joined(args.embeddings)
    augmented = load_joined(args.augmented) if args.augmented else None
    out = Path("runs/exp/neutral_reference.tsv")
    out.parent.mkdir(parents=True, exist_ok=True)
    for protocol in args.protocols:
        data = build_protocol(protocol, args.data)
        X = np.stack([table[str(it.path)] for it in data.items]).astype(np.float64)
        y = np.array([it.label for it in data.items])
        spk = np.array([it.speaker for it in data.items])
        XA = None if augmented is None else np.stack([augmented[str(it.path)] for it in data.items]).astype(np.float64)
        res: dict[str, list[float]] = {}
        rng = np.random.default_rng(0)
        for fold in data.folds:
            t0 = time.time()
            tr, te = np.array(fold.train), np.array(fold.test)
            Xtr, ytr, str_ = X[tr], y[tr], spk[tr]
            if XA is not None and args.train_augmented:  # the augmented copy as speakers of their own (one channel per speaker)
                Xtr = np.concatenate([Xtr, XA[tr]])
                ytr = np.concatenate([ytr, y[tr]])
                str_ = np.concatenate([str_, np.char.add(spk[tr].astype(str), "#aug")])
            # training speakers referenced by their own neutral clips (speakers without any: all clips)
            R = Xtr.copy()
            for sp in np.unique(str_):
                rows = str_ == sp
                ref = rows & np.isin(ytr, NEUTRAL)
                R[rows] -= Xtr[ref if ref.any() else rows].mean(0)
            decide = Decider(Head(Xtr, ytr, args.C),
                             Head(standardise_by_group(Xtr, str_), ytr, args.C),
                             Head(R, ytr, args.C), args.iterations, args.min_weight)
            Xte = XA if (args.test_augmented and XA is not None) else X
            scenarios(res, decide, Xte, y, spk, te, rng)
            print(f"  {fold.name} {time.time() - t0:.0f} s", flush=True)
        for name, scores in res.items():
            line = f"P{protocol} {name:34s} {100 * np.mean(scores):5.1f}  [{' '.join(f'{100 * s:.1f}' for s in scores)}]"
            print(line, flush=True)
            with open(out, "a") as fh:
                fh.write("\t".join([",".join(str(Path(p).relative_to("runs/embed")) if p.startswith("runs/embed") else p
                                             for p in args.embeddings.split(",")) + ("+aug" if args.train_augmented else "")
                                    + (" test-aug" if args.test_augmented else ""), protocol,
                                    str(args.iterations), str(args.min_weight),
                                    name, f"{100 * np.mean(scores):.1f}"]) + "\n")


def load_joined(spec: str) -> dict[str, np.ndarray]:
    """Embeddings of one prefix, or of several (``a,b``) concatenated per clip."""
    tables = [load_embeddings(p) for p in spec.split(",")]
    return {k: np.concatenate([t[k] for t in tables]) for k in tables[0] if all(k in t for t in tables)}


def scenarios(res: dict, decide: Decider, X, y, spk, te, rng) -> None:
    groups: dict[str, list[np.ndarray]] = {"balanced": [], "mostly neutral 7+3": [], "skewed 7+3 neutral": [],
                                           "short call k=5": [], "short call k=10": []}
    one: list[np.ndarray] = []
    for sp in np.unique(spk[te]):
        mine = te[spk[te] == sp]
        groups["balanced"].append(mine)
        neutral = mine[np.isin(y[mine], NEUTRAL)]
        for k in (5, 10):
            perm = rng.permutation(mine)
            groups[f"short call k={k}"] += [perm[i : i + k] for i in range(0, len(perm) - k + 1, k)]
        for e in np.unique(y[mine]):
            if e in NEUTRAL:
                continue
            rows = mine[y[mine] == e]
            if len(rows) >= 5:
                one.append(rows)
            if len(rows) >= 7 and len(neutral) >= 7:
                groups["mostly neutral 7+3"].append(np.concatenate([rng.choice(neutral, 7, replace=False),
                                                                    rng.choice(rows, 3, replace=False)]))
                groups["skewed 7+3 neutral"].append(np.concatenate([rng.choice(rows, 7, replace=False),
                                                                    rng.choice(neutral, 3, replace=False)]))
    for scenario, gs in groups.items():
        preds: dict[str, list] = {}
        truth: list = []
        for rows in gs:
            for head, p in decide(X[rows]).items():
                preds.setdefault(head, []).extend(p)
            truth.extend(y[rows])
        for head, p in preds.items():
            res.setdefault(f"{scenario}: {head}", []).append(balanced_accuracy_score(truth, p))
    hits: dict[str, list[int]] = {}
    for rows in one:
        for head, p in decide(X[rows]).items():
            h = hits.setdefault(head, [0, 0])
            h[0], h[1] = h[0] + int((p == y[rows]).sum()), h[1] + len(rows)
    for head, (a, n) in hits.items():
        res.setdefault(f"one emotion (recall): {head}", []).append(a / n)


if __name__ == "__main__":
    main()
