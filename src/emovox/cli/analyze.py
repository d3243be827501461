"""``emovox analyze FILE``: a call or long recording -> summary + emotion timeline (+ files, plot)."""

from __future__ import annotations

import argparse
import os

# numpy is not imported yet in a CLI process: keep OpenBLAS to one thread (the log-mel's small
# products only get slower with more; ONNX Runtime has its own threads).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import json
from typing import Literal

from .predict import add_model_arguments, add_partial_argument

__all__ = ["add_arguments", "run", "format_report", "parse_speakers"]

MAX_ROWS = 200


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="audio file (any format ffmpeg reads)")
    parser.add_argument("--channels", choices=("mix", "split"), default="mix",
                        help="mix channels, or analyse each alone (stereo call; default: mix)")
    parser.add_argument("--names", default="agent,customer", metavar="A,B",
                        help="channel names when split (default: agent,customer)")
    parser.add_argument("--speakers", metavar="N|auto",
                        help="tell the voices of a mono recording apart: a count (2) or auto (1-4); "
                             "channels become speaker 1, speaker 2, ...")
    parser.add_argument("--out", metavar="PATH", help="write the timeline to .csv, .json or .parquet")
    parser.add_argument("--plot", metavar="PNG", help="draw waveform + emotion timeline to an image")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    parser.add_argument("--smoothing", type=int, default=1, metavar="K",
                        help="average probabilities over K neighbouring segments each side (0: off)")
    parser.add_argument("--block-seconds", type=float, default=60.0, help=argparse.SUPPRESS)
    add_partial_argument(parser)
    add_model_arguments(parser)


def _clock(seconds: float) -> str:
    m, s = divmod(seconds, 60.0)
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:04.1f}" if h else f"{m}:{s:04.1f}"


def _runs(segments: list[dict]) -> list[dict]:
    """Merge consecutive segments of one channel with the same emotion (for the printed timeline)."""
    out: list[dict] = []
    last: dict[str, dict] = {}
    for s in segments:
        prev = last.get(s["channel"])
        if prev and prev["emotion"] == s["emotion"] and s["start"] - prev["end"] < 1.0:
            prev["end"] = s["end"]
            prev["conf"].append(s["confidence"])
            prev["uncertain"] += int(s["uncertain"])
            continue
        row = {"channel": s["channel"], "start": s["start"], "end": s["end"], "emotion": s["emotion"],
               "conf": [s["confidence"]], "uncertain": int(s["uncertain"])}
        out.append(row)
        last[s["channel"]] = row
    return out


def _share_line(summary: dict) -> str:
    top = [(k, v) for k, v in summary["emotion_share"].items() if v > 0][:4]
    return ", ".join(f"{k} {100 * v:.0f}%" for k, v in top) or "-"


def format_report(result) -> str:
    """The readable summary and timeline printed by ``emovox analyze``."""
    s = result.summary
    speech_pct = 100 * s["speech_seconds"] / s["duration"] if s["duration"] else 0.0
    lines = [
        f"{result.file}: {_clock(s['duration'])} long, speech {s['speech_seconds']:.1f} s ({speech_pct:.0f}%), "
        f"{s['segments']} segments, model {result.model['name']} {result.model['version']}",
        "",
        f"{'channel':<10} {'speech':>8}  {'dominant':<10} {'negative':>8}  emotions (share of speech time)",
    ]
    rows = [(name, per) for name, per in s.get("per_channel", {}).items()] + [("all", s)]
    for name, per in rows:
        lines.append(f"{name:<10} {per['speech_seconds']:>7.1f}s  {per['dominant_emotion']:<10} "
                     f"{100 * per['negative_share']:>7.0f}%  {_share_line(per)}")
    for kind, peaks in s.get("peaks", {}).items():
        if peaks:
            where = "; ".join(f"{p['channel']} {_clock(p['start'])}-{_clock(p['end'])} ({p['score']:.2f})"
                              for p in peaks)
            lines.append(f"{kind} peaks: {where}")
    lines.append(f"uncertain: {100 * s['uncertain_share']:.0f}% of speech time")
    if (s.get("speakers") or {}).get("message"):
        lines.append(f"speakers: {s['speakers']['message']}")
    heads = result.model.get("heads")
    if heads:  # a speaker-referenced model: which channels had enough neutral speech to refer to
        lines.append("speaker reference: " + "; ".join(
            f"{ch} {'own neutral voice' if h == 'speaker' else 'none (too little neutral speech; clip by clip)'}"
            for ch, h in heads.items()))
    runs = _runs(result.segments)
    lines += ["", f"{'start':>9} {'end':>9}  {'channel':<10} {'emotion':<10} {'conf':>5}"]
    for r in runs[:MAX_ROWS]:
        conf = sum(r["conf"]) / len(r["conf"])
        flag = "  (uncertain)" if r["uncertain"] * 2 > len(r["conf"]) else ""
        lines.append(f"{_clock(r['start']):>9} {_clock(r['end']):>9}  {r['channel']:<10} "
                     f"{r['emotion']:<10} {conf:>5.2f}{flag}")
    if len(runs) > MAX_ROWS:
        lines.append(f"... {len(runs) - MAX_ROWS} more rows; write them all with --out timeline.csv")
    return "\n".join(lines)


def parse_speakers(text: str | None) -> int | Literal["auto"] | None:
    """``--speakers``: ``"auto"`` or a count ("2" -> 2); the range is checked by the analysis."""
    from ..errors import ParameterError

    if text is None:
        return None
    if text == "auto":
        return "auto"
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit()):
        raise ParameterError(f"speakers must be a count or 'auto', got {text!r}")
    return int(digits)


def run(args: argparse.Namespace) -> int:
    from ..errors import ParameterError
    from ..inference import Predictor, analyze
    from ..inference.outputs import FORMATS

    if args.out and not args.out.lower().endswith(FORMATS):
        raise ParameterError(f"--out {args.out}: must end in {', '.join(FORMATS)}")
    names = [x.strip() for x in args.names.split(",") if x.strip()]
    speakers = parse_speakers(args.speakers)
    predictor = Predictor.load(args.model, int8=args.int8, threads=args.threads)
    result = analyze(args.file, predictor=predictor, channels=args.channels, channel_names=names,
                     smoothing=args.smoothing, block_seconds=args.block_seconds,
                     speakers=speakers,
                     allow_partial=args.allow_partial)
    if args.out:
        from ..inference.outputs import write_analysis

        write_analysis(result, args.out)
    if args.plot:
        from .plot import plot_analysis

        plot_analysis(result, args.plot)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(format_report(result))
        for what, path in (("timeline", args.out), ("plot", args.plot)):
            if path:
                print(f"\n{what} written to {path}")
    return 0
