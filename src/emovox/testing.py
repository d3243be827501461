"""Test helpers other packages' tests can use too: a toy model directory and live API servers.

* :func:`make_toy_model`: a tiny ONNX model directory (not a trained model; never shipped). Its
  graph has the contract of a real model (input ``logmel`` [batch, n_mels, frames], output
  ``logits`` [batch, n_classes]): the mean log-mel over frames times a fixed random matrix, so
  tests exercise the prediction path without the shipped model.
* :func:`start_server` / :func:`running_server`: ``emovox serve`` in a subprocess on a free
  loopback port (tests, the load test); :func:`running_app`: an ASGI app served by uvicorn in a
  thread of this process, for tests that share objects with the server.

onnx (``emovox[export]``) and uvicorn (``emovox[api]``) are imported only by the helpers that
need them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._lazy import require
from ._numeric import sha256_file
from .features.logmel import LogMelConfig

__all__ = ["TOY_LABELS", "make_toy_model", "make_toy_embedding_model", "Server", "free_port", "start_server", "running_server",
           "running_app", "rss_bytes"]

TOY_LABELS = ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")


def make_toy_model(directory: str | os.PathLike, *, labels: tuple[str, ...] = TOY_LABELS,
                   window_seconds: float = 3.0, hop_seconds: float = 1.5, temperature: float = 1.5,
                   n_mels: int = 64, seed: int = 0, int8: bool = False) -> Path:
    """Write ``model.onnx`` + ``model.json`` (+ ``card.md``) of a toy model into ``directory``.

    Examples
    --------
    >>> from emovox.inference import Predictor
    >>> p = Predictor.load(make_toy_model(tmp / "toy"))  # doctest: +SKIP
    """
    onnx = require("onnx", extra="export")
    from onnx import TensorProto, helper, numpy_helper

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    weight = (rng.normal(size=(n_mels, len(labels))) * 0.05).astype(np.float32)
    bias = (rng.normal(size=len(labels)) * 0.1).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["logmel", "axes"], ["pooled"], keepdims=0),
            helper.make_node("Gemm", ["pooled", "W", "B"], ["logits"]),
        ],
        "toy",
        [helper.make_tensor_value_info("logmel", TensorProto.FLOAT, ["batch", n_mels, "frames"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(labels)])],
        initializer=[
            numpy_helper.from_array(np.array([2], dtype=np.int64), "axes"),
            numpy_helper.from_array(weight, "W"),
            numpy_helper.from_array(bias, "B"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, directory / "model.onnx")
    sha = {"model.onnx": sha256_file(directory / "model.onnx")}
    if int8:
        from .models.onnx_export import quantize_int8

        quantize_int8(directory / "model.onnx", directory / "model.int8.onnx")
        sha["model.int8.onnx"] = sha256_file(directory / "model.int8.onnx")
    meta = {
        "name": "toy", "version": "0", "labels": list(labels),
        "frontend": LogMelConfig(n_mels=n_mels).to_dict(),
        "window_seconds": window_seconds, "hop_seconds": hop_seconds, "temperature": temperature,
        "normalisation": None, "sha256": sha,
        "metrics": {}, "training": {"note": "random weights, for tests only"},
        "calibration": {"ece_before": 0.2, "ece_after": 0.05},
    }
    (directory / "model.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    (directory / "card.md").write_text("# Toy model\n\nRandom weights, for tests only.\n", encoding="utf-8")
    return directory


def make_toy_embedding_model(directory: str | os.PathLike, *, labels: tuple[str, ...] = TOY_LABELS,
                             min_weight: float = 1.0, window_seconds: float = 4.0, hop_seconds: float = 2.0,
                             seed: int = 0) -> Path:
    """A toy model directory of kind ``whisper_embed`` (speaker-normalised heads; random, for tests only).

    ``model.onnx`` maps the 80-band Whisper log-mel ``[batch, 80, frames]`` to its mean and
    standard deviation over frames (``embedding`` ``[batch, 160]``); ``head.npz`` holds two random
    heads; ``model.json`` declares a neutral reference from a total P(neutral) of ``min_weight`` on.
    """
    onnx = require("onnx", extra="export")
    from onnx import TensorProto, helper, numpy_helper

    from .features.whisper.frontend import WhisperFrontendConfig

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    n_mels, d, k = 80, 160, len(labels)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["logmel", "axes"], ["mean"], keepdims=1),
            helper.make_node("Sub", ["logmel", "mean"], ["centred"]),
            helper.make_node("Mul", ["centred", "centred"], ["square"]),
            helper.make_node("ReduceMean", ["square", "axes"], ["var"], keepdims=0),
            helper.make_node("Sqrt", ["var"], ["std"]),
            helper.make_node("Squeeze", ["mean", "axes"], ["mean2"]),
            helper.make_node("Concat", ["mean2", "std"], ["embedding"], axis=1),
        ],
        "toy_embed",
        [helper.make_tensor_value_info("logmel", TensorProto.FLOAT, ["batch", n_mels, "frames"])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", d])],
        initializer=[numpy_helper.from_array(np.array([2], dtype=np.int64), "axes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, directory / "model.onnx")
    rng = np.random.default_rng(seed)
    heads: dict[str, np.ndarray] = {}
    for head in ("global", "speaker"):
        heads |= {f"{head}_mean": rng.normal(size=d).astype(np.float32) * 0.1,
                  f"{head}_scale": rng.uniform(0.5, 2.0, size=d).astype(np.float32),
                  f"{head}_coef": rng.normal(size=(k, d)).astype(np.float32) * 0.05,
                  f"{head}_intercept": rng.normal(size=k).astype(np.float32) * 0.1}
    np.savez(directory / "head.npz", **heads)  # type: ignore[arg-type]
    meta = {
        "name": "toy-embed", "version": "0", "kind": "whisper_embed", "labels": list(labels),
        "frontend": WhisperFrontendConfig().to_dict(), "windowing": "chunks",
        "window_seconds": window_seconds, "hop_seconds": hop_seconds, "min_chunk_seconds": 0.25,
        "temperature": 1.0,
        "normalisation": {"kind": "neutral_reference", "min_weight": min_weight, "iterations": 1,
                          "reference_labels": ["neutral"], "temperature": 2.0},
        "sha256": {f: sha256_file(directory / f) for f in ("model.onnx", "head.npz")},
        "metrics": {}, "training": {"note": "random weights, for tests only"},
    }
    (directory / "model.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    (directory / "card.md").write_text("# Toy embedding model\n\nRandom weights, for tests only.\n", encoding="utf-8")
    return directory


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_bytes(pid: int, *, children: bool = True) -> int:
    """Resident memory of a process (and its child processes) from ``/proc``; 0 if unavailable."""
    pids = [pid]
    if children:
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                kids = (task / "children").read_text().split()
                pids += [int(k) for k in kids]
        except OSError:
            pass
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v1/health", timeout=2) as r:
            return r.status == 200 and json.load(r).get("status") == "ok"
    except (OSError, ValueError):
        return False


@dataclass
class Server:
    """A server process: its base URL, process and log file (see :func:`start_server`)."""

    url: str
    process: subprocess.Popen
    log: Path

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http"):]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_healthy(self, timeout: float = 120.0) -> Server:
        """Block until ``/v1/health`` answers; RuntimeError (with the log) if it exits or times out."""
        deadline = time.monotonic() + timeout
        while not _healthy(self.url):
            if self.process.poll() is not None:
                raise RuntimeError(f"emovox serve exited with {self.process.returncode}:\n{self.log_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"emovox serve not healthy after {timeout:g} s:\n{self.log_text()[-2000:]}")
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(*, env: dict[str, str] | None = None, args: Sequence[str] = (),
                 log: str | os.PathLike | None = None) -> Server:
    """Start ``python -m emovox serve`` on a free loopback port; does not wait for it.

    Parameters
    ----------
    env : extra environment variables (``EMOVOX_MODEL``, ``EMOVOX_API_KEY``, ...)
    args : extra ``emovox serve`` options (``--workers 2``)
    log : file for the server's output (default: a temp file)
    """
    import tempfile

    port = free_port()
    log_path = Path(log) if log else Path(tempfile.mkstemp(prefix="emovox-serve-", suffix=".log")[1])
    cmd = [sys.executable, "-m", "emovox", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning", *args]
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT)
    return Server(f"http://127.0.0.1:{port}", proc, log_path)


@contextmanager
def running_server(*, env: dict[str, str] | None = None, args: Sequence[str] = (),
                   log: str | os.PathLike | None = None, startup_timeout: float = 120.0) -> Iterator[Server]:
    """:func:`start_server`, wait for ``/v1/health``, yield the server, stop it on exit."""
    server = start_server(env=env, args=args, log=log)
    try:
        yield server.wait_healthy(startup_timeout)
    finally:
        server.stop()


@contextmanager
def running_app(app, *, startup_timeout: float = 30.0) -> Iterator[str]:
    """Serve an ASGI ``app`` with uvicorn in a thread of this process; yield its base URL.

    For tests that need the server to share objects with the test (a predictor that counts
    its calls, say); :func:`running_server` runs the real ``emovox serve`` process instead.
    """
    import threading

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + startup_timeout
    try:
        while not _healthy(url):
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"in-process server on port {port} did not become healthy")
            time.sleep(0.05)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)
