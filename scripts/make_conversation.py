"""Write a synthetic mono conversation from corpus speakers, with its reference turns, and score an
analysis of it.

Usage::

    python scripts/make_conversation.py call_mono.wav --corpus ravdess --seconds 40 --seed 3
    emovox analyze call_mono.wav --speakers 2 --json > call_mono.json
    python scripts/make_conversation.py call_mono.wav --score call_mono.json

The clips are research data: the WAV is for trying ``--speakers`` locally, never for committing.
Speakers come from the ``test`` half of the corpus (the half no diarization setting was chosen on).
The reference turns (``<name>.reference.csv``: start, end, speaker) and the clips with their
emotions (``<name>.clips.csv``: start, end, speaker, emotion) sit beside the WAV.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from emovox.audio import SAMPLE_RATE
from emovox.evaluation.diarization import corpus_speaker_pools, der, make_conversation


def write(out: Path, *, data: str, corpus: str, speakers: int, seconds: float, seed: int, telephone: bool) -> None:
    conv = make_conversation(corpus_speaker_pools(data, corpus, "test"), n_speakers=speakers, seconds=seconds,
                             rng=np.random.default_rng(seed), telephone=telephone)
    sf.write(out, conv.audio, SAMPLE_RATE)
    with open(out.with_suffix(".reference.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["start", "end", "speaker"])
        w.writerows([f"{a:.3f}", f"{b:.3f}", who] for a, b, who in conv.reference)
    with open(out.with_suffix(".clips.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["start", "end", "speaker", "emotion"])
        w.writerows([f"{a:.3f}", f"{b:.3f}", who, item.label] for a, b, who, item in conv.clips)
    print(f"{out}: {len(conv.audio) / SAMPLE_RATE:.1f} s, speakers {', '.join(conv.speakers)}; "
          f"reference in {out.with_suffix('.reference.csv')}")


def score(out: Path, analysis: Path) -> None:
    with open(out.with_suffix(".reference.csv")) as f:
        ref = [(float(r["start"]), float(r["end"]), r["speaker"]) for r in csv.DictReader(f)]
    segments = json.loads(analysis.read_text())["segments"]
    hyp = [(s["start"], s["end"], s["channel"]) for s in segments if s["emotion"] != "no_speech"]
    d = der(ref, hyp)
    print(f"DER {100 * d['der']:.1f}% (missed {100 * d['missed']:.1f}%, false alarm {100 * d['false_alarm']:.1f}%, "
          f"confusion {100 * d['confusion']:.1f}%); {', '.join(f'{h} = {r}' for h, r in d['mapping'].items())}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path, help="the WAV to write (or to score, with --score)")
    ap.add_argument("--data", default=os.environ.get("EMOVOX_DATA", "../shared/data"))
    ap.add_argument("--corpus", default="ravdess", choices=["ravdess", "crema-d", "savee", "tess"])
    ap.add_argument("--speakers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--telephone", action="store_true", help="through an 8 kHz mu-law telephone channel")
    ap.add_argument("--score", type=Path, help="an `emovox analyze --json` output to score against the reference")
    args = ap.parse_args()
    if args.score:
        score(args.out, args.score)
    else:
        write(args.out, data=args.data, corpus=args.corpus, speakers=args.speakers, seconds=args.seconds,
              seed=args.seed, telephone=args.telephone)


if __name__ == "__main__":
    main()
