"""``emovox model info``: the model card (model.json + card.md) of the shipped or a given model."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    info = sub.add_parser("info", help="print the model card", description="print the model card")
    info.add_argument("--model", metavar="DIR", help="model directory (default: the shipped model)")
    info.add_argument("--json", action="store_true", help="print model.json (without training history)")
    parser.set_defaults(action=None, model=None, json=False)


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def run(args: argparse.Namespace) -> int:
    from .._numeric import sha256_file
    from ..errors import ParameterError
    from ..models.directory import load_card

    if args.action != "info":
        raise ParameterError("choose an action: emovox model info [--json] [--model DIR]")
    card = load_card(args.model)
    raw = dict(card.raw)
    training = dict(raw.get("training") or {})
    training.pop("history", None)  # per-epoch logs: long, and in the card's figures anyway
    raw["training"] = training
    files = {}
    for name, expected in (raw.get("sha256") or {}).items():
        path = card.directory / name
        files[name] = {"bytes": path.stat().st_size if path.is_file() else None,
                       "sha256_ok": path.is_file() and sha256_file(path) == expected}
    if args.json:
        print(json.dumps({**raw, "directory": str(card.directory), "files": files}, indent=2, default=str))
        return 0
    cal = raw.get("calibration") or {}
    metrics = raw.get("metrics") or {}
    ece_b = cal.get("ece_before", metrics.get("ece_before"))
    ece_a = cal.get("ece_after", metrics.get("ece_after"))
    lines = [
        f"model      {card.name} (version {card.version})",
        f"directory  {card.directory}",
        f"labels     {', '.join(card.labels)}",
        f"windows    {card.window_seconds:g} s every {card.hop_seconds:g} s; "
        f"log-mel {card.frontend.n_mels} bands, hop {card.frontend.hop_length}",
        f"calibration temperature {card.temperature:.3f}"
        + (f"; ECE {_fmt(ece_b)} before -> {_fmt(ece_a)} after" if ece_b is not None else ""),
    ]
    for name, f in files.items():
        size = f"{f['bytes'] / 1e6:.2f} MB" if f["bytes"] else "missing"
        lines.append(f"file       {name}: {size}, sha256 {'ok' if f['sha256_ok'] else 'MISMATCH'}")
    flat = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
    if flat:
        lines.append("metrics    " + ", ".join(f"{k}={_fmt(v)}" for k, v in flat.items()))
    text = card.card_text().strip()
    print("\n".join(lines))
    if text:
        print("\n" + text)
    return 0
