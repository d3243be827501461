"""Train the diarizer's speaker-discriminant projection (LDA) on the corpora's ``tune`` speakers.

Run once, by a maintainer, to rebuild the shipped ``assets/speaker/projection.npz``::

    python -m emovox.evaluation.speaker_projection --data ../shared/data

Why: on acted speech an actor's anger moves their resemblyzer embedding about as far as a change
of actor, so most of the diarizer's error was speaker *confusion* (docs/experiments.md). The
classical back-end of speaker recognition (LDA, as in i-vector / x-vector systems) is a linear map
learnt on many speakers that keeps the directions along which speakers differ and shrinks those
along which one speaker's windows vary (emotion, words, channel).

Training windows: every clip (at most ``max_clips`` per speaker) of the ``tune`` half of CREMA-D's
and RAVDESS's speakers (:func:`~emovox.evaluation.diarization.speaker_pools`; the benchmark's
``test`` half is never touched) and all of SAVEE and TESS (never in a benchmark conversation),
edge silence trimmed, at speeds 0.9, 1 and 1.1 (each speed of a speaker its own class), clean and
through the telephone channel, cut into the diarizer's windows. The dimension, the shrinkage, the
speeds and the ``auto`` thresholds that go with the projection were chosen on ``tune``
conversations of speakers the projection did not learn from (``experiments/diarize_lda.py cv``:
two folds of the ``tune`` speakers); the thresholds are passed in with ``--auto-gain``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from .._numeric import unit_rows
from ..audio import SAMPLE_RATE, load, resample
from ..audio.augment import telephone
from .diarization import corpus_speaker_pools, trim_edges

__all__ = ["fit_lda", "training_windows", "write_projection", "TRAINING_CORPORA"]

# speed-perturbation factors (1.0: the clips as recorded)
SPEEDS: tuple[float, ...] = (0.9, 1.0, 1.1)
# (corpus, half of its speakers): the halves the benchmark never scores
TRAINING_CORPORA: tuple[tuple[str, Literal["tune", "all"]], ...] = (
    ("crema-d", "tune"), ("ravdess", "tune"), ("savee", "all"), ("tess", "all"))


def fit_lda(embeddings: np.ndarray, speakers: np.ndarray, *, dims: int = 48,
            shrink: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Linear discriminant analysis of unit embeddings by speaker.

    Parameters
    ----------
    embeddings : np.ndarray [shape=(n, d)]
    speakers : np.ndarray [shape=(n,)], one label per row (one class per speaker)
    dims : int, the output dimension; beyond the number of speakers - 1 the extra directions
        carry no between-speaker variance (they only whiten the within-speaker scatter)
    shrink : float in [0, 1], how far the within-speaker scatter is pulled towards its mean
        variance (a regulariser: 53 speakers do not pin down 256 x 256 covariances)

    Returns
    -------
    mean : np.ndarray [shape=(d,)], float32
    matrix : np.ndarray [shape=(dims, d)], float32; a window maps to ``matrix @ (unit(x) - mean)``

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.repeat(np.eye(4, 8), 10, axis=0) + 0.1 * rng.normal(size=(40, 8))
    >>> mean, matrix = fit_lda(x, np.repeat(np.arange(4), 10), dims=3)
    >>> matrix.shape
    (3, 8)
    """
    x = unit_rows(np.asarray(embeddings, dtype=np.float64))
    speakers = np.asarray(speakers)
    classes = np.unique(speakers)
    if not 1 <= dims <= x.shape[1] or len(x) != len(speakers):
        raise ValueError(f"fit_lda needs one label per row and dims in 1..{x.shape[1]}, got dims={dims}")
    mean = x.mean(axis=0)
    means = np.stack([x[speakers == c].mean(axis=0) for c in classes])
    counts = np.array([np.sum(speakers == c) for c in classes])
    within = sum(np.cov((x[speakers == c] - means[i]).T, bias=True) * counts[i]
                 for i, c in enumerate(classes)) / len(x)
    within = (1 - shrink) * within + shrink * np.trace(within) / len(within) * np.eye(len(within))
    vals, vecs = np.linalg.eigh(within)
    whiten = vecs @ np.diag(vals**-0.5) @ vecs.T
    between = ((means - mean).T * counts) @ (means - mean) / len(x)
    bvals, bvecs = np.linalg.eigh(whiten @ between @ whiten)
    top = bvecs[:, np.argsort(bvals)[::-1][:dims]]
    return mean.astype(np.float32), (top.T @ whiten).astype(np.float32)


def training_windows(data_dir: str | Path, *, max_clips: int = 40, speeds: Sequence[float] = SPEEDS, encoder=None,
                     seed: int = 0, progress: Callable[[str], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Raw voice-encoder embeddings ``[n, 256]`` of the training windows and their speaker labels.

    Each speed factor other than 1 plays a speaker's clips that much faster (resampled, so pitch
    and formants move too) and labels them as a new speaker ``<speaker>@<factor>``: speed
    perturbation, as x-vector recipes use it, gives the between-speaker scatter more classes than
    the corpora have speakers.
    """
    from ..inference.diarization import DiarizationConfig, embedding_windows
    from ..inference.speaker import SpeakerEncoder

    encoder = encoder or SpeakerEncoder.load(projection=False)
    config = DiarizationConfig()
    rng = np.random.default_rng(seed)
    pools = {f"{corpus}/{s}": items for corpus, part in TRAINING_CORPORA
             for s, items in corpus_speaker_pools(data_dir, corpus, part).items()}
    embs, labels = [], []
    for j, (speaker, items) in enumerate(sorted(pools.items())):
        pick = sorted(rng.choice(len(items), min(max_clips, len(items)), replace=False))
        for i in pick:
            clean = trim_edges(load(items[i].path))
            for factor in speeds:
                y = clean if factor == 1.0 else resample(clean, SAMPLE_RATE, int(round(SAMPLE_RATE / factor)))
                for z in (y, telephone(y)):
                    windows = embedding_windows([(0, len(z))], config)
                    if windows:
                        embs.append(encoder.embed_windows(z, windows))
                        labels += [speaker if factor == 1.0 else f"{speaker}@{factor:g}"] * len(windows)
        if progress:
            progress(f"{j + 1}/{len(pools)} {speaker}: {len(labels)} windows")
    return np.concatenate(embs), np.array(labels)


def write_projection(out_dir: str | Path, mean: np.ndarray, matrix: np.ndarray, *, auto_gain: tuple[float, ...],
                     trained_on: dict) -> Path:
    """Write ``projection.npz`` beside the voice encoder and record it (SHA-256, ``auto`` thresholds,
    training data) in ``speaker.json``."""
    out = Path(out_dir)
    path = out / "projection.npz"
    tmp = out / "projection.tmp.npz"
    np.savez(tmp, mean=mean.astype(np.float32), matrix=matrix.astype(np.float32))
    tmp.replace(path)
    meta_path = out / "speaker.json"
    meta = json.loads(meta_path.read_text())
    meta["sha256"][path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    meta["projection"] = {"file": path.name, "kind": "lda", "dims": int(matrix.shape[0]),
                          "auto_gain": [float(g) for g in auto_gain], "trained_on": trained_on}
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    from ..inference.speaker import SPEAKER_DIR

    ap = argparse.ArgumentParser(prog="python -m emovox.evaluation.speaker_projection", description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data", help="folder holding crema-d/, ravdess/, savee/, tess/")
    ap.add_argument("--out", default=str(SPEAKER_DIR))
    ap.add_argument("--dims", type=int, default=48)
    # dims, shrink and the auto thresholds: chosen by two-fold cross-validation over the tune speakers
    # (`python experiments/diarize_lda.py cv`; docs/experiments.md), never on the benchmark's test speakers
    ap.add_argument("--shrink", type=float, default=0.3)
    ap.add_argument("--max-clips", type=int, default=40, help="clips per training speaker")
    ap.add_argument("--speeds", type=float, nargs="+", default=list(SPEEDS), help="speed-perturbation factors")
    ap.add_argument("--auto-gain", type=float, nargs="+", default=[0.0425, 0.06],
                    help="auto thresholds for k=2, k>=3 (chosen on held-out tune speakers: experiments/diarize_lda.py cv)")
    args = ap.parse_args(argv)
    x, labels = training_windows(args.data, max_clips=args.max_clips, speeds=args.speeds, progress=print)
    mean, matrix = fit_lda(x, labels, dims=args.dims, shrink=args.shrink)
    trained_on = {"corpora": [f"{c} ({part} speakers)" for c, part in TRAINING_CORPORA],
                  "speakers": int(len({s.split("@")[0] for s in labels})), "classes": int(len(np.unique(labels))),
                  "speeds": [float(f) for f in args.speeds], "windows": int(len(labels)),
                  "max_clips": args.max_clips, "shrink": args.shrink, "channels": ["clean", "telephone"]}
    print(write_projection(args.out, mean, matrix, auto_gain=tuple(args.auto_gain), trained_on=trained_on))


if __name__ == "__main__":
    main()
