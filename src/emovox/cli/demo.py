"""``emovox demo``: write the demo call (two channels, espeak-ng voices) to analyse."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo_call.wav", metavar="PATH",
                        help="where to write it (.wav, .flac or .ogg; default: demo_call.wav)")
    parser.add_argument("--shipped", action="store_true",
                        help="copy the recording shipped with emovox instead of synthesising it")
    parser.epilog = "Then: emovox analyze demo_call.wav --channels split --plot demo_call.png"


def run(args: argparse.Namespace) -> int:
    import soundfile as sf

    from ..evaluation.demo import write_demo_call

    path = write_demo_call(args.out, use_shipped=True if args.shipped else None)
    info = sf.info(str(path))
    print(f"wrote {path}: {info.duration:.1f} s, {info.channels} channels "
          f"(0: agent, 1: customer), {info.samplerate} Hz")
    print(f"next: emovox analyze {path} --channels split")
    return 0
