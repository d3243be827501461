"""emovox batch --watch: Structured Streaming over a folder, files dropped in over time, a SIGKILL
midway and a restart from the checkpoint; every file lands in the tables exactly once."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.batch.store import BatchStore
from emovox.testing import make_toy_model

from .conftest import SR

pytest.importorskip("pyspark")
pytestmark = pytest.mark.slow


def _drop(src: Path, folder: Path, names: list[str]) -> None:
    """Write elsewhere, then rename into the watched folder (what the file source needs)."""
    for name in names:
        shutil.copy(src / name, src / f".{name}")
        os.replace(src / f".{name}", folder / name)


def _watch(folder: Path, out: Path, model: str) -> subprocess.Popen:
    """The watcher as its own process (stderr appended to OUT/../watch.log)."""
    cmd = [sys.executable, "-m", "emovox", "batch", "--watch", str(folder), "--out", str(out), "--model", model,
           "--master", "local[1]", "--trigger", "1"]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    log = open(out.parent / "watch.log", "ab")  # noqa: SIM115 - the child holds it
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=env, start_new_session=True)


def _wait_done(out: Path, want: set[str], proc: subprocess.Popen, timeout: float = 900) -> float:
    """Seconds until every file of ``want`` is in the tables (a JVM start on a loaded machine: minutes)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        assert proc.poll() is None, (out.parent / "watch.log").read_text()[-2000:]
        if (out / "_batches").is_dir() and want <= BatchStore(str(out)).done():
            return time.monotonic() - t0
        time.sleep(0.3)
    raise AssertionError(f"not analysed within {timeout} s: {sorted(want - BatchStore(str(out)).done())}\n"
                         + (out.parent / "watch.log").read_text()[-2000:])


def test_watch_restart_exactly_once(tmp_path):
    src, folder, out = tmp_path / "src", tmp_path / "in", tmp_path / "out"
    src.mkdir()
    folder.mkdir()
    rng = np.random.default_rng(1)
    names = []
    for i in range(9):
        t = np.arange(int(SR * (1 + i % 2))) / SR
        y = (0.2 * np.sin(2 * np.pi * (150 + 11 * i) * t) + rng.normal(0, 0.01, len(t))).astype(np.float32)
        names.append(f"call_{i}_2024-05-0{1 + i % 3}T12-00-00.wav")
        sf.write(src / names[-1], y, SR)
    (src / "broken.wav").write_bytes(b"RIFF0000WAVE")
    names.append("broken.wav")
    model = str(make_toy_model(tmp_path / "toy"))
    key = {n: str(folder / n) for n in names}

    proc = _watch(folder, out, model)
    try:
        _drop(src, folder, names[:3])
        first = _wait_done(out, {key[n] for n in names[:3]}, proc)
        _drop(src, folder, names[3:6])
        latency = _wait_done(out, {key[n] for n in names[3:6]}, proc)
        _drop(src, folder, names[6:8])  # killed while these may be in flight
        time.sleep(1.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    _drop(src, folder, names[8:])  # lands while the watcher is down
    proc = _watch(folder, out, model)
    try:
        _wait_done(out, set(key.values()), proc)
        time.sleep(3)  # a few more triggers: nothing may be repeated
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    store = BatchStore(str(out))
    files, errors, segments = store.read("files"), store.read("errors"), store.read("segments")
    assert sorted([*files["file"], *errors["file"]]) == sorted(key.values()), "every file exactly once"
    assert list(errors["file"]) == [key["broken.wav"]]
    assert not segments.duplicated(["file", "channel", "start"]).any()
    assert files["batch"].str.startswith("w").all() and len(store.batches()) >= 3
    assert set(files["date"]) == {"2024-05-01", "2024-05-02", "2024-05-03"}
    print(f"first files analysed {first:.1f} s after the drop (JVM start included), then {latency:.1f} s")
    assert latency < 60
