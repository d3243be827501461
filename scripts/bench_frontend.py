"""Benchmark the numpy log-mel frontend against librosa, and the utterance feature sets.

Run on one core, e.g.::

    taskset -c 1 .venv/bin/python scripts/bench_frontend.py --hours 1 --clips 300

Prints Markdown: real-time factors (audio seconds per compute second) of
``emovox.features.melspectrogram`` and ``librosa.feature.melspectrogram`` on the same hour of
speech (RAVDESS clips end to end, else synthetic noise and tones), their max relative error, and
the seconds per hour of audio of each feature set of ``emovox.features.extract`` on real clips
(decoding excluded).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

SR = 16000


def corpus_clips(data: Path, n: int, *, seed: int = 0) -> list[str]:
    """``n`` clips drawn evenly from every corpus found under ``data`` (sorted for repeatability)."""
    from emovox.corpora import load_all

    items = [i for c in load_all(data).values() for i in c.items]
    rng = np.random.default_rng(seed)
    return sorted(items[k].path for k in rng.choice(len(items), size=min(n, len(items)), replace=False))


def hour_of_audio(data: Path, seconds: float) -> tuple[np.ndarray, str]:
    from emovox.audio import load
    from emovox.corpora import load_corpus

    need = int(seconds * SR)
    if (data / "ravdess").is_dir():
        parts, have = [], 0
        items = load_corpus("ravdess", data / "ravdess").items
        while have < need:
            for item in items:
                y = load(item.path)
                parts.append(y)
                have += len(y)
                if have >= need:
                    break
        return np.concatenate(parts)[:need], "RAVDESS speech clips end to end"
    rng = np.random.default_rng(0)
    t = np.arange(need) / SR
    y = 0.1 * rng.standard_normal(need) + 0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 0.5 * t) > 0)
    return y.astype(np.float32), "synthetic noise + gated 220 Hz tone"


def best_of(fn, repeat: int) -> tuple[tuple[float, float], object]:
    """Best (CPU seconds, wall seconds) of ``repeat`` runs, and the last result.

    CPU time of this process is the figure to compare on a shared machine: other jobs on the
    same core stretch the wall time, not the CPU time.
    """
    best, out = (float("inf"), float("inf")), None
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        best = min(best, (time.process_time() - c0, time.perf_counter() - t0))
    return best, out


def bench_frontend(y: np.ndarray, repeat: int) -> list[str]:
    import librosa

    from emovox.features import LogMelConfig, melspectrogram

    c = LogMelConfig()
    dur = len(y) / SR
    (ours_s, ours_w), ours = best_of(lambda: melspectrogram(y, config=c), repeat)
    (ref_s, ref_w), ref = best_of(lambda: librosa.feature.melspectrogram(
        y=y, sr=c.sr, n_fft=c.n_fft, win_length=c.win_length, hop_length=c.hop_length, n_mels=c.n_mels,
        center=True, pad_mode="constant"), max(1, repeat - 1))
    diff = np.abs(ours - ref)
    rel = float(np.max(diff / (ref + 1e-6 * ref.max())))
    raw = float(np.max(diff / np.maximum(ref, np.finfo(np.float32).tiny)))
    return [
        "| frontend | CPU s for %.2f h | wall s | real-time factor (CPU) |" % (dur / 3600),
        "|---|---:|---:|---:|",
        f"| emovox.features.melspectrogram (numpy/scipy) | {ours_s:.2f} | {ours_w:.2f} | {dur / ours_s:,.0f}x |",
        f"| librosa.feature.melspectrogram | {ref_s:.2f} | {ref_w:.2f} | {dur / ref_s:,.0f}x |",
        "",
        f"Max relative error vs librosa over the {ours.shape[1]:,} frames: {rel:.2e} "
        f"(|a-b| / (|b| + 1e-6 max|b|), i.e. every bin within 60 dB of the peak); "
        f"{raw:.2e} counting every bin, however quiet.",
    ]


def bench_sets(paths: list[str], sets: list[str]) -> list[str]:
    from emovox.audio import load
    from emovox.features import extract

    waves = [load(p) for p in paths]
    hours = sum(len(w) for w in waves) / SR / 3600
    rows = [f"| set | dims | CPU s for {len(waves)} clips ({hours * 60:.1f} min) | wall s | CPU s per hour of audio |",
            "|---|---:|---:|---:|---:|"]
    for s in sets:
        dim = len(extract(waves[0], set=s))  # warm-up: numba JIT, opensmile start
        c0, t0 = time.process_time(), time.perf_counter()
        for w in waves:
            extract(w, set=s)
        dt, wall = time.process_time() - c0, time.perf_counter() - t0
        rows.append(f"| {s} | {dim} | {dt:.1f} | {wall:.1f} | {dt / hours:,.0f} |")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.environ.get("EMOVOX_DATA", "../shared/data"))
    p.add_argument("--hours", type=float, default=1.0, help="audio for the frontend benchmark")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--clips", type=int, default=300, help="real clips for the feature-set timing (0: skip)")
    p.add_argument("--sets", default="logmel_stats,handcrafted,handcrafted_full,pitch,egemaps")
    args = p.parse_args()
    data = Path(args.data)
    cores = sorted(os.sched_getaffinity(0))
    y, what = hour_of_audio(data, args.hours * 3600)
    print(f"CPU cores available to this process: {cores}; audio: {what}\n")
    print("\n".join(bench_frontend(y, args.repeat)))
    if args.clips and data.is_dir():
        print()
        print("\n".join(bench_sets(corpus_clips(data, args.clips), args.sets.split(","))))


if __name__ == "__main__":
    main()
