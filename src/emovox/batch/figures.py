"""Figures of the dataset report, each returned as PNG bytes (matplotlib, Agg, imported lazily).

Every function takes the per-clip table of :func:`emovox.batch.report_data.clip_table`
(a pandas DataFrame with ``corpus, label, speaker, gender, intensity, duration, rms_db, peak_db,
f0_median, ...``).
"""

from __future__ import annotations

import numpy as np

from .html import emotion_colors, emotion_order, fig_png, plt_module

__all__ = ["overview_png", "emotions_png", "speakers_png", "groups_png", "distributions_png",
           "pitch_png", "examples_png"]

_CORPUS_COLORS = ("#3b6fb6", "#e08a2c", "#5a9e5a", "#b0413e", "#7d5ba6", "#8c6d46", "#d4a017", "#4aa3a3")


_GROUP_ORDER = ("female", "male", "low", "normal", "medium", "high", "strong", "unspecified")


def _patch(color: str, label: str, alpha: float = 1.0):
    from matplotlib.patches import Patch

    return Patch(facecolor=color, alpha=alpha, label=label)


def _corpus_colors(names) -> dict[str, str]:
    return {c: _CORPUS_COLORS[i % len(_CORPUS_COLORS)] for i, c in enumerate(names)}


def _stacked(ax, table, colors: dict[str, str], *, horizontal: bool = False) -> None:
    """Bars of ``table`` (rows: categories, columns: corpora), stacked by corpus."""
    bottom = np.zeros(len(table))
    for corpus in table.columns:
        vals = table[corpus].to_numpy(dtype=float)
        if horizontal:
            ax.barh(table.index.astype(str), vals, left=bottom, color=colors[corpus], label=corpus)
        else:
            ax.bar(table.index.astype(str), vals, bottom=bottom, color=colors[corpus], label=corpus)
        bottom += vals
    for i, total in enumerate(bottom):
        if horizontal:
            ax.text(total, i, f" {int(total):,}", va="center", fontsize=8)
        else:
            ax.text(i, total, f"{int(total):,}", ha="center", va="bottom", fontsize=8)


def _clean(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def overview_png(df) -> bytes:
    """Clips, hours and the duration distribution per corpus."""
    plt = plt_module()
    corpora = list(dict.fromkeys(df["corpus"]))
    colors = _corpus_colors(corpora)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    clips = df.groupby("corpus", sort=False).size().reindex(corpora)
    hours = df.groupby("corpus", sort=False)["duration"].sum().reindex(corpora) / 3600
    for ax, vals, title, fmt in ((axes[0], clips, "clips per corpus", "{:,.0f}"),
                                 (axes[1], hours, "hours of audio per corpus", "{:.2f} h")):
        ax.bar(corpora, vals.to_numpy(), color=[colors[c] for c in corpora])
        for i, v in enumerate(vals.to_numpy()):
            ax.text(i, v, fmt.format(v), ha="center", va="bottom", fontsize=9)
        ax.set_title(title)
        _clean(ax)
    data = [df.loc[df["corpus"] == c, "duration"].dropna().to_numpy() for c in corpora]
    box = axes[2].boxplot(data, tick_labels=corpora, patch_artist=True, showfliers=False, widths=0.6)
    for patch, c in zip(box["boxes"], corpora, strict=True):
        patch.set_facecolor(colors[c])
        patch.set_alpha(0.75)
    axes[2].set_title("clip duration (s), no outliers")
    _clean(axes[2])
    fig.tight_layout()
    return fig_png(fig)


def emotions_png(df) -> bytes:
    """Clips per emotion, stacked by corpus, and seconds of audio per emotion."""
    plt = plt_module()
    corpora = list(dict.fromkeys(df["corpus"]))
    order = emotion_order(df["label"].unique())
    table = df.pivot_table(index="label", columns="corpus", values="path", aggfunc="count", fill_value=0)
    table = table.reindex(index=order, columns=corpora, fill_value=0)
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [3, 2]})
    _stacked(axes[0], table, _corpus_colors(corpora))
    axes[0].set_title("clips per emotion, by corpus")
    axes[0].legend(fontsize=8, frameon=False)
    hours = df.groupby("label")["duration"].sum().reindex(order) / 60
    axes[1].barh(order[::-1], hours.to_numpy()[::-1], color=emotion_colors(order[::-1]))
    axes[1].set_title("minutes of audio per emotion")
    for ax in axes:
        _clean(ax)
    axes[1].grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig_png(fig)


def speakers_png(df) -> bytes:
    """Clips per speaker, grouped and coloured by corpus."""
    plt = plt_module()
    corpora = list(dict.fromkeys(df["corpus"]))
    colors = _corpus_colors(corpora)
    counts = df.groupby(["corpus", "speaker"], sort=False).size().reset_index(name="n")
    n = len(counts)
    fig, ax = plt.subplots(figsize=(12, 3.8))
    x = np.arange(n)
    ax.bar(x, counts["n"], color=[colors[c] for c in counts["corpus"]], width=0.85)
    names = [s.split(":", 1)[-1] for s in counts["speaker"]]
    if n <= 120:
        ax.set_xticks(x, names, rotation=90, fontsize=6 if n > 40 else 8)
    else:
        ax.set_xticks([])
        ax.set_xlabel(f"{n} speakers")
    handles = [_patch(colors[c], f"{c} ({int((counts['corpus'] == c).sum())} speakers)") for c in corpora]
    ax.legend(handles=handles, fontsize=8, frameon=False, ncol=min(4, len(corpora)))
    ax.set_xlim(-0.7, n - 0.3)
    ax.set_title("clips per speaker")
    _clean(ax)
    fig.tight_layout()
    return fig_png(fig)


def groups_png(df) -> bytes:
    """Clips per gender and per intensity, stacked by corpus (missing values as 'unspecified')."""
    plt = plt_module()
    corpora = list(dict.fromkeys(df["corpus"]))
    colors = _corpus_colors(corpora)
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.4))
    for ax, col, title in ((axes[0], "gender", "clips per gender"), (axes[1], "intensity", "clips per intensity")):
        vals = df[col].fillna("unspecified").replace("", "unspecified")
        table = (df.assign(_g=vals).pivot_table(index="_g", columns="corpus", values="path", aggfunc="count",
                                               fill_value=0).reindex(columns=corpora, fill_value=0))
        rank = {g: i for i, g in enumerate(_GROUP_ORDER)}
        table = table.loc[sorted(table.index, key=lambda g: (rank.get(g, len(rank) - 1.5), g))]
        _stacked(ax, table, colors, horizontal=True)
        ax.invert_yaxis()
        ax.set_title(title)
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
    axes[1].legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig_png(fig)


def _violins(ax, df, column: str, order: list[str], title: str) -> None:
    data = [df.loc[df["label"] == e, column].dropna().to_numpy() for e in order]
    keep = [i for i, d in enumerate(data) if len(d) > 1]
    if not keep:
        ax.set_title(f"{title} (no data)")
        return
    parts = ax.violinplot([data[i] for i in keep], positions=keep, showmedians=True, widths=0.8)
    for body, i in zip(parts["bodies"], keep, strict=True):
        body.set_facecolor(emotion_colors([order[i]])[0])
        body.set_alpha(0.7)
    for key in ("cmedians", "cmins", "cmaxes", "cbars"):
        if key in parts:
            parts[key].set_color("#333")
            parts[key].set_linewidth(0.8)
    ax.set_xticks(range(len(order)), order, rotation=30, ha="right")
    ax.set_title(title)
    _clean(ax)


def distributions_png(df) -> bytes:
    """Loudness per emotion: RMS level and peak amplitude (dBFS), as violins."""
    plt = plt_module()
    order = emotion_order(df["label"].unique())
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    _violins(axes[0], df, "rms_db", order, "RMS level per emotion (dBFS)")
    _violins(axes[1], df, "peak_db", order, "peak amplitude per emotion (dBFS)")
    fig.tight_layout()
    return fig_png(fig)


def pitch_png(df) -> bytes:
    """Median F0 per clip, per emotion, female and male side by side (box plots)."""
    plt = plt_module()
    order = emotion_order(df["label"].unique())
    genders = [g for g in ("female", "male") if (df["gender"] == g).any()] or ["all"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [3, 2]})
    ax = axes[0]
    width = 0.8 / len(genders)
    shades = {"female": "#c0504d", "male": "#4f81bd", "all": "#777777"}
    for k, g in enumerate(genders):
        sub = df if g == "all" else df[df["gender"] == g]
        data = [sub.loc[sub["label"] == e, "f0_median"].dropna().to_numpy() for e in order]
        pos = [i + (k - (len(genders) - 1) / 2) * width for i in range(len(order))]
        keep = [i for i, d in enumerate(data) if len(d)]
        if not keep:
            continue
        box = ax.boxplot([data[i] for i in keep], positions=[pos[i] for i in keep], widths=width * 0.9,
                         patch_artist=True, showfliers=False)
        for patch in box["boxes"]:
            patch.set_facecolor(shades[g])
            patch.set_alpha(0.7)
    ax.set_xticks(range(len(order)), order, rotation=30, ha="right")
    ax.set_title("median F0 per clip (Hz), by gender")
    ax.legend(handles=[_patch(shades[g], g, alpha=0.7) for g in genders], fontsize=8, frameon=False)
    _clean(ax)
    _violins(axes[1], df, "voiced_share", order, "voiced share of frames")
    fig.tight_layout()
    return fig_png(fig)


def _envelope(y: np.ndarray, *, sr: int, bins: int = 1500) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min and max of ``y`` in ``bins`` equal slices (what a waveform plot shows, 40x fewer points)."""
    n = max(1, len(y) // bins)
    m = len(y) // n
    if m == 0:
        return np.zeros(1), np.zeros(1), np.zeros(1)
    blocks = y[: m * n].reshape(m, n)
    return blocks.min(axis=1), blocks.max(axis=1), (np.arange(m) + 0.5) * n / sr


def examples_png(examples: list[tuple[str, str, np.ndarray]], *, sr: int = 16000) -> bytes:
    """A waveform and a log-mel spectrogram per emotion: ``[(label, caption, y), ...]``."""
    from ..features.logmel import LogMelConfig, logmel

    plt = plt_module()
    n = len(examples)
    fig, axes = plt.subplots(n, 2, figsize=(12, 1.55 * n + 0.4), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1.25]})
    cfg = LogMelConfig()
    for row, (label, caption, y) in enumerate(examples):
        color = emotion_colors([label])[0]
        lo, hi, t = _envelope(y, sr=sr)
        ax = axes[row, 0]
        ax.fill_between(t, lo, hi, color=color, linewidth=0)
        ax.set_xlim(0, max(len(y) / sr, 1e-3))
        lim = max(0.05, float(np.max(np.abs(y))) if len(y) else 1.0)
        ax.set_ylim(-lim, lim)
        ax.set_ylabel(label, fontsize=10, color=color, fontweight="bold")
        ax.tick_params(labelsize=7)
        ax.text(0.01, 0.96, caption, transform=ax.transAxes, fontsize=7.5, va="top", color="#444",
                bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1})
        spec = logmel(y, config=cfg) if len(y) >= cfg.n_fft else np.zeros((cfg.n_mels, 1))
        axes[row, 1].imshow(spec, origin="lower", aspect="auto", cmap="magma",
                            extent=(0, len(y) / sr, 0, cfg.n_mels))
        axes[row, 1].set_ylabel("mel bin", fontsize=7)
        axes[row, 1].tick_params(labelsize=7)
    axes[0, 0].set_title("waveform (first 4 s)", fontsize=9)
    axes[0, 1].set_title("log-mel spectrogram (64 bands, 10 ms frames)", fontsize=9)
    axes[-1, 0].set_xlabel("seconds", fontsize=8)
    axes[-1, 1].set_xlabel("seconds", fontsize=8)
    fig.tight_layout(h_pad=0.6)
    return fig_png(fig)
