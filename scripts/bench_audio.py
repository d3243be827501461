"""Benchmark the streaming audio reader: peak memory and speed on a 1-hour file.

Usage: python scripts/bench_audio.py [--minutes 60] [--rate 44100] [--channels 2]

Writes a synthetic recording (noise bursts, so FLAC cannot compress it to nothing), then streams
it in a fresh subprocess and prints that process's peak resident memory. Figures are recorded in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

CHILD = """
import resource, sys, time
import numpy as np
from emovox.audio import stream
t = time.perf_counter(); n = 0; peak = 0.0
for block in stream(sys.argv[1], block_seconds=float(sys.argv[2]), channels=sys.argv[3]):
    n += block.shape[-1]; peak = max(peak, float(np.abs(block).max()))
dt = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{n / 16000 / 60:.1f} min of output audio in {dt:.2f} s; peak RSS {rss:.0f} MB")
"""


def write_recording(path: Path, minutes: float, rate: int, channels: int) -> None:
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", samplerate=rate, channels=channels, format="FLAC") as f:
        for _ in range(int(minutes)):
            block = (0.05 * rng.standard_normal((rate * 60, channels))).astype(np.float32)
            f.write(block)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--rate", type=int, default=44100)
    ap.add_argument("--channels", type=int, default=2)
    ap.add_argument("--block-seconds", type=float, default=60)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.flac"
        t = time.perf_counter()
        write_recording(path, args.minutes, args.rate, args.channels)
        print(f"wrote {args.minutes:.0f} min, {args.rate} Hz, {args.channels} ch FLAC ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")
        for mode in ("mix", "split"):
            out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(args.block_seconds), mode],
                                 capture_output=True, text=True, check=True)
            print(f"stream(channels={mode!r}, block_seconds={args.block_seconds:g}): {out.stdout.strip()}")


if __name__ == "__main__":
    main()
