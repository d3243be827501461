"""Benchmark ``emovox batch`` on Spark: throughput at local[1] / local[2] and the overhead of Spark
against the plain loop (``analyze()`` per file in one process, what ``emovox analyze`` runs).

    nice -n 10 .venv/bin/python scripts/bench_spark.py --calls 20 --copies 10 --seconds 300

builds ``calls x copies`` call recordings of ``seconds`` each (corpus clips end to end with short
pauses; each distinct call is hard-linked ``copies`` times, so decoding stays real but the disk
cost stays small) under ``--workdir`` (never in the repository), then times:

- ``loop``: one process, ``Predictor.load(threads=1)`` then ``analyze(path)`` per file;
- ``cli``: ``emovox analyze FILE --json`` as one process per file, on ``--cli-files`` files;
- ``local[N]``: :func:`emovox.batch.run_batch` on ``local[N]`` in a fresh process (own JVM), after
  a warm-up batch of one file per core (Python worker start, imports, model load: a one-off cost
  per executor, reported apart).

Throughput is audio hours per wall minute of the processing (JVM and worker start apart);
CPU load averages are printed next to each figure since the machine may be shared. Prints Markdown
and writes ``bench_spark.json`` into the workdir.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

SR = 16000


def make_calls(workdir: Path, *, data: str, calls: int, copies: int, seconds: float, seed: int = 0) -> list[Path]:
    """``calls * copies`` FLAC files of ``seconds`` of corpus speech with pauses (cached by parameters)."""
    import soundfile as sf

    from emovox.audio import load
    from emovox.corpora import load_all

    folder = workdir / "calls"
    spec = {"calls": calls, "copies": copies, "seconds": seconds, "seed": seed}
    marker = folder / "spec.json"
    if marker.is_file() and json.loads(marker.read_text()) == spec:
        return sorted(folder.glob("*.flac"))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    items = [i for c in load_all(data).values() for i in c.items]
    rng = np.random.default_rng(seed)
    for k in range(calls):
        parts, n = [], 0
        while n < seconds * SR:
            y = load(items[rng.integers(len(items))].path)
            gap = (rng.normal(0, 0.002, int(rng.uniform(0.2, 1.0) * SR))).astype(np.float32)
            parts += [y, gap]
            n += len(y) + len(gap)
        first = folder / f"call{k:03d}_c00_2024-03-{1 + k % 28:02d}T{8 + k % 10:02d}-{k % 60:02d}-00.flac"
        sf.write(first, np.concatenate(parts)[: int(seconds * SR)], SR)
        for c in range(1, copies):
            os.link(first, folder / first.name.replace("_c00_", f"_c{c:02d}_"))
    marker.write_text(json.dumps(spec))
    return sorted(folder.glob("*.flac"))


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat (zeros where unavailable)."""
    try:
        with open("/proc/stat") as fh:
            vals = [int(v) for v in fh.readline().split()[1:]]
    except OSError:
        return 0, 0
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return sum(vals) - idle, sum(vals)


def _tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by ``root`` and every live descendant (JVM, workers)."""
    parent, cpu = {}, {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo.extend(c for c, p in parent.items() if p == pid)
    return total


def _busy(before: tuple[int, int]) -> float:
    """Share of the machine's CPU time that was busy (anyone's) since ``before``."""
    after = _cpu_ticks()
    total = after[1] - before[1]
    return round((after[0] - before[0]) / total, 3) if total else float("nan")


def bench_loop(files: list[Path], model: str | None) -> dict:
    from emovox.inference import Predictor, analyze

    predictor = Predictor.load(model, threads=1)
    analyze(files[0], predictor=predictor)  # warm-up (imports, first allocation)
    load0, ticks, t0, c0 = _load(), _cpu_ticks(), time.perf_counter(), time.process_time()
    audio = sum(analyze(f, predictor=predictor).duration for f in files)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"name": "loop", "files": len(files), "audio_s": audio, "wall_s": wall, "cpu_s": cpu, "task_s": wall,
            "machine_busy": _busy(ticks), "load_before": load0, "load_after": _load()}


def bench_cli(files: list[Path], model: str | None) -> dict:
    cmd = [sys.executable, "-m", "emovox", "analyze", "--json"] + (["--model", model] if model else [])
    load0, ticks, t0 = _load(), _cpu_ticks(), time.perf_counter()
    audio = 0.0
    for f in files:
        out = subprocess.run([*cmd, str(f)], capture_output=True, text=True, check=True).stdout
        audio += json.loads(out)["duration"]
    return {"name": "cli", "files": len(files), "audio_s": audio, "wall_s": time.perf_counter() - t0,
            "machine_busy": _busy(ticks), "load_before": load0, "load_after": _load()}


def bench_spark(folder: Path, out: Path, master: str, model: str | None) -> dict:
    """``run_batch`` on ``master`` in a fresh process (own JVM), after one warm-up task per core."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, __file__, "--child", master, "--workdir", str(folder), "--out", str(out)]
    cmd += ["--model", model] if model else []
    load0 = _load()
    res = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
    shutil.rmtree(out, ignore_errors=True)
    return {**res, "name": master, "load_before": load0, "load_after": _load()}


def child(master: str, folder: str, out: str, model: str | None) -> None:
    """One measured run (the body of :func:`bench_spark`); prints a JSON line."""
    from emovox.batch.runner import run_batch
    from emovox.batch.spark import spark_session
    from emovox.batch.store import BatchStore

    t0 = time.perf_counter()
    spark = spark_session(master)
    startup = time.perf_counter() - t0
    slots = spark.sparkContext.defaultParallelism
    t1 = time.perf_counter()  # warm-up: one file per core through the same job, into a scratch folder
    run_batch(sorted(Path(folder).glob("*.flac"))[0].parent / "*_c00_*.flac" if slots > 1 else
              sorted(Path(folder).glob("*.flac"))[0], f"{out}-warmup", model=model, spark=spark,
              files_per_part=slots, partitions=slots, show_progress=False)
    shutil.rmtree(f"{out}-warmup", ignore_errors=True)
    warm = time.perf_counter() - t1
    ticks, cpu0 = _cpu_ticks(), _tree_cpu(os.getpid())
    res = run_batch(folder, out, model=model, spark=spark, show_progress=False)
    busy, cpu = _busy(ticks), _tree_cpu(os.getpid()) - cpu0
    spark.stop()
    task = float(BatchStore(out).read("files")["seconds"].sum())
    print(json.dumps({"files": res.ok + res.errors, "errors": res.errors, "audio_s": res.audio_seconds,
                      "wall_s": res.seconds, "startup_s": startup, "warmup_s": warm, "parts": res.parts,
                      "task_s": task, "machine_busy": busy, "cpu_s": cpu}))


def _rate(r: dict) -> float:
    return r["audio_s"] / 3600 / (r["wall_s"] / 60)


def report(rows: list[dict]) -> str:
    lines = ["| run | files | audio h | processing s | audio h / min | x real time | JVM start s | worker warm-up s "
             "| tasks running (mean) | CPU s used | audio s per CPU s | machine CPU busy | load avg before / after |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['files']} | {r['audio_s'] / 3600:.2f} | {r['wall_s']:.1f} | {_rate(r):.2f} | "
                     f"{r['audio_s'] / r['wall_s']:.0f} | {r.get('startup_s', float('nan')):.1f} | {r.get('warmup_s', float('nan')):.1f} | "
                     f"{r.get('task_s', float('nan')) / r['wall_s']:.2f} | {r.get('cpu_s', float('nan')):.1f} | "
                     f"{r['audio_s'] / r.get('cpu_s', float('nan')):.0f} | {100 * r.get('machine_busy', float('nan')):.0f}% | "
                     f"{r['load_before']} / {r['load_after']} |")
    by = {r["name"]: r for r in rows}
    if "local[1]" in by and "local[2]" in by:
        lines.append(f"\nScaling local[2] / local[1]: {_rate(by['local[2]']) / _rate(by['local[1]']):.2f}x")
    if "local[1]" in by and "local[2]" in by:
        r1, r2 = by["local[1]"], by["local[2]"]
        eff = (r2["audio_s"] / r2["cpu_s"]) / (r1["audio_s"] / r1["cpu_s"])
        lines.append(f"On free cores (CPU-time model: tasks running x CPU efficiency vs local[1]): "
                     f"{(r2['task_s'] / r2['wall_s']) / (r1['task_s'] / r1['wall_s']) * eff:.2f}x")
    if "loop" in by and "local[1]" in by and by["local[1]"].get("cpu_s"):
        lines.append(f"CPU per audio second, Spark local[1] vs the loop: "
                     f"{100 * (by['local[1]']['cpu_s'] / by['loop']['cpu_s'] - 1):+.0f}% (JVM, Arrow, driver commits)")
    if "loop" in by and "local[1]" in by:
        over = by["local[1]"]["wall_s"] / (by["loop"]["wall_s"] * by["local[1]"]["audio_s"] / by["loop"]["audio_s"]) - 1
        lines.append(f"Spark local[1] processing vs the plain loop: {100 * over:+.0f}% wall time "
                     f"(plus {by['local[1]']['startup_s']:.0f} s to start the JVM and "
                     f"{by['local[1]']['warmup_s']:.0f} s to start its Python worker)")
    if "loop" in by:
        lines.append(f"The loop got {100 * by['loop']['cpu_s'] / by['loop']['wall_s']:.0f}% of one core "
                     f"(CPU time / wall time): the rest went to other processes")
    if "cli" in by:
        lines.append(f"`emovox analyze` as one process per file: {by['cli']['wall_s'] / by['cli']['files']:.2f} s per file")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=os.environ.get("EMOVOX_DATA", "../shared/data"))
    p.add_argument("--workdir", default="/tmp/emovox-bench-spark")
    p.add_argument("--calls", type=int, default=20)
    p.add_argument("--copies", type=int, default=10)
    p.add_argument("--seconds", type=float, default=300.0)
    p.add_argument("--masters", nargs="+", default=["local[1]", "local[2]"])
    p.add_argument("--cli-files", type=int, default=10)
    p.add_argument("--model", default=None, help="model directory (default: the shipped model)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args.workdir, args.out, args.model)
        return 0
    work = Path(args.workdir)
    files = make_calls(work, data=args.data, calls=args.calls, copies=args.copies, seconds=args.seconds)
    print(f"{len(files)} files of {args.seconds:.0f} s in {work / 'calls'}; {os.cpu_count()} CPUs; "
          f"load {_load()}", flush=True)
    rows = [bench_loop(files, args.model)]
    print(rows[-1], flush=True)
    if args.cli_files:
        rows.append(bench_cli(files[: args.cli_files], args.model))
        print(rows[-1], flush=True)
    for master in args.masters:
        rows.append(bench_spark(work / "calls", work / "out", master, args.model))
        print(rows[-1], flush=True)
    (work / "bench_spark.json").write_text(json.dumps(rows, indent=1))
    print(report(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
