"""Experiment (issue #12): fill the frozen-Whisper caches for the four corpora in one encoder pass.

    python experiments/whisper_embed.py --encoder base --frames-layer 2 --shard 0/2 &   # two processes of
    python experiments/whisper_embed.py --encoder base --frames-layer 2 --shard 1/2     # one thread: ~9 min
    python experiments/whisper_embed.py --encoder base --frames-layer 2 --augment 1     # an augmented copy

With ``--augment SEED`` each clip first goes through the product's training augmentation
(recipes/whisper_ser.toml's ``[augment]``: noise, speed, reverb, telephone, gain); only the frames
are kept, in the cache of ``emovox.features.whisper.frames`` (``$EMOVOX_CACHE/whisper-frames/``).

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
from emovox.features.whisper.frames import frames_cache_dir, frozen_frames


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--encoder", default="base")
    ap.add_argument("--frames-layer", type=int, default=None)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--shard", default="0/1", help="r/n: this process takes items i with i %% n == r")
    ap.add_argument("--augment", type=int, default=None, help="seed of an augmented copy (frames only)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    r, n = (int(v) for v in args.shard.split("/"))
    items = [it for c in load_all(args.data).values() for it in c.items][r::n]
    frames_dir = frames_cache_dir(args.encoder, int(args.frames_layer or 2))
    t0 = time.time()
    if args.augment is not None:
        augment(items, args, frames_dir.with_name(f"{frames_dir.name}-aug{args.augment}"), r, t0)
        return
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


def augment(items: list, args: argparse.Namespace, out_dir: Path, shard: int, t0: float) -> None:
    """One augmented copy of each clip through the frozen part, into the cache the recipes read.

    ``emovox.features.whisper.frames.frozen_frames`` draws each clip's copy from a generator seeded
    by (copy seed, clip digest), so this pass and a training run that builds the copy itself agree.
    """
    from emovox.evaluation.recipe import load_recipe

    recipe = load_recipe("whisper_ser")
    for s in range(0, len(items), 500):
        frozen_frames([it.path for it in items[s : s + 500]], encoder=args.encoder, layer=args.frames_layer,
                      augment=recipe["augment"], seed=args.augment)
        print(f"{min(s + 500, len(items))}/{len(items)} {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
