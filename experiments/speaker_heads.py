"""Experiment (issue #12): the shipped model's two heads on the product encoder's own embeddings.

    python experiments/speaker_heads.py --embeddings runs/embed/base-l3/int8.onnx --protocols 1 2 3
    python experiments/speaker_heads.py --embeddings runs/embed/base-l3/int8.onnx --protocols 2 --curves

Embeddings come from experiments/embed_onnx.py (the int8 ONNX encoder the model directory ships,
chunked exactly as the predictor does). Per protocol fold, with C fixed at 0.01 (the value the
inner speaker-grouped CV of the benchmark recipe chose on every fold):

- ``global``: scaler + logistic regression on raw embeddings (a single clip);
- ``speaker``: the same on embeddings standardised by each speaker's statistics over all of that
  speaker's clips (training and test speakers alike; labels never used);
- ``mix``: the mean of the two heads' probabilities.

``--curves`` adds, on the test speakers of each fold, what a real call changes:

- ``short call k``: each test speaker's clips in random groups of k, each group standardised by
  its own statistics (a call with k segments of that speaker), k in 2, 3, 5, 10, 20;
- ``one emotion``: each test speaker's clips of one emotion only, standardised by their own
  statistics (a speaker who is angry, or sad, from the first word to the last): recall of that
  emotion, the method's worst case;
- ``skewed 70/30``: groups of 70 % one emotion and 30 % neutral.

Prints one line per figure and appends them to runs/exp/speaker_heads.tsv.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.preprocessing import StandardScaler

from emovox.evaluation.protocols import build_protocol
from emovox.features.normalise import standardise_by_group


def load_embeddings(prefix: str) -> dict[str, np.ndarray]:
    table: dict[str, np.ndarray] = {}
    for f in sorted(Path(prefix).parent.glob(Path(prefix).name + ".[0-9]*of[0-9]*.npz")):
        z = np.load(f)
        table.update(zip(z["paths"].tolist(), z["embeddings"], strict=True))
    return table


def fit(X: np.ndarray, y: np.ndarray, C: float):
    scaler = StandardScaler().fit(X)
    return scaler, LogisticRegression(C=C, max_iter=3000).fit(scaler.transform(X), y)


def proba(model, X: np.ndarray) -> np.ndarray:
    scaler, clf = model
    return clf.predict_proba(scaler.transform(X))


def standardise(X: np.ndarray) -> np.ndarray:
    return (X - X.mean(0)) / np.maximum(X.std(0), 1e-6)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--embeddings", required=True)
    ap.add_argument("--protocols", nargs="+", default=["1", "2", "3"])
    ap.add_argument("--C", type=float, default=0.01)
    ap.add_argument("--curves", action="store_true")
    ap.add_argument("--data", default="../shared/data")
    args = ap.parse_args()
    table = load_embeddings(args.embeddings)
    out = Path("runs/exp/speaker_heads.tsv")
    out.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)

    def report(protocol: str, name: str, scores: list[float]) -> None:
        print(f"P{protocol} {name:24s} {100 * np.mean(scores):5.1f}  [{' '.join(f'{100 * s:.1f}' for s in scores)}]",
              flush=True)
        with open(out, "a") as fh:
            fh.write("\t".join([Path(args.embeddings).name, protocol, name, f"{100 * np.mean(scores):.1f}",
                                *(f"{100 * s:.1f}" for s in scores)]) + "\n")

    for protocol in args.protocols:
        data = build_protocol(protocol, args.data)
        X = np.stack([table[str(it.path)] for it in data.items]).astype(np.float64)
        y = np.array([it.label for it in data.items])
        spk = np.array([it.speaker for it in data.items])
        Z = standardise_by_group(X, spk)
        res: dict[str, list[float]] = {}
        for fold in data.folds:
            t0 = time.time()
            tr, te = np.array(fold.train), np.array(fold.test)
            g, s = fit(X[tr], y[tr], args.C), fit(Z[tr], y[tr], args.C)
            classes = g[1].classes_
            pg, ps = proba(g, X[te]), proba(s, Z[te])
            for name, p in (("global", pg), ("speaker", ps), ("mix", (pg + ps) / 2)):
                res.setdefault(name, []).append(balanced_accuracy_score(y[te], classes[p.argmax(1)]))
            if args.curves:
                curves(res, X, y, spk, te, g, s, classes, rng)
            print(f"  {fold.name} {time.time() - t0:.0f} s", flush=True)
        for name, scores in res.items():
            report(protocol, name, scores)


def curves(res: dict, X, y, spk, te, g, s, classes, rng) -> None:
    """Short calls, one-emotion speakers and skewed calls on the test speakers of one fold."""
    def decide(rows: np.ndarray) -> np.ndarray:
        return classes[proba(s, standardise(X[rows])).argmax(1)]

    for k in (2, 3, 5, 10, 20):
        pred, true = [], []
        for sp in np.unique(spk[te]):
            rows = rng.permutation(te[spk[te] == sp])
            for i in range(0, len(rows) - k + 1, k):
                pred.extend(decide(rows[i : i + k]))
                true.extend(y[rows[i : i + k]])
        res.setdefault(f"short call k={k}", []).append(balanced_accuracy_score(true, pred))
    # one emotion per speaker: recall of that emotion, speaker head vs global head
    hit_s, hit_g, n = 0, 0, 0
    per_emotion: dict[str, list[int]] = {}
    for sp in np.unique(spk[te]):
        for e in np.unique(y[te]):
            rows = te[(spk[te] == sp) & (y[te] == e)]
            if len(rows) < 5:
                continue
            ok_s = decide(rows) == e
            ok_g = classes[proba(g, X[rows]).argmax(1)] == e
            hit_s, hit_g, n = hit_s + ok_s.sum(), hit_g + ok_g.sum(), n + len(rows)
            per_emotion.setdefault(e, [0, 0, 0])
            counts = per_emotion[e]
            counts[0], counts[1], counts[2] = counts[0] + ok_s.sum(), counts[1] + ok_g.sum(), counts[2] + len(rows)
    res.setdefault("one emotion: speaker head", []).append(hit_s / max(n, 1))
    res.setdefault("one emotion: global head", []).append(hit_g / max(n, 1))
    for e, (a, b, m) in per_emotion.items():
        res.setdefault(f"one emotion {e}: speaker", []).append(a / m)
        res.setdefault(f"one emotion {e}: global", []).append(b / m)
    # 70 % one emotion, 30 % neutral, groups of 10
    pred, true = [], []
    for sp in np.unique(spk[te]):
        neutral = te[(spk[te] == sp) & (y[te] == "neutral")]
        for e in np.unique(y[te]):
            if e == "neutral":
                continue
            main = te[(spk[te] == sp) & (y[te] == e)]
            if len(main) < 7 or len(neutral) < 3:
                continue
            rows = np.concatenate([rng.choice(main, 7, replace=False), rng.choice(neutral, 3, replace=False)])
            pred.extend(decide(rows))
            true.extend(y[rows])
    res.setdefault("skewed 70/30 (10 clips)", []).append(balanced_accuracy_score(true, pred))


if __name__ == "__main__":
    main()
