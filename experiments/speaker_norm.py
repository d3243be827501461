"""Experiment (issue #12): does normalising each speaker's embeddings by that speaker's own
statistics close the cross-corpus gap of the frozen Whisper probe?

    python experiments/speaker_norm.py --protocol 3 --set whisper_base_l3 --C 0.01

Variants of the same logistic regression (StandardScaler, fixed C: the value the inner
speaker-grouped CV chose on every fold of the benchmark), on the cached frozen embeddings:

- ``global``: the benchmark's recipe (``whisper_base_l3_logreg``) with C fixed;
- ``speaker``: every clip's vector minus its speaker's mean, divided by its speaker's std, over
  all of that speaker's clips (:func:`emovox.features.normalise.standardise_by_group`; the recipe
  ``whisper_base_l3_logreg_spknorm`` runs it through ``emovox benchmark`` with C tuned by inner CV) (training and test speakers alike, labels never used). In a product
  this is a call's or a meeting's own speech turns per speaker; on a single clip it does not apply;
- ``corpus``: the same with the corpus in place of the speaker (how far a recording set's own
  statistics carry);
- ``speaker_neutral4``: the speaker's statistics weighted 4:1 towards their neutral clips (a call
  that is mostly calm: the corpora's speakers act every emotion equally often, real ones do not);
- ``speaker_angry4``: weighted 4:1 towards the speaker's angry clips (a speaker angry most of the
  time: the failure mode of the method, which pulls such a speaker towards the middle);
- ``speaker_10clips``: the statistics from 10 random clips of the speaker (a short recording);
- ``test_neutral4`` / ``test_angry4``: training speakers normalised by all their clips, test
  speakers by the skewed statistics above (a model trained once on the balanced corpora, then
  used on a calm, or an angry, speaker: the deployment case).

``--variants`` picks some of them (default: all).

Prints UA per held-out fold and the mean; appends them to ``runs/exp/speaker_norm.tsv``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from emovox.evaluation.protocols import build_protocol
from emovox.features import extract_many
from emovox.features.normalise import standardise_by_group


def group_normalise(X: np.ndarray, groups: list[str], *, weights: np.ndarray | None = None,
                    max_rows: int | None = None, seed: int = 0) -> np.ndarray:
    """:func:`standardise_by_group`, the statistics from at most ``max_rows`` random rows per group."""
    w = np.ones(len(X)) if weights is None else np.asarray(weights, dtype=float).copy()
    if max_rows is not None:
        rng = np.random.default_rng(seed)
        keys = np.array(groups)
        for g in np.unique(keys):
            rows = np.flatnonzero(keys == g)
            if len(rows) > max_rows:
                w[rng.permutation(rows)[max_rows:]] = 0.0  # left out of the statistics, still standardised
    return standardise_by_group(X, groups, weights=w)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--protocol", default="3")
    ap.add_argument("--set", default="whisper_base_l3")
    ap.add_argument("--C", type=float, default=0.01)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--variants", nargs="*", help="global, speaker, corpus, speaker_neutral4, speaker_angry4, "
                                                  "speaker_10clips, test_neutral4, test_angry4 (default: all)")
    args = ap.parse_args()
    data = build_protocol(args.protocol, args.data)
    X = extract_many(data.items, set=args.set, progress=False)
    variants = {"global": X,
                "speaker": group_normalise(X, [it.speaker for it in data.items]),
                "corpus": group_normalise(X, [it.corpus for it in data.items]),
                "speaker_neutral4": group_normalise(X, [it.speaker for it in data.items], weights=np.array(
                    [4.0 if it.label == "neutral" else 1.0 for it in data.items])),
                "speaker_angry4": group_normalise(X, [it.speaker for it in data.items], weights=np.array(
                    [4.0 if it.label == "angry" else 1.0 for it in data.items])),
                "speaker_10clips": group_normalise(X, [it.speaker for it in data.items], max_rows=10)}
    # (train matrix, test matrix): the skewed statistics on the test speakers only
    pairs = {name: (Z, Z) for name, Z in variants.items()}
    pairs["test_neutral4"] = (variants["speaker"], variants["speaker_neutral4"])
    pairs["test_angry4"] = (variants["speaker"], variants["speaker_angry4"])
    if args.variants:
        pairs = {k: v for k, v in pairs.items() if k in args.variants}
    out = Path("runs/exp/speaker_norm.tsv")
    out.parent.mkdir(parents=True, exist_ok=True)
    for name, (Z_train, Z_test) in pairs.items():
        scores = []
        for fold in data.folds:
            t0 = time.time()
            train, test = list(fold.train), list(fold.test)
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=args.C, max_iter=3000))
            clf.fit(Z_train[train], [data.items[i].label for i in train])
            ua = balanced_accuracy_score([data.items[i].label for i in test], clf.predict(Z_test[test]))
            scores.append(ua)
            print(f"{name:8s} {fold.name:18s} UA {100 * ua:5.1f}  ({time.time() - t0:.0f} s)", flush=True)
        print(f"{name:8s} mean UA {100 * np.mean(scores):.1f}", flush=True)
        with open(out, "a") as fh:
            fh.write("\t".join([args.protocol, args.set, str(args.C), name, f"{100 * np.mean(scores):.1f}",
                                *(f"{100 * s:.1f}" for s in scores)]) + "\n")


if __name__ == "__main__":
    main()
