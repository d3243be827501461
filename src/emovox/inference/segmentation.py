"""From per-frame speech decisions to speech turns, and from turns to model windows.

:class:`Segmenter` is a streaming state machine over 30 ms VAD frames: it merges turns separated
by short gaps, drops blips, caps runaway turns, and emits a turn as soon as no later frame can
change it. Its output depends only on the frame decisions, never on how the frames were blocked,
so a file analysed in 10 s blocks gives the same turns as one analysed whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError
from .vad import FRAME_SECONDS

__all__ = ["SegmentConfig", "Segmenter", "mask_to_spans", "split_turn"]


@dataclass(frozen=True)
class SegmentConfig:
    """Turn-building rules (seconds).

    merge_gap : gaps shorter than this between speech runs are bridged.
    min_speech : turns shorter than this are dropped (clicks, breaths).
    max_turn : a turn that grows longer is cut here, which bounds memory on endless "speech".
    """

    merge_gap: float = 0.3
    min_speech: float = 0.25
    max_turn: float = 60.0

    def __post_init__(self) -> None:
        for name, value, ok, allowed in (("merge_gap", self.merge_gap, self.merge_gap >= 0, ">= 0"),
                                         ("min_speech", self.min_speech, self.min_speech >= 0, ">= 0"),
                                         ("max_turn", self.max_turn, self.max_turn > 1.0, "> 1.0")):
            if not ok:
                raise ParameterError(f"SegmentConfig.{name} must be {allowed} seconds, got {value}")


def _runs(mask: np.ndarray) -> np.ndarray:
    """[start, end) frame index pairs of the True runs of ``mask``; shape [k, 2]."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(m[1:] != m[:-1])
    return edges.reshape(-1, 2)


class Segmenter:
    """Streaming turn builder over VAD frames; emits ``(start_frame, end_frame)`` pairs.

    Examples
    --------
    >>> seg = Segmenter()
    >>> mask = np.r_[np.zeros(10), np.ones(20), np.zeros(5), np.ones(20), np.zeros(40)].astype(bool)
    >>> seg.feed(mask[:30]) + seg.feed(mask[30:]) + seg.flush()
    [(10, 55)]
    """

    def __init__(self, config: SegmentConfig = SegmentConfig()):
        self.config = config
        self._gap = int(np.ceil(config.merge_gap / FRAME_SECONDS - 1e-9))  # merge if gap < this
        self._min = int(np.ceil(config.min_speech / FRAME_SECONDS - 1e-9))  # keep if len >= this
        self._max = int(round(config.max_turn / FRAME_SECONDS))
        self._seen = 0
        self._open: list[int] | None = None

    def _close(self, out: list[tuple[int, int]]) -> None:
        if self._open is not None and self._open[1] - self._open[0] >= self._min:
            out.append((self._open[0], self._open[1]))
        self._open = None

    def feed(self, mask: np.ndarray) -> list[tuple[int, int]]:
        """Consume the next frames' decisions; return the turns that are now final."""
        out: list[tuple[int, int]] = []
        for a, b in _runs(mask) + self._seen:
            a, b = int(a), int(b)
            if self._open is not None and a - self._open[1] < self._gap:
                self._open[1] = b
            else:
                self._close(out)
                self._open = [a, b]
            while self._open[1] - self._open[0] > self._max:
                out.append((self._open[0], self._open[0] + self._max))
                self._open[0] += self._max
        self._seen += len(mask)
        if self._open is not None and self._seen - self._open[1] >= self._gap:
            self._close(out)
        return out

    def flush(self) -> list[tuple[int, int]]:
        """Close the open turn at the end of the input."""
        out: list[tuple[int, int]] = []
        self._close(out)
        return out

    @property
    def pending_start(self) -> int | None:
        """First frame of the turn still open (its audio must be kept), or None."""
        return None if self._open is None else self._open[0]


def mask_to_spans(mask: np.ndarray, config: SegmentConfig = SegmentConfig()) -> list[tuple[float, float]]:
    """Turns of a whole mask as ``(start, end)`` seconds."""
    seg = Segmenter(config)
    frames = seg.feed(mask) + seg.flush()
    return [(a * FRAME_SECONDS, b * FRAME_SECONDS) for a, b in frames]


def split_turn(start: int, end: int, *, window: int, hop: int) -> list[tuple[int, int, int, int]]:
    """Cut a turn (samples) into timeline cells, each with the model window that covers it.

    A turn no longer than ``window`` is one cell seen whole. A longer one is cut into cells of
    about ``hop`` samples (the last takes the remainder); the model sees ``window`` samples
    centred on each cell, shifted to stay inside the turn, so neighbouring windows overlap by
    ``window - hop`` while the timeline cells do not overlap.

    Returns
    -------
    list of (cell_start, cell_end, window_start, window_end), in samples

    Examples
    --------
    >>> split_turn(0, 100, window=30, hop=15)[:2]
    [(0, 15, 0, 30), (15, 30, 7, 37)]
    """
    length = end - start
    if length <= window:
        return [(start, end, start, end)]
    n = max(1, int(round(length / hop)))
    bounds = [start + k * hop for k in range(n)] + [end]
    cells = []
    for c0, c1 in zip(bounds[:-1], bounds[1:], strict=True):
        w0 = (c0 + c1) // 2 - window // 2
        w0 = min(max(w0, start), end - window)
        cells.append((c0, c1, w0, w0 + window))
    return cells
