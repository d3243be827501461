"""Scale figures of ``emovox batch``: throughput and driver peak memory as the input count grows.

    nice -n 19 .venv/bin/python scripts/bench_batch_scale.py --files 1000 --masters 'local[1]' 'local[2]'
    nice -n 19 .venv/bin/python scripts/bench_batch_scale.py --files 1000 10000 --masters 'local[2]' \\
        --old-src /tmp/emovox-old/src            # the old design (driver commits) from a git worktree

generates ``max(--files)`` short recordings (1-3 s: tones, noise and chirps at 16 kHz, a few
corrupt files among them, 1 in 500) under ``--workdir`` and, for each input count and master,
runs ``emovox batch`` as its own process (own JVM) into a fresh output folder, sampling every
0.2 s the resident memory of the driver's Python process and of its JVM (``VmHWM`` from /proc:
the peak). The model is ``--model`` (default: a toy model of ``emovox.testing``, so that the
figures measure the engine rather than the model). ``--cluster`` adds a standalone cluster of two
one-core workers started from the pyspark install. Prints Markdown and writes ``scale.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

SR = 16000


def make_inputs(folder: Path, n: int) -> None:
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    have = len(list(folder.iterdir()))
    rng = np.random.default_rng(0)
    for i in range(have, n):
        path = folder / f"call_{i:06d}_2024-{1 + i % 12:02d}-{1 + i % 28:02d}T10-00-00.wav"
        if i % 500 == 499:
            path.write_bytes(b"RIFF\x00\x00WAVEcorrupt")
            continue
        t = np.arange(int(SR * rng.uniform(1, 3))) / SR
        kind = i % 3
        if kind == 0:
            y = 0.2 * np.sin(2 * np.pi * rng.uniform(100, 300) * t)
        elif kind == 1:
            y = rng.normal(0, 0.05, len(t))
        else:
            y = 0.2 * np.sin(2 * np.pi * (100 + 200 * t) * t)
        sf.write(path, y.astype(np.float32), SR, subtype="PCM_16")


def _status(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def run_one(inputs: str, out: Path, *, master: str, model: str, extra: list[str], pythonpath: str | None) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    cmd = [sys.executable, "-m", "emovox", "batch", inputs, "--out", str(out), "--master", master, "--model", model,
           "--json", *extra]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    py_peak = jvm_peak = 0
    jvm = None
    while proc.poll() is None:
        py_peak = max(py_peak, _status(proc.pid, "VmHWM"))
        if jvm is None:
            jvm = next((c for c in _children(proc.pid) if "java" in Path(f"/proc/{c}/cmdline").read_bytes().decode(errors="ignore")), None)
        if jvm is not None:
            jvm_peak = max(jvm_peak, _status(jvm, "VmHWM"))
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{stderr.decode()[-3000:]}")
    res = json.loads(stdout)
    return {**res, "wall_seconds": round(wall, 1), "driver_python_peak_mb": round(py_peak / 2**20),
            "driver_jvm_peak_mb": round(jvm_peak / 2**20)}


def start_cluster(work: Path) -> tuple[str, list[subprocess.Popen]]:
    import pyspark

    home = Path(pyspark.__file__).parent
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_NO_DAEMONIZE": "1"}

    def port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    p, ui = port(), port()
    cls = str(home / "bin" / "spark-class")
    procs = [subprocess.Popen([cls, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(p),
                               "--webui-port", str(ui)], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    url = f"spark://127.0.0.1:{p}"
    for i in range(2):
        procs.append(subprocess.Popen([cls, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores",
                                       "1", "--memory", "2G", "--webui-port", str(port()), "--work-dir",
                                       str(work / f"w{i}"), url], env=env, start_new_session=True,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    for _ in range(180):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=2) as r:
                if json.load(r).get("aliveworkers", 0) == 2:
                    return url, procs
        except OSError:
            pass
        time.sleep(1)
    raise SystemExit("the standalone cluster did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, nargs="+", default=[1000])
    ap.add_argument("--masters", nargs="+", default=["local[1]", "local[2]"])
    ap.add_argument("--cluster", action="store_true", help="also a standalone cluster of two one-core workers")
    ap.add_argument("--model", default=None, help="model directory (default: a toy model)")
    ap.add_argument("--old-src", default=None, help="src/ of the old design (PYTHONPATH), measured beside")
    ap.add_argument("--workdir", default="/tmp/emovox-bench-scale")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    model = args.model
    if model is None:
        from emovox.testing import make_toy_model

        model = str(make_toy_model(work / "toy"))
    make_inputs(work / "calls", max(args.files))
    all_files = sorted((work / "calls").iterdir())
    masters = list(args.masters)
    procs: list[subprocess.Popen] = []
    if args.cluster:
        url, procs = start_cluster(work / "cluster")
        masters.append(url)
    rows = []
    try:
        for n in args.files:
            manifest = work / f"inputs-{n}.csv"
            manifest.write_text("path\n" + "".join(f"{p}\n" for p in all_files[:n]))
            for master in masters:
                designs = [("new", None)] + ([("old", args.old_src)] if args.old_src else [])
                for design, src in designs:
                    r = run_one(str(manifest), work / "out", master=master, model=model, extra=[], pythonpath=src)
                    load = os.getloadavg()[0]
                    row = {"design": design, "master": "cluster 2x1 core" if master.startswith("spark:") else master,
                           "files": n, "load": round(load, 2), **r}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
    (work / "scale.json").write_text(json.dumps(rows, indent=2))
    print("\n| design | master | files | ok | errors | audio h | processing s | audio h / min | wall s "
          "| driver Python peak MB | driver JVM peak MB | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['design']} | {r['master']} | {r['files']} | {r['ok']} | {r['errors']} | "
              f"{r['audio_seconds'] / 3600:.2f} | {r['seconds']:.1f} | {r['audio_hours_per_minute']:.2f} | "
              f"{r['wall_seconds']} | {r['driver_python_peak_mb']} | {r['driver_jvm_peak_mb']} | {r['load']} |")


if __name__ == "__main__":
    main()
