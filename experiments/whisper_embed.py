"""Experiment (issue #12): fill the frozen-Whisper caches for the four corpora in one encoder pass.

    python experiments/whisper_embed.py --encoder base --frames-layer 2    # ~30 min on 2 cores; resumable

Per clip: every layer's mean/std statistics (emovox.features.whisper.embeddings' cache, read by
the feature sets ``whisper_<encoder>_l<k>``), and optionally one layer's frame-level hidden
states as float16 (``runs/frames/<encoder>-l<k>/<sha1>.npy``), the input of the fine-tuned part.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import numpy as np
import torch

from emovox.audio import load
from emovox.corpora import load_all
from emovox.features.whisper.embeddings import embedding_cache_dir, layer_states, layer_stats


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--encoder", default="base")
    ap.add_argument("--frames-layer", type=int, default=None)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--shard", default="0/1", help="r/n: this process takes items i with i %% n == r")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    r, n = (int(v) for v in args.shard.split("/"))
    items = [it for c in load_all(args.data).values() for it in c.items][r::n]
    frames_dir = Path("runs/frames") / f"{args.encoder}-l{args.frames_layer}"
    t0 = time.time()
    for i, it in enumerate(items):
        y = np.ascontiguousarray(load(it.path), dtype=np.float32)
        digest = hashlib.sha1(y.tobytes()).hexdigest()
        stats_done = (embedding_cache_dir(args.encoder) / digest[:2] / f"{digest}.npy").is_file()
        fpath = frames_dir / f"{digest}.npy"
        frames_done = args.frames_layer is None or fpath.is_file()
        if not (stats_done and frames_done):
            states = layer_states(y, encoder=args.encoder)
            layer_stats(y, encoder=args.encoder, states=states)
            if args.frames_layer is not None:
                fpath.parent.mkdir(parents=True, exist_ok=True)
                tmp = fpath.with_suffix(".tmp.npy")
                np.save(tmp, states[args.frames_layer].astype(np.float16))
                tmp.replace(fpath)
        if i % 500 == 0:
            print(f"{i}/{len(items)} {time.time() - t0:.0f}s", flush=True)
    print(f"done {len(items)} clips in {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
