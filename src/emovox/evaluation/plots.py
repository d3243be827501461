"""Figures of an evaluation run, each returned as PNG bytes (matplotlib, Agg backend, imported lazily)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from .._lazy import require

__all__ = ["confusion_png", "roc_png", "history_png", "groups_png", "folds_png", "pyplot", "fig_png"]

_BLUE, _ORANGE = "#3b6fb6", "#e08a2c"


def pyplot():
    """matplotlib.pyplot on the Agg backend (``pip install 'emovox[train]'`` when missing)."""
    mpl = require("matplotlib", extra="train")
    mpl.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def fig_png(fig) -> bytes:
    """A figure as PNG bytes; the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    return buf.getvalue()


def confusion_png(confusion: Sequence[Sequence[int]], labels: Sequence[str], *, title: str = "") -> bytes:
    """Row-normalised confusion matrix ``[k, k]`` (percent of each true class, counts beneath)."""
    plt = pyplot()
    cm = np.asarray(confusion, dtype=float)
    rows = cm.sum(axis=1, keepdims=True)
    pct = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0) * 100
    k = len(labels)
    fig, ax = plt.subplots(figsize=(6.6, 5.6))  # the ROC figure's size: they sit side by side
    im = ax.imshow(pct, cmap="Blues", vmin=0, vmax=100)
    font = 9 if k <= 6 else 7.5
    for i in range(k):
        for j in range(k):
            color = "white" if pct[i, j] > 55 else "#222"
            ax.text(j, i, f"{pct[i, j]:.0f}%\n{int(cm[i, j])}", ha="center", va="center", fontsize=font,
                    color=color, linespacing=1.1)
    ax.set_xticks(range(k), labels, rotation=40, ha="right")
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "Confusion matrix (row %, count)")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="% of true class")
    return fig_png(fig)


def roc_png(roc: dict[str, dict], *, title: str = "") -> bytes:
    """One-vs-rest ROC curve per emotion, AUC in the legend."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.2, 5.2))
    cmap = plt.get_cmap("tab10")
    for k, (label, r) in enumerate(sorted(roc.items(), key=lambda kv: -kv[1]["auc"])):
        ax.plot(r["fpr"], r["tpr"], color=cmap(k % 10), lw=1.6, label=f"{label} (AUC {r['auc']:.2f})")
    ax.plot([0, 1], [0, 1], color="#999", lw=1, ls="--", label="chance")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title or "ROC, one emotion vs the rest")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return fig_png(fig)


def history_png(histories: dict[str, list[dict]], *, title: str = "") -> bytes:
    """Training curves: train/validation loss and validation UA per epoch, one line per fold."""
    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    cmap = plt.get_cmap("tab10")
    for k, (fold, hist) in enumerate(histories.items()):
        ep = [h.get("epoch", i + 1) for i, h in enumerate(hist)]
        c = cmap(k % 10)
        if any("train_loss" in h for h in hist):
            a1.plot(ep, [h.get("train_loss", np.nan) for h in hist], color=c, lw=1.3, label=f"{fold} train")
        if any("val_loss" in h for h in hist):
            a1.plot(ep, [h.get("val_loss", np.nan) for h in hist], color=c, lw=1.3, ls="--", label=f"{fold} val")
        if any("val_ua" in h for h in hist):
            a2.plot(ep, [100 * h.get("val_ua", np.nan) for h in hist], color=c, lw=1.5, label=fold)
    a1.set_xlabel("epoch")
    a1.set_ylabel("loss")
    a1.set_title("loss (solid: train, dashed: validation)")
    a2.set_xlabel("epoch")
    a2.set_ylabel("validation UA (%)")
    a2.set_title("validation UA")
    from matplotlib.ticker import MaxNLocator

    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(histories) <= 6:
        a2.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig_png(fig)


def groups_png(groups: dict[str, dict], *, title: str, chance: float | None = None) -> bytes:
    """Horizontal bars of UA and accuracy per group (speaker or gender), sorted by UA."""
    plt = pyplot()
    names = sorted(groups, key=lambda g: groups[g]["ua"])
    n = len(names)
    fig, ax = plt.subplots(figsize=(8.5, 0.3 * n + 1.4))
    y = np.arange(n)
    bar = 0.38
    ax.barh(y + bar / 2, [100 * groups[g]["ua"] for g in names], height=bar, color=_BLUE, label="UA")
    ax.barh(y - bar / 2, [100 * groups[g]["wa"] for g in names], height=bar, color=_ORANGE, label="WA (accuracy)")
    ax.set_yticks(y, [f"{g} (n={groups[g]['n']})" for g in names], fontsize=8 if n > 20 else 9)
    ax.set_xlim(0, 100)
    ax.set_xlabel("%")
    if chance is not None:
        ax.axvline(100 * chance, color="#555", ls=":", lw=1, label=f"chance ({100 * chance:.0f}%)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.grid(axis="x", alpha=0.3)
    ax.set_ylim(-0.6, n - 0.4)
    return fig_png(fig)


def folds_png(folds: Sequence[dict], *, title: str = "") -> bytes:
    """UA, WA and macro-F1 per fold, grouped bars."""
    plt = pyplot()
    names = [f["name"] for f in folds]
    x = np.arange(len(names))
    w = 0.26
    fig, ax = plt.subplots(figsize=(max(4.5, 1.0 * len(names) + 2.5), 3.4))
    for k, (key, label, color) in enumerate((("ua", "UA", _BLUE), ("wa", "WA", _ORANGE), ("macro_f1", "macro-F1", "#5a9e5a"))):
        vals = [100 * f["metrics"][key] for f in folds]
        ax.bar(x + (k - 1) * w, vals, width=w, color=color, label=label)
    ax.set_xticks(x, names, rotation=20 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center")
    ax.set_xlim(-0.7, len(names) - 0.3)
    ax.set_ylim(0, 100)
    ax.set_ylabel("%")
    ax.set_title(title or "Scores per fold")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return fig_png(fig)
