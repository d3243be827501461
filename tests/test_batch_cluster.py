"""emovox batch on a real Spark standalone cluster: a master and two workers (one core each) started
here from the pyspark install as separate processes, executors whose Python has emovox's
dependencies but not emovox (``--ship`` sends the code and the model), inputs read by path and as
bytes; the tables equal those of local[2]."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.batch.store import BatchStore
from emovox.testing import make_toy_model

from .conftest import SR

pyspark = pytest.importorskip("pyspark")
pytestmark = pytest.mark.slow


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """spark://127.0.0.1:PORT with two workers; stopped (process groups killed) at the end."""
    home = Path(pyspark.__file__).parent
    work = tmp_path_factory.mktemp("cluster")
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_NO_DAEMONIZE": "1"}
    port, ui = _port(), _port()
    cls = str(home / "bin" / "spark-class")
    procs = [subprocess.Popen([cls, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port",
                               str(port), "--webui-port", str(ui)], env=env, start_new_session=True,
                              stdout=open(work / "master.log", "wb"), stderr=subprocess.STDOUT)]
    url = f"spark://127.0.0.1:{port}"
    for i in range(2):
        procs.append(subprocess.Popen([cls, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores",
                                       "1", "--memory", "2G", "--webui-port", str(_port()), "--work-dir",
                                       str(work / f"w{i}"), url], env=env, start_new_session=True,
                                      stdout=open(work / f"worker{i}.log", "wb"), stderr=subprocess.STDOUT))
    try:
        deadline, alive = time.monotonic() + 180, 0
        while time.monotonic() < deadline and alive < 2:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=2) as r:
                    alive = json.load(r).get("aliveworkers", 0)
            except OSError:
                pass
            time.sleep(1)
        assert alive == 2, (work / "master.log").read_text()[-2000:]
        yield {"url": url, "work": work}
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def executor_python(tmp_path_factory) -> str:
    """A Python with emovox's dependencies but without emovox (a plain venv whose .pth adds the
    dependencies' site-packages; that folder's own .pth files, emovox's editable install among
    them, are not processed)."""
    env = tmp_path_factory.mktemp("execenv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    site = next(env.glob("lib/python*/site-packages"))
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = str(env / "bin" / "python")
    probe = subprocess.run([python, "-c", "import onnxruntime, soundfile, pyarrow; import emovox"], capture_output=True,
                           cwd=env)
    assert b"No module named 'emovox'" in probe.stderr, probe.stderr.decode()
    return python


@pytest.fixture(scope="module")
def calls(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("calls")
    rng = np.random.default_rng(3)
    for i in range(18):
        t = np.arange(int(SR * (1 + i % 3))) / SR
        y = 0.2 * np.sin(2 * np.pi * (110 + 9 * i) * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2
        sf.write(root / f"call_{i:02d}_2024-06-{1 + i % 4:02d}T09-30-00.wav",
                 (y + rng.normal(0, 0.01, len(t))).astype(np.float32), SR)
    (root / "bad_a.wav").write_bytes(b"RIFF....WAVEjunk")
    (root / "bad_b.ogg").write_bytes(os.urandom(1500))
    model = make_toy_model(tmp_path_factory.mktemp("toy"))
    return {"root": root, "model": str(model), "files": sorted(str(p) for p in root.iterdir())}


def _batch(source: str, out: Path, model: str, *extra: str, python: str | None = None) -> dict:
    env = {**os.environ, "PYSPARK_PYTHON": python or sys.executable}
    proc = subprocess.run([sys.executable, "-m", "emovox", "batch", source, "--out", str(out), "--model", model,
                           "--json", *extra], capture_output=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return json.loads(proc.stdout)


def _tables(out: Path) -> dict:
    store = BatchStore(str(out))
    files = store.read("files").drop(columns=["batch", "seconds"]).sort_values("file").reset_index(drop=True)
    errors = store.read("errors").drop(columns=["batch"]).sort_values("file").reset_index(drop=True)
    segments = (store.read("segments").drop(columns=["batch", "probabilities"])
                .sort_values(["file", "channel", "start"]).reset_index(drop=True))
    return {"files": files, "errors": errors, "segments": segments}


def test_standalone_cluster_same_tables_as_local(cluster, executor_python, calls, tmp_path):
    import pandas as pd

    local = _batch(str(calls["root"]), tmp_path / "local", calls["model"], "--master", "local[2]")
    assert (local["ok"], local["errors"]) == (18, 2)
    by_path = _batch(str(calls["root"]), tmp_path / "cluster", calls["model"], "--master", cluster["url"], "--ship",
                     python=executor_python)
    by_bytes = _batch(str(calls["root"]), tmp_path / "bytes", calls["model"], "--master", cluster["url"], "--ship",
                      "--read", "bytes", python=executor_python)
    assert (by_path["ok"], by_path["errors"]) == (by_bytes["ok"], by_bytes["errors"]) == (18, 2)
    want = _tables(tmp_path / "local")
    for out in ("cluster", "bytes"):
        got = _tables(tmp_path / out)
        for name in ("files", "segments"):
            pd.testing.assert_frame_equal(got[name], want[name], check_exact=False, rtol=1e-9)
        assert list(got["errors"]["file"]) == list(want["errors"]["file"])
    # the executors ran on the workers (their work dirs hold the app's executor logs), not in the driver
    assert len(list(cluster["work"].glob("w*/app-*/*/stderr"))) >= 2
