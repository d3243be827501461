"""A run directory: config, seed, versions, metrics, predictions, plots and ONE self-contained HTML report.

``write_run(run_dir, result, rows=...)`` writes::

    config.json      the recipe as run        run.json        seed, versions, command, timings
    metrics.json     summary, folds, pooled   predictions.csv one row per test clip
    confusion.png  roc.png  folds.png  per_speaker.png  per_gender.png  [curves.png]
    report.html      every table and image (inlined as base64), nothing else needed to view it
"""

from __future__ import annotations

import base64
import csv
import html
import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from . import plots

__all__ = ["write_run", "render_html", "package_versions", "atomic_write", "command_line", "table",
           "img", "CSS"]

_PACKAGES = ("emovox", "numpy", "scipy", "scikit-learn", "imbalanced-learn", "librosa", "opensmile",
             "torch", "onnxruntime", "soundfile")


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages a result depends on (``"-"`` where not installed)."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "-"
    return out


def command_line(subcommand: str, options: dict) -> str:
    """``emovox <subcommand> --opt value ...`` rebuilt from parsed options (for run.json and the report)."""
    import shlex

    parts = ["emovox", subcommand]
    for key, value in options.items():
        if key.startswith("_") or key == "command" or value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            parts.append(flag)
        else:
            parts += [flag] + ([str(v) for v in value] if isinstance(value, list) else [str(value)])
    return " ".join(shlex.quote(p) for p in parts)


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write to ``path.tmp`` and rename, so readers never see half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


def _pct(x: float | None) -> str:
    return "–" if x is None or x != x else f"{100 * x:.1f}"


def _auc(x: float | None) -> str:
    return "–" if x is None or x != x else f"{x:.3f}"


def _ms(s: dict | None) -> str:
    return "–" if not s else f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}"


def table(head: list[str], rows: list[list], *, cls: str = "") -> str:
    """An HTML table: a header row ``head`` and the body ``rows`` (every cell escaped)."""
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def img(png: bytes, alt: str) -> str:
    """An ``<img>`` with the PNG bytes inlined as base64, so the page needs no other file."""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


#: The style sheet of every emovox HTML report (inlined in the page's ``<style>``).
CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
main{max-width:1100px;margin:0 auto;padding:24px 28px 60px;background:#fff;min-height:100vh}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:34px 0 10px;border-bottom:2px solid #e4e7ee;padding-bottom:4px}
.sub{color:#5b6475;margin:0 0 18px}.warn{background:#fff4e0;border-left:4px solid #e08a2c;padding:8px 12px;margin:12px 0}
.cards{display:flex;gap:14px;flex-wrap:wrap;margin:16px 0}.card{flex:1;min-width:150px;background:#f0f4fb;border-radius:8px;padding:12px 16px}
.card b{display:block;font-size:26px;color:#2c5aa0}.card span{color:#5b6475;font-size:13px}
table{border-collapse:collapse;margin:8px 0 14px;font-size:13.5px}th,td{padding:5px 10px;border-bottom:1px solid #e4e7ee;text-align:right}
th{background:#f0f2f6;font-weight:600}td:first-child,th:first-child{text-align:left}
img{max-width:100%;display:block;margin:8px 0 16px;border:1px solid #eceef2;border-radius:6px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:18px;align-items:start}
code,pre{font-family:SFMono-Regular,Consolas,monospace;font-size:12.5px;background:#f3f4f7;border-radius:4px}
pre{padding:10px;overflow-x:auto;white-space:pre-wrap}details{margin:8px 0}
"""


def render_html(result: dict, figures: dict[str, bytes], *, recipe: dict, run: dict) -> str:
    """The report page: summary cards, per-fold and per-class tables, plots, config and environment."""
    s, pooled = result["summary"], result["pooled"]
    title = f"{result['recipe']} — {result['title']}"
    number = str(result.get("protocol_number") or "")
    single = len(result["folds"]) == 1
    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="sub">{"protocol " + html.escape(number) + " · " if number not in ("", "–") else ""}'
             f'{html.escape(result["protocol"])} · '
             f'view {html.escape(result["view"])} · seed {run["seed"]} · {len(result["folds"])} fold{"" if single else "s"} · '
             f'{pooled["n"]} test clips · {html.escape(run["finished"])}</p>']
    if not result.get("speaker_independent", True):
        parts.append('<p class="warn">Speakers are on both sides of this split: these figures are inflated '
                     "and do not predict accuracy on new voices. Compare with the speaker-independent protocols.</p>")
    if result.get("quick"):
        parts.append('<p class="warn">Quick run (first fold only, shortened training): not a benchmark figure.</p>')
    fmt = (lambda v: _pct(v["mean"]) if v else "–") if single else _ms
    cards = [("UA (unweighted avg. recall)", fmt(s.get("ua"))), ("WA (accuracy)", fmt(s.get("wa"))),
             ("macro-F1", fmt(s.get("macro_f1"))), ("macro AUC" + ("" if single else " (pooled)"), _auc(pooled.get("auc_macro")))]
    parts.append('<div class="cards">' + "".join(f"<div class='card'><b>{v}</b><span>{html.escape(k)}</span></div>"
                                                 for k, v in cards) + "</div>")
    parts.append(("<p>In percent. " if single else "<p>Mean ± sample std over folds, in percent. ") + "Chance UA is "
                 f"{100 / max(1, len(pooled['labels'])):.1f}% for {len(pooled['labels'])} classes.</p>")
    parts.append("<h2>Test set</h2>" if single else "<h2>Folds</h2>")
    rows = [[f["name"], f["n_train"], f["n_val"], f["n_test"], len(f["labels"]), _pct(f["metrics"]["ua"]),
             _pct(f["metrics"]["wa"]), _pct(f["metrics"]["macro_f1"]), f"{f['train_seconds']:.1f}",
             f"{f['infer_ms_per_clip']:.2f}"] for f in result["folds"]]
    parts.append(table(["fold", "train", "val", "test", "classes", "UA %", "WA %", "macro-F1 %", "train s",
                        "predict ms/clip"], rows))
    if "folds" in figures:
        parts.append(img(figures["folds"], "scores per fold"))
    parts.append("<h2>Per class</h2>" if single else "<h2>Per class (all folds pooled)</h2>")
    pc = pooled["per_class"]
    rows = [[lab, _pct(pc[lab]["precision"]), _pct(pc[lab]["recall"]), _pct(pc[lab]["f1"]), pc[lab]["support"],
             f"{pooled['roc'][lab]['auc']:.3f}" if lab in pooled.get("roc", {}) else "–"] for lab in pooled["labels"]]
    parts.append(table(["emotion", "precision %", "recall %", "F1 %", "support", "AUC"], rows))
    parts.append('<div class="grid">')
    for key, alt in (("confusion", "confusion matrix"), ("roc", "ROC curves")):
        if key in figures:
            parts.append("<div>" + img(figures[key], alt) + "</div>")
    parts.append("</div>")
    cm_rows = [[lab] + row for lab, row in zip(pooled["labels"], pooled["confusion"], strict=True)]
    parts.append("<details><summary>Confusion matrix as counts (rows: true, columns: predicted)</summary>"
                 + table(["true \\ predicted"] + list(pooled["labels"]), cm_rows) + "</details>")
    parts.append("<h2>Per gender and per speaker</h2>")
    if pooled.get("per_gender"):
        rows = [[g, v["n"], _pct(v["ua"]), _pct(v["wa"])] for g, v in pooled["per_gender"].items()]
        parts.append(table(["gender", "clips", "UA %", "WA %"], rows))
    for key, alt in (("per_gender", "per gender"), ("per_speaker", "per speaker")):
        if key in figures:
            parts.append(img(figures[key], alt))
    if "curves" in figures:
        parts.append("<h2>Training curves</h2>" + img(figures["curves"], "training curves"))
    searches = [(f["name"], f["search"]) for f in result["folds"] if f.get("search", {}).get("best_params")]
    if searches:
        parts.append("<h2>Hyper-parameter search (GroupKFold on speakers, training part only)</h2>")
        rows = [[n, json.dumps(sr["best_params"]), _pct(sr["best_score"]), sr["n_splits"]] for n, sr in searches]
        parts.append(table(["fold", "best parameters", f"inner CV {searches[0][1]['scoring']} %", "inner folds"], rows))
    parts.append("<h2>Model size and speed</h2>")
    parts.append(table(["model size", "train s / fold", "predict ms / clip", "features ms / clip"],
                       [[_size(result.get("model_bytes")), f"{result['train_seconds']:.1f}",
                         f"{result['infer_ms_per_clip']:.2f}", f"{result.get('feature_ms_per_clip', 0):.1f}"]]))
    parts.append("<h2>Configuration and environment</h2>")
    parts.append(f"<p>Command: <code>{html.escape(run.get('command', ''))}</code></p>")
    parts.append(table(["package", "version"], [[k, v] for k, v in run["versions"].items()]))
    clean = {k: v for k, v in recipe.items() if not k.startswith("_")}
    parts.append("<details><summary>Recipe (a protocol picks its own corpora and label view; [data] is what "
                 "<code>emovox train</code> uses)</summary><pre>" + html.escape(json.dumps(clean, indent=2)) + "</pre></details>")
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body><main>"
            + "\n".join(parts) + "</main></body></html>\n")


def _size(n: int | None) -> str:
    if not n:
        return "–"
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def _figures(result: dict, histories: dict[str, list[dict]]) -> dict[str, bytes]:
    pooled = result["pooled"]
    labels = pooled["labels"]
    n_folds = len(result["folds"])
    figs = {"confusion": plots.confusion_png(pooled["confusion"], labels,
                                             title="Confusion (row %, count)" if n_folds == 1 else
                                             f"Confusion, {n_folds} folds pooled (row %, count)")}
    if n_folds > 1:
        figs["folds"] = plots.folds_png(result["folds"])
    if pooled.get("roc"):
        figs["roc"] = plots.roc_png(pooled["roc"])
    chance = 1 / max(1, len(labels))
    if pooled.get("per_speaker"):
        figs["per_speaker"] = plots.groups_png(pooled["per_speaker"], title="UA and accuracy per test speaker",
                                               chance=chance)
    if pooled.get("per_gender"):
        figs["per_gender"] = plots.groups_png(pooled["per_gender"], title="UA and accuracy per gender", chance=chance)
    if any(histories.values()):
        figs["curves"] = plots.history_png({k: v for k, v in histories.items() if v})
    return figs


def write_run(run_dir: str | os.PathLike, result: dict, *, recipe: dict, rows: list[dict],
              histories: dict[str, list[dict]] | None = None, command: str | None = None) -> Path:
    """Write every file of a run directory (see the module docstring); returns the report path."""
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    run = {"seed": recipe.get("seed", 0), "versions": package_versions(), "platform": platform.platform(),
           "command": command or " ".join(["emovox"] + sys.argv[1:]), "started": result.get("started", ""),
           "finished": result.get("finished", ""), "protocol": result["protocol"], "recipe": result["recipe"]}
    clean = {k: v for k, v in recipe.items() if not k.startswith("_")}
    atomic_write(out / "config.json", json.dumps(clean, indent=2) + "\n")
    atomic_write(out / "run.json", json.dumps(run, indent=2) + "\n")
    atomic_write(out / "metrics.json", json.dumps(result, indent=1) + "\n")
    _write_predictions(out / "predictions.csv", rows)
    figures = _figures(result, histories or {})
    for name, png in figures.items():
        atomic_write(out / f"{name}.png", png)
    atomic_write(out / "report.html", render_html(result, figures, recipe=recipe, run=run))
    return out / "report.html"


def _write_predictions(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    keys: list[str] = []
    for r in rows:
        keys.extend(k for k in r if k not in keys)
    with tmp.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)
