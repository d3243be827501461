"""``emovox export --model DIR|default|tiny --onnx [--int8] [--tflite] [--out DIR]``.

``--tflite`` copies a model directory's shipped, hash-checked model.tflite / model.int8.tflite
(the tiny model's; no converter needed) or converts them from its weights.pt (needs
``emovox[export]``); see :mod:`emovox.models.tflite_export`.
"""

from __future__ import annotations

import argparse
import json

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="DIR", help="a model directory, or a shipped model: default, tiny")
    parser.add_argument("--onnx", action="store_true",
                        help="write model.onnx (re-exported from weights.pt when the model has one)")
    parser.add_argument("--int8", action="store_true", help="also write model.int8.onnx (dynamic int8)")
    parser.add_argument("--tflite", action="store_true",
                        help="also write model.tflite and model.int8.tflite: copied where the model ships them "
                             "(tiny), else converted from weights.pt (needs emovox[export])")
    parser.add_argument("--out", metavar="DIR", help="output directory (default: the model directory)")
    parser.add_argument("--json", action="store_true", help="print the export report as JSON")


def run(args: argparse.Namespace) -> int:
    from ..errors import ParameterError
    from ..models.onnx_export import export_model

    if not (args.onnx or args.int8 or args.tflite):
        raise ParameterError("nothing to export: give --onnx, --int8 and/or --tflite")
    report = export_model(args.model, args.out, onnx=args.onnx, int8=args.int8, tflite=args.tflite)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"exported to {report['out']}")
    for name, size in report["files"].items():
        check = report["checks"].get(name)
        verdict = (f"  vs ONNX Runtime float: max |logit diff| {check['max_abs_diff']:.2e}, "
                   f"argmax agreement {100 * check['argmax_agreement']:.1f}% on {check['n']} windows"
                   if check else "")
        print(f"  {name:<20} {size / 1e6:8.2f} MB{verdict}")
    for note in report["notes"]:
        print(f"  note: {note}")
    return 0
