"""Experiment (issue #5): pretrained speaker-encoder embeddings as emotion features.

Computes resemblyzer's partial-utterance embeddings (GE2E speaker encoder, Apache-2.0, weights in
its wheel) for every clip of the four corpora, pooled as mean + std (512-d), and caches them in
``runs/exp/resemblyzer.npz``. Not part of the package: resemblyzer installs only with
``pip install "setuptools<81" && pip install --no-deps resemblyzer==0.1.4 webrtcvad-wheels``.

    python experiments/embeddings.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

CACHE = Path("runs/exp/resemblyzer.npz")


def load_cache(path: Path = CACHE) -> dict[str, np.ndarray]:
    """Embeddings by audio path (empty when none were computed)."""
    if not path.is_file():
        return {}
    z = np.load(path)
    return dict(zip(z["paths"].tolist(), z["X"], strict=True))


def embed(wave: np.ndarray, encoder) -> np.ndarray:
    """mean + std of the 1.6 s partial embeddings of one 16 kHz clip (512 values)."""
    from resemblyzer import preprocess_wav

    wav = preprocess_wav(wave, source_sr=16000)
    if len(wav) < 4000:  # the VAD removed almost everything: use the raw clip
        wav = wave.astype(np.float32)
    _, partials, _ = encoder.embed_utterance(wav, return_partials=True, rate=1.3, min_coverage=0.5)
    return np.concatenate([partials.mean(0), partials.std(0)]).astype(np.float32)


def main() -> None:
    import torch
    from resemblyzer import VoiceEncoder

    from emovox.audio import load
    from emovox.corpora import load_all

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default="../shared/data")
    args = ap.parse_args()
    torch.set_num_threads(1)
    encoder = VoiceEncoder("cpu", verbose=False)
    items = [it for c in load_all(args.data, ["ravdess", "tess", "savee", "crema-d"]).values() for it in c.items]
    done = load_cache()
    todo = [it for it in items if it.path not in done]
    print(f"{len(items)} clips, {len(todo)} to embed", flush=True)
    t0 = time.time()
    for k, it in enumerate(todo, 1):
        done[it.path] = embed(load(it.path), encoder)
        if k % 500 == 0 or k == len(todo):
            CACHE.parent.mkdir(parents=True, exist_ok=True)
            paths = sorted(done)
            tmp = CACHE.with_name("tmp.npz")
            np.savez(tmp, paths=np.array(paths), X=np.stack([done[p] for p in paths]))
            tmp.replace(CACHE)
            print(f"{k}/{len(todo)} in {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
