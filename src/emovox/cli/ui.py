"""``emovox ui``: run the Streamlit web app (needs the ``ui`` extra)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["add_arguments", "run", "script_path"]


def script_path() -> Path:
    """The packaged Streamlit script."""
    return Path(__file__).resolve().parent.parent / "ui" / "app.py"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8501, help="port (default: 8501)")
    parser.add_argument("--model", metavar="DIR", help="model directory (default: the shipped model)")
    parser.add_argument("--max-upload-mb", type=int, default=50, help="largest upload (default: 50)")


def run(args: argparse.Namespace) -> int:
    from .._lazy import require
    from ..errors import ParameterError

    require("streamlit", extra="ui")
    require("altair", extra="ui")
    if not 0 < args.port < 65536:
        raise ParameterError(f"--port must be 1..65535, got {args.port}")
    env = dict(os.environ)
    if args.model:
        env["EMOVOX_MODEL"] = args.model
    cmd = [sys.executable, "-m", "streamlit", "run", str(script_path()),
           "--server.address", args.host, "--server.port", str(args.port),
           "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.maxUploadSize", str(args.max_upload_mb), "--server.fileWatcherType", "none",
           "--theme.base", "light", "--client.toolbarMode", "viewer"]
    print(f"emovox ui: http://{args.host}:{args.port}", flush=True)
    if os.name == "posix":  # become streamlit, so signals (Ctrl+C, docker stop, kill) reach it
        os.execve(sys.executable, cmd, env)
    try:  # pragma: no cover - Windows
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 130
