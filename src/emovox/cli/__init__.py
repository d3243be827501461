"""The ``emovox`` command: one entry point, a module per subcommand, imported only when used.

Exit codes: 0 ok, 1 internal error, 2 usage error, 3 bad input (unreadable, unsupported or
empty audio; unusable data).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import EmovoxError

__all__ = ["main", "COMMANDS"]

#: name -> (module under emovox.cli, one-line help). Each module defines
#: ``add_arguments(parser)`` and ``run(args) -> int``.
COMMANDS: dict[str, tuple[str, str]] = {
    "predict": ("predict", "predict the emotion of whole clips"),
    "analyze": ("analyze", "analyse a call or long recording into an emotion timeline"),
    "datasets": ("datasets", "inventory of the corpora under a data folder"),
    "features": ("features", "extract a feature set to Parquet (cached)"),
    "train": ("train", "train a model from a recipe"),
    "evaluate": ("evaluate", "evaluate a model on a corpus or manifest"),
    "benchmark": ("benchmark", "run the evaluation protocols and speed benchmarks"),
    "export": ("export", "export a trained model to ONNX, int8 and TFLite"),
    "model": ("model", "show the shipped model's card"),
    "demo": ("demo", "write the demo call recording (espeak-ng voices)"),
    "serve": ("serve", "run the REST and streaming API"),
    "ui": ("ui", "run the web app"),
    "batch": ("batch", "batch-analyse a collection on Apache Spark"),
    "report": ("report", "dataset or batch analytics report (HTML)"),
}


def _selected(argv: Sequence[str]) -> str | None:
    for token in argv:
        if not token.startswith("-"):
            return token if token in COMMANDS else None
    return None


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emovox", description="Speech emotion recognition: audio in, per-segment emotions out.",
    )
    parser.add_argument("--version", action="version", version=f"emovox {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = _selected(argv)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            mod = importlib.import_module(f"{__name__}.{module}")
            mod.add_arguments(p)
            p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (also used by ``python -m emovox``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(argv)
    except ModuleNotFoundError as exc:  # a subcommand module that is not there yet / not installed
        print(f"emovox: error: {exc}", file=sys.stderr)
        return 1
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except EmovoxError as exc:
        print(f"emovox: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("emovox: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # an internal error: say so briefly, traceback only on request
        if os.environ.get("EMOVOX_DEBUG"):
            raise
        print(f"emovox: internal error: {type(exc).__name__}: {exc} (set EMOVOX_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1
