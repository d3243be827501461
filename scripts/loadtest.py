"""Bounded load test of the API on loopback: N requests at concurrency C, latency percentiles, errors,
and the server's resident memory before and after.

    # start a server (1 worker, the shipped model) and hammer /v1/predict with a 4 s clip
    python scripts/loadtest.py --spawn --requests 300 --concurrency 8

    # or against a server you started yourself (give its PID for the memory figures)
    python scripts/loadtest.py --url http://127.0.0.1:8000 --pid 12345

The clip is 4 s of espeak-ng speech (tone bursts and noise if espeak-ng is missing), sent as a
multipart upload. Memory is the RSS of the server process and its workers from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from emovox.audio import SAMPLE_RATE, load
from emovox.testing import rss_bytes, running_server

TEXT = "Hello, I am calling about my invoice. It is wrong again and I am not happy about it at all."


def make_clip(seconds: float = 4.0) -> bytes:
    """``seconds`` of speech-like audio as a 16 kHz PCM16 WAV."""
    n = int(seconds * SAMPLE_RATE)
    if shutil.which("espeak-ng"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "s.wav"
            subprocess.run(["espeak-ng", "-w", str(path), TEXT], check=True, capture_output=True)
            y = load(path)
    else:
        rng = np.random.default_rng(0)
        t = np.arange(n) / SAMPLE_RATE
        y = (0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > 0)
             + 0.02 * rng.standard_normal(n)).astype(np.float32)
    y = np.resize(y, n) if len(y) < n else y[:n]
    buf = io.BytesIO()
    sf.write(buf, y, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()


async def hammer(url: str, clip: bytes, *, endpoint: str, requests: int, concurrency: int,
                 headers: dict[str, str]) -> tuple[list[float], list[str], float]:
    """Send ``requests`` uploads with at most ``concurrency`` in flight; latencies (s), errors, wall time."""
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits, headers=headers) as client:
        async def worker() -> None:
            while True:
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t0 = time.perf_counter()
                try:
                    r = await client.post(f"/v1/{endpoint}", files={"file": ("clip.wav", clip, "audio/wav")})
                    if r.status_code != 200:
                        errors.append(f"HTTP {r.status_code}: {r.text[:120]}")
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                latencies.append(time.perf_counter() - t0)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    return latencies, errors, wall


def run(url: str, pid: int | None, args: argparse.Namespace) -> dict:
    clip = make_clip(args.seconds)
    headers = {"X-API-Key": os.environ["EMOVOX_API_KEY"]} if os.environ.get("EMOVOX_API_KEY") else {}
    kwargs = {"endpoint": args.endpoint, "concurrency": args.concurrency, "headers": headers}
    asyncio.run(hammer(url, clip, requests=args.warmup, **kwargs))
    rss_before = rss_bytes(pid) if pid else 0
    latencies: list[float] = []
    errors: list[str] = []
    wall = 0.0
    rss_rounds = []
    for _ in range(args.rounds):  # memory after each round: flat, or growing?
        lat, err, w = asyncio.run(hammer(url, clip, requests=args.requests, **kwargs))
        latencies += lat
        errors += err
        wall += w
        rss_rounds.append(round(rss_bytes(pid) / 2**20, 1) if pid else 0.0)
    rss_after = rss_bytes(pid) if pid else 0
    ms = np.array(latencies) * 1000
    total = args.requests * args.rounds
    return {
        "endpoint": f"/v1/{args.endpoint}", "clip_seconds": args.seconds, "requests": total,
        "concurrency": args.concurrency, "errors": len(errors), "error_samples": errors[:3],
        "rss_per_round_mb": rss_rounds,
        "p50_ms": round(float(np.percentile(ms, 50)), 1), "p90_ms": round(float(np.percentile(ms, 90)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1), "mean_ms": round(float(ms.mean()), 1),
        "req_per_s": round(total / wall, 1), "wall_s": round(wall, 2),
        "rss_before_mb": round(rss_before / 2**20, 1), "rss_after_mb": round(rss_after / 2**20, 1),
        "load_avg": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="base URL of a running server")
    where.add_argument("--spawn", action="store_true", help="start `emovox serve` on a free port for the test")
    p.add_argument("--pid", type=int, help="server PID (with --url) for the memory figures")
    p.add_argument("--workers", type=int, default=1, help="with --spawn: uvicorn workers (default 1)")
    p.add_argument("--model", help="with --spawn: model directory (default: the shipped model)")
    p.add_argument("--int8", action="store_true", help="with --spawn: the int8 model")
    p.add_argument("--endpoint", choices=("predict", "analyze"), default="predict")
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--rounds", type=int, default=1, help="repeat the measured requests; RSS after each round")
    p.add_argument("--seconds", type=float, default=4.0, help="clip length (default 4 s)")
    p.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = p.parse_args(argv)
    if args.spawn:
        serve_args = ["--workers", str(args.workers)] + (["--int8"] if args.int8 else [])
        env = {"EMOVOX_MODEL": args.model} if args.model else {}
        with running_server(env=env, args=serve_args) as server:
            result = run(server.url, server.process.pid, args)
        result["workers"] = args.workers
    else:
        result = run(args.url.rstrip("/"), args.pid, args)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['requests']} x POST {result['endpoint']} ({result['clip_seconds']:g} s clip), "
              f"concurrency {result['concurrency']}: p50 {result['p50_ms']} ms, p90 {result['p90_ms']} ms, "
              f"p99 {result['p99_ms']} ms, {result['req_per_s']} req/s, {result['errors']} errors; "
              f"server RSS {result['rss_before_mb']} -> {result['rss_after_mb']} MB "
              f"(after each round: {result['rss_per_round_mb']}) "
              f"(load average {result['load_avg'][0]} on {result['cpus']} CPUs)")
        for e in result["error_samples"]:
            print("  error:", e, file=sys.stderr)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
