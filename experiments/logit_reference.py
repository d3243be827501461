"""Experiment (issue 12): a speaker's neutral reference in the *output* space of any classifier.

    python experiments/logit_reference.py runs/benchmark/whisper_ser_6k__p2/predictions.csv

No retraining: the input is a protocol run's out-of-fold predictions (each clip predicted by the
fold model that never heard its speaker). For one speaker's clips ("a call"), with l = log p:
the reference r is the mean of l weighted by P(neutral); the neutral profile n is the mean of l over
the neutral clips of the *other* folds' speakers (out-of-sample predictions too); each clip's
log-probabilities are shifted by -(r - n) (what the speaker's neutral voice adds beyond a typical
neutral clip), re-weighed once, then argmax. A speaker whose P(neutral) sums to less than 2 keeps
the model's own answer. Same scenarios as experiments/neutral_reference.py.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score

MIN_WEIGHT = 2.0


def adapt(L: np.ndarray, neutral: int, profile: np.ndarray, alpha: float = 1.0) -> tuple[np.ndarray, bool]:
    w = np.exp(L[:, neutral])
    if w.sum() < MIN_WEIGHT:
        return L, False
    for _ in range(2):
        r = w @ L / w.sum()
        A = L - alpha * (r - profile)
        A = A - np.log(np.exp(A).sum(1, keepdims=True))
        w = np.exp(A[:, neutral])
    return A, True


def main() -> None:
    df = pd.read_csv(sys.argv[1])
    cols = [c for c in df.columns if c.startswith("p_")]
    labels = np.array([c[2:] for c in cols])
    neutral = int(np.flatnonzero(labels == "neutral")[0])
    L = np.log(np.clip(df[cols].to_numpy(float), 1e-6, 1))
    y = df["true"].to_numpy()
    spk = df["speaker"].to_numpy()
    fold = df["fold"].to_numpy()
    rng = np.random.default_rng(0)
    res: dict[str, list[float]] = {}
    for f in np.unique(fold):
        te = np.flatnonzero(fold == f)
        others = np.flatnonzero((fold != f) & (y == "neutral"))
        profile = L[others].mean(0)
        groups: dict[str, list[np.ndarray]] = {"balanced": [], "mostly neutral 7+3": [], "skewed 7+3": [], "one emotion": []}
        for sp in np.unique(spk[te]):
            mine = te[spk[te] == sp]
            groups["balanced"].append(mine)
            neu = mine[y[mine] == "neutral"]
            for e in np.unique(y[mine]):
                if e == "neutral":
                    continue
                rows = mine[y[mine] == e]
                if len(rows) >= 5:
                    groups["one emotion"].append(rows)
                if len(rows) >= 7 and len(neu) >= 7:
                    groups["mostly neutral 7+3"].append(np.concatenate([rng.choice(neu, 7, replace=False), rng.choice(rows, 3, replace=False)]))
                    groups["skewed 7+3"].append(np.concatenate([rng.choice(rows, 7, replace=False), rng.choice(neu, 3, replace=False)]))
        for name, gs in groups.items():
            truth, base, adapted = [], [], []
            for rows in gs:
                A, _ = adapt(L[rows], neutral, profile)
                truth.extend(y[rows])
                base.extend(labels[L[rows].argmax(1)])
                adapted.extend(labels[A.argmax(1)])
            if name == "one emotion":
                res.setdefault(f"{name} (recall): model", []).append(np.mean(np.array(base) == np.array(truth)))
                res.setdefault(f"{name} (recall): adapted", []).append(np.mean(np.array(adapted) == np.array(truth)))
            else:
                res.setdefault(f"{name}: model", []).append(balanced_accuracy_score(truth, base))
                res.setdefault(f"{name}: adapted", []).append(balanced_accuracy_score(truth, adapted))
    for k, v in res.items():
        print(f"{k:36s} {100 * np.mean(v):5.1f}  [{' '.join(f'{100 * s:.1f}' for s in v)}]")


if __name__ == "__main__":
    main()
