"""Experiment (issue #12): embeddings of every corpus clip through the product's ONNX encoder.

    python experiments/embed_onnx.py --export runs/embed/base-l3            # int8 + float encoders
    python experiments/embed_onnx.py --onnx runs/embed/base-l3/int8.onnx --shard 0/2 &
    python experiments/embed_onnx.py --onnx runs/embed/base-l3/int8.onnx --shard 1/2

Each clip goes the way :class:`emovox.inference.Predictor` sends it (equal chunks of at most 4 s,
each through ``whisper_logmel`` on its own, chunk embeddings averaged), so a head fitted on these
arrays sees exactly what the shipped model computes. Writes ``<onnx>.<r>of<n>.npz`` (paths,
embeddings); resumable by shard (a finished shard is skipped).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from emovox.audio import load
from emovox.corpora import load_all
from emovox.features.whisper.onnx_encoder import clip_inputs


def clip_embedding(sess, y: np.ndarray) -> np.ndarray:
    """The clip's embedding as the predictor computes it: chunk inputs through the graph, averaged."""
    return np.mean([sess.run(None, {"logmel": m[None].astype(np.float32)})[0][0] for m in clip_inputs(y)], axis=0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--export", help="directory: write float.onnx and int8.onnx of base cut after --blocks")
    ap.add_argument("--encoder", default="base")
    ap.add_argument("--blocks", type=int, default=3)
    ap.add_argument("--onnx")
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--shard", default="0/1")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--augment", type=int, default=None,
                    help="seed of an augmented copy: recipes/whisper_ser.toml's [augment], the chain drawn per "
                         "speaker (one channel per speaker, as in a call), its strengths per clip")
    args = ap.parse_args()
    if args.export:
        from emovox.models.onnx_export import quantize_int8
        from emovox.models.whisper_embed import PooledEncoder, export_encoder_onnx

        out = Path(args.export)
        out.mkdir(parents=True, exist_ok=True)
        diff = export_encoder_onnx(PooledEncoder.pretrained(args.encoder, args.blocks), out / "float.onnx")
        quantize_int8(out / "float.onnx", out / "int8.onnx", op_types=("MatMul", "Gemm"))
        print(f"exported, rel diff {diff:.2e}; sizes", {p.name: p.stat().st_size for p in out.glob("*.onnx")})
        return
    from emovox.models.onnx_export import onnx_session

    sess = onnx_session(args.onnx, threads=1)
    r, n = (int(v) for v in args.shard.split("/"))
    tag = "" if args.augment is None else f".aug{args.augment}"
    dest = Path(f"{args.onnx}{tag}.{r}of{n}.npz")
    if dest.is_file():
        print(f"{dest} exists")
        return
    items = [it for c in load_all(args.data).values() for it in c.items][r::n][: args.limit]
    t0 = time.time()
    E = np.zeros((len(items), sess.get_outputs()[0].shape[-1] or 1024), np.float32)
    aug = None
    if args.augment is not None:
        from emovox.audio.augment import Augmenter
        from emovox.evaluation.recipe import load_recipe

        aug = Augmenter(load_recipe("whisper_ser")["augment"])
    for i, it in enumerate(items):
        y = load(it.path)
        if aug is not None:
            import hashlib

            spk = int(hashlib.sha1(it.speaker.encode()).hexdigest()[:12], 16)
            plan = aug.plan(np.random.default_rng([args.augment, spk]))
            clip = int(hashlib.sha1(np.ascontiguousarray(y, np.float32).tobytes()).hexdigest()[:12], 16)
            y = aug.apply(y, np.random.default_rng([args.augment, clip]), plan=plan)
        E[i] = clip_embedding(sess, y)
        if i % 500 == 0:
            print(f"{i}/{len(items)} {time.time() - t0:.0f}s", flush=True)
    tmp = dest.with_suffix(".tmp.npz")
    np.savez(tmp, paths=np.array([str(it.path) for it in items]), embeddings=E)
    tmp.replace(dest)
    print(f"done {len(items)} clips in {time.time() - t0:.0f}s -> {dest}", flush=True)


if __name__ == "__main__":
    main()
