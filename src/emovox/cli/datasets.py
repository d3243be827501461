"""``emovox datasets``: what the corpora under a data folder hold."""

from __future__ import annotations

import argparse
import json
import os

from ..corpora import default_data_dir, inventory, load_all
from ..labels import EMOTIONS

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=default_data_dir(), help="folder holding the corpora (default: $EMOVOX_DATA or ../shared/data)")
    p.add_argument("--corpus", action="append", help="only this corpus (repeatable)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    corpora = load_all(args.data, args.corpus)
    invs = [inventory(c) for c in corpora.values()]
    if args.json:
        print(json.dumps([{"corpus": i.corpus, "clips": i.clips, "speakers": i.speakers, "hours": round(i.hours, 3),
                           "labels": i.labels, "genders": i.genders,
                           "skipped": [{"path": s.path, "reason": s.reason} for s in i.skipped]} for i in invs], indent=2))
        return 0
    labels = [e for e in EMOTIONS if any(e in i.labels for i in invs)]
    short = {"neutral": "neu", "calm": "calm", "happy": "hap", "sad": "sad", "angry": "ang",
             "fearful": "fea", "disgust": "dis", "surprised": "sur"}
    head = f"{'corpus':<9} {'clips':>6} {'speakers':>8} {'hours':>6}  " + " ".join(f"{short[e]:>5}" for e in labels)
    print(f"data: {os.path.abspath(args.data)}")
    print(head)
    print("-" * len(head))
    for i in invs:
        print(f"{i.corpus:<9} {i.clips:>6} {i.speakers:>8} {i.hours:>6.2f}  " + " ".join(f"{i.labels.get(e, 0):>5}" for e in labels))
    print("-" * len(head))
    print(f"{'total':<9} {sum(i.clips for i in invs):>6} {sum(i.speakers for i in invs):>8} {sum(i.hours for i in invs):>6.2f}")
    skipped = [s for i in invs for s in i.skipped]
    if skipped:
        print(f"\n{len(skipped)} file(s) could not be parsed:")
        for s in skipped:
            print(f"  {s.path}: {s.reason}")
    return 0
