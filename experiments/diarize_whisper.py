"""Experiment (issue 15): the frozen Whisper encoder as the speaker encoder of the diarizer.

    python experiments/diarize_whisper.py --conversations 40 [--layer-blocks 3]

The same benchmark as ``emovox benchmark --diarization`` (same seed, same conversations of the
test speakers), with resemblyzer's voice encoder replaced by the product's int8 Whisper graph
(``emovox.features.whisper.onnx_encoder``: mean and std over time after k blocks) on each window.
The windows' embeddings of one recording are standardised per dimension over that recording
(Whisper's hidden states have a few channels hundreds of times larger than the rest), then the
diarizer normalises them to unit length as it does resemblyzer's. Prints the summary as JSON.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import emovox.inference.speaker as speaker_mod
from emovox.evaluation.diarization import run_benchmark
from emovox.features.whisper.frontend import whisper_logmel
from emovox.features.whisper.onnx_encoder import encoder_graph


class WhisperSpeakerEncoder:
    def __init__(self, blocks: int):
        from emovox._onnx import onnx_session

        self.session = onnx_session(encoder_graph("base", blocks), threads=1)

    def embed_windows(self, y: np.ndarray, windows, *, batch: int = 64) -> np.ndarray:
        if not windows:
            return np.zeros((0, 1024), np.float32)
        E = np.stack([self.session.run(None, {"logmel": whisper_logmel(np.asarray(y[a:b], np.float32))[None]})[0][0]
                      for a, b in windows])
        return ((E - E.mean(0)) / np.maximum(E.std(0), 1e-6)).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--conversations", type=int, default=40)
    ap.add_argument("--blocks", type=int, default=3)
    ap.add_argument("--data", default="../shared/data")
    args = ap.parse_args()
    enc = WhisperSpeakerEncoder(args.blocks)
    speaker_mod.SpeakerEncoder.load = classmethod(lambda cls, *a, **k: enc)  # type: ignore[method-assign]
    t0 = time.time()
    res = run_benchmark(args.data, conversations=args.conversations, progress=lambda m: print(m, flush=True))
    print(json.dumps(res["summary"], indent=1, default=str))
    print(f"{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
