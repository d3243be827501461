"""Dataset analytics: one self-contained HTML page about a collection of labelled clips.

Clips and duration per corpus, emotion, speaker, gender and intensity; loudness and pitch per
emotion; a waveform and a spectrogram per emotion; and the per-clip table (``.csv`` and
``.parquet``, one row per clip) next to the page for PowerBI or Tableau. Per-clip statistics
(:mod:`emovox.batch.stats`) are cached by path, size and mtime, so a second run is quick.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._lazy import require
from ..audio import load
from ..corpora import Item, discover, load_all, load_corpus, load_manifest
from ..errors import DataError, EmovoxError, ParameterError
from . import figures as F
from .html import atomic_write, cards, emotion_order, esc, img, page, table, write_tables
from .stats import STAT_COLUMNS, stats_many

__all__ = ["collect_items", "clip_table", "dataset_report", "default_stats_cache"]

META_COLUMNS = ("corpus", "path", "label", "speaker", "gender", "intensity", "text")
_KEY = ("path", "size", "mtime_ns")


def default_stats_cache() -> Path:
    """``$EMOVOX_CACHE/report/clip_stats.parquet`` (default cache root ``~/.cache/emovox``)."""
    root = os.environ.get("EMOVOX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "emovox")
    return Path(root) / "report" / "clip_stats.parquet"


def collect_items(*, data: str | os.PathLike | None = None, manifests: Sequence[str] = (),
                  corpora: Sequence[str] | None = None, warn=print) -> list[Item]:
    """The labelled clips of a data folder (known corpora, else one folder per label) or manifests."""
    if manifests:
        found = [load_manifest(m) for m in manifests]
    else:
        root = Path(data) if data is not None else None
        if root is None or not root.is_dir():
            raise DataError(f"{root}: data folder not found")
        if discover(root):
            found = list(load_all(root, list(corpora) if corpora else None).values())
        elif corpora:
            raise DataError(f"{root}: none of the corpus folders {', '.join(corpora)} found")
        else:
            found = [load_corpus("folder", root)]
    for c in found:
        for s in c.skipped:
            warn(f"emovox: skipped {s.path}: {s.reason}")
    items = [i for c in found for i in c.items]
    if not items:
        raise DataError("no labelled audio files found in the given input")
    return items


def _sample(items: list[Item], n: int | None, seed: int) -> list[Item]:
    if n is None:
        return items
    if n < 1:
        raise ParameterError(f"--sample must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    out: list[Item] = []
    for corpus in dict.fromkeys(i.corpus for i in items):
        group = [i for i in items if i.corpus == corpus]
        pick = sorted(rng.choice(len(group), size=min(n, len(group)), replace=False))
        out.extend(group[k] for k in pick)
    return out


def _stat_key(path: str) -> tuple[str, int, int]:
    st = os.stat(path)
    return os.path.abspath(path), st.st_size, st.st_mtime_ns


def clip_table(items: Sequence[Item], *, jobs: int = 1, cache: str | os.PathLike | None | bool = None,
               show_progress: bool = True):
    """One row per clip: the item's metadata and :data:`~emovox.batch.stats.STAT_COLUMNS`.

    Parameters
    ----------
    items : list of :class:`emovox.corpora.Item`
    jobs : int
        Worker processes for the clips not in the cache.
    cache : path, None or False
        Parquet file of cached statistics (None: :func:`default_stats_cache`; False: off).

    Returns
    -------
    pandas.DataFrame [shape=(n_items, 7 + 10 + 1)], with an ``error`` column (empty when fine)
    """
    pd = require("pandas", extra="spark")
    meta = pd.DataFrame([{c: getattr(i, c) for c in META_COLUMNS} for i in items], columns=list(META_COLUMNS))
    keys = []
    for p in meta["path"]:
        try:
            keys.append(_stat_key(p))
        except OSError:
            keys.append((os.path.abspath(p), -1, -1))
    meta["path"] = [k[0] for k in keys]
    cache_path: Path | None
    if cache is False:
        cache_path = None
    elif cache is None or cache is True:
        cache_path = default_stats_cache()
    else:
        cache_path = Path(cache)
    known: dict[tuple, dict] = {}
    if cache_path is not None and cache_path.is_file():
        try:
            old = pd.read_parquet(cache_path)
            known = {tuple(r[k] for k in _KEY): r for r in old.to_dict("records")}
        except Exception as exc:  # a damaged cache is rebuilt, never fatal
            print(f"emovox: ignoring unreadable stats cache {cache_path} ({type(exc).__name__})", file=sys.stderr)
    todo = [k for k in dict.fromkeys(keys) if k not in known and k[1] >= 0]
    results = stats_many([k[0] for k in todo], jobs=jobs, show_progress=show_progress)
    fresh = {}
    errors = {k: "file not found" for k in keys if k[1] < 0}
    for k, res in zip(todo, results, strict=True):
        if res[1] is None:
            fresh[k] = {**dict(zip(_KEY, k, strict=True)), **res[0]}
        else:
            errors[k] = res[1]
    known.update(fresh)
    if cache_path is not None and fresh:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_name(f".{cache_path.name}.{os.getpid()}.tmp")
        pd.DataFrame(list(known.values())).to_parquet(tmp, index=False)
        os.replace(tmp, cache_path)
    stats = pd.DataFrame([{c: known.get(k, {}).get(c, np.nan) for c in STAT_COLUMNS} for k in keys],
                         columns=list(STAT_COLUMNS))
    out = pd.concat([meta, stats], axis=1)
    out["error"] = [errors.get(k, "") for k in keys]
    out.attrs.update(computed=len(todo), cached=len(set(keys)) - len(todo))
    return out


def _examples(df, *, max_seconds: float = 4.0) -> list[tuple[str, str, np.ndarray]]:
    """One clip per emotion: the readable one whose duration is closest to the emotion's median."""
    out = []
    for label in emotion_order(df["label"].unique()):
        sub = df[(df["label"] == label) & (df["error"] == "")]
        if sub.empty:
            continue
        order = (sub["duration"] - sub["duration"].median()).abs().sort_values().index
        for idx in order[:5]:
            row = sub.loc[idx]
            try:
                y = load(row["path"])[: int(max_seconds * 16000)]
            except EmovoxError:
                continue
            out.append((label, f"{row['corpus']} · {Path(row['path']).name}", y))
            break
    return out


def _summary_tables(df) -> list[str]:
    ok = df[df["error"] == ""]
    rows = []
    for corpus, g in ok.groupby("corpus", sort=False):
        rows.append([corpus, f"{len(g):,}", g["speaker"].nunique(), f"{g['duration'].sum() / 3600:.2f}",
                     f"{g['duration'].mean():.2f}", g["label"].nunique(), f"{g['rms_db'].median():.1f}",
                     f"{g['f0_median'].median():.0f}"])
    parts = ["<h2>Corpora</h2>", table(["corpus", "clips", "speakers", "hours", "mean s", "emotions",
                                        "median RMS dBFS", "median F0 Hz"], rows)]
    rows = []
    for label in emotion_order(ok["label"].unique()):
        g = ok[ok["label"] == label]
        f0 = {s: g.loc[g["gender"] == s, "f0_median"].median() for s in ("female", "male")}
        rows.append([label, f"{len(g):,}", f"{g['duration'].sum() / 60:.1f}", f"{g['rms_db'].median():.1f}",
                     f"{g['peak_db'].median():.1f}", "–" if f0["female"] != f0["female"] else f"{f0['female']:.0f}",
                     "–" if f0["male"] != f0["male"] else f"{f0['male']:.0f}",
                     f"{100 * g['voiced_share'].median():.0f}"])
    parts += ["<h2>Emotions</h2>", table(["emotion", "clips", "minutes", "median RMS dBFS", "median peak dBFS",
                                          "median F0 female", "median F0 male", "voiced %"], rows)]
    return parts


def dataset_report(items: Sequence[Item], out: str | os.PathLike, *, sample: int | None = None,
                   seed: int = 0, jobs: int = 1, cache: str | os.PathLike | None | bool = None,
                   show_progress: bool = True, source: str = "") -> dict:
    """Write the dataset report ``out`` (HTML) and ``<out stem>.clips.csv/.parquet`` beside it.

    Parameters
    ----------
    items : list of :class:`emovox.corpora.Item`
    out : path of the ``.html`` page
    sample : int, optional
        Use at most this many random clips per corpus (``seed``).
    jobs, cache : see :func:`clip_table`

    Returns
    -------
    dict: ``html``, ``tables`` (paths), ``clips``, ``errors``, ``seconds`` (total) and
    ``stats_seconds`` (per-clip statistics)
    """
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ParameterError(f"--out must name an .html file, got {str(out)!r}")
    t0 = time.perf_counter()
    chosen = _sample(list(items), sample, seed)
    df = clip_table(chosen, jobs=jobs, cache=cache, show_progress=show_progress)
    t_stats = time.perf_counter() - t0
    counts = f"{df.attrs.get('computed', 0):,} computed, {df.attrs.get('cached', 0):,} from the cache"
    ok = df[df["error"] == ""]
    if ok.empty:
        raise DataError(f"none of the {len(df)} clips could be read")
    figs = [("Corpora: clips, hours, durations", F.overview_png(ok)),
            ("Emotions", F.emotions_png(ok)), ("Speakers", F.speakers_png(ok)),
            ("Gender and intensity", F.groups_png(ok)), ("Loudness per emotion", F.distributions_png(ok)),
            ("Pitch per emotion", F.pitch_png(ok))]
    examples = _examples(ok)
    hours = ok["duration"].sum() / 3600
    parts = [cards([("clips", f"{len(ok):,}"), ("hours", f"{hours:.2f}"), ("corpora", str(ok['corpus'].nunique())),
                    ("speakers", str(ok["speaker"].nunique())), ("emotions", str(ok["label"].nunique()))])]
    if sample:
        parts.append(f"<p class='warn'>A random sample of at most {sample} clips per corpus (seed {seed}), "
                     f"not the whole collection.</p>")
    parts += _summary_tables(df)
    for title, png in figs:
        parts += [f"<h2>{esc(title)}</h2>", img(png, title)]
    parts.append("<p class='note'>RMS level and peak in dBFS of the 16 kHz mono signal; F0 by a numpy YIN "
                 "(60–500 Hz, 64 ms frames), median over voiced frames of each clip.</p>")
    if examples:
        parts += ["<h2>One example per emotion</h2>", img(F.examples_png(examples), "waveform and spectrogram")]
    bad = df[df["error"] != ""]
    if len(bad):
        parts += [f"<h2>Unreadable clips ({len(bad)})</h2>",
                  table(["path", "error"], [[p, e] for p, e in zip(bad["path"][:50], bad["error"][:50], strict=True)], cls="wide")]
    stem = out.with_name(out.stem + ".clips")
    tables = write_tables(df, stem)
    seconds = time.perf_counter() - t0
    parts.append(f"<h2>Tables for BI tools</h2><p>One row per clip: <code>{esc(tables[0].name)}</code> and "
                 f"<code>{esc(tables[1].name)}</code> next to this page (columns: "
                 f"{esc(', '.join(df.columns))}).</p>")
    sub = (f"{source} · {len(df):,} clips · per-clip statistics {t_stats:.1f} s ({counts}) · "
           f"page built in {seconds:.1f} s")
    atomic_write(out, page("Dataset report", sub, parts))
    return {"html": out, "tables": tables, "clips": len(ok), "errors": len(bad), "seconds": seconds,
            "stats_seconds": t_stats}
