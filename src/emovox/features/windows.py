"""How a clip becomes model windows (numpy only): shared by training, prediction and inference.

A clip's log-mel ``[n_mels, frames]`` is cut into windows of ``window`` frames every ``hop``
frames; the last window is aligned to the clip's end so every frame is covered. A clip shorter
than one window is tiled ("wrap" padding) up to the window length, so the model never sees
digital silence it was not trained on. The clip-level logits are the mean of the windows' logits.
"""

from __future__ import annotations

import numpy as np

__all__ = ["seconds_to_frames", "window_starts", "fit_length", "windows", "trim_silence", "chunk_bounds"]


def seconds_to_frames(seconds: float, *, sr: int = 16000, hop_length: int = 160) -> int:
    """Log-mel frames of ``seconds`` of audio: ``1 + round(seconds * sr) // hop_length``.

    The one formula, and the count :func:`emovox.features.logmel.logmel` gives for that many
    samples (centred frames), so a window of ``seconds`` is a slice of a clip's log-mel.

    Examples
    --------
    >>> seconds_to_frames(3.0), seconds_to_frames(2.999), seconds_to_frames(1.5) - 1
    (301, 300, 150)
    """
    return 1 + int(round(seconds * sr)) // int(hop_length)


def chunk_bounds(n_samples: int, *, chunk: int) -> list[tuple[int, int]]:
    """Equal chunks of at most ``chunk`` samples covering ``n_samples`` (at least one chunk).

    How a ``chunks`` model (the Whisper encoder) covers a clip, in training and prediction alike.

    Examples
    --------
    >>> chunk_bounds(10, chunk=4)
    [(0, 3), (3, 7), (7, 10)]
    """
    n = max(1, -(-int(n_samples) // int(chunk)))
    bounds = np.linspace(0, n_samples, n + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def window_starts(n_frames: int, *, window: int, hop: int) -> list[int]:
    """Start frames of the windows that cover ``n_frames`` frames.

    Examples
    --------
    >>> window_starts(700, window=300, hop=150)
    [0, 150, 300, 400]
    >>> window_starts(120, window=300, hop=150)
    [0]
    """
    if n_frames <= window:
        return [0]
    starts = list(range(0, n_frames - window + 1, hop))
    if starts[-1] + window < n_frames:
        starts.append(n_frames - window)
    return starts


def fit_length(x: np.ndarray, length: int) -> np.ndarray:
    """Tile ``x`` along its last axis until it is at least ``length`` long, then cut to ``length``."""
    n = x.shape[-1]
    if n >= length:
        return x[..., :length]
    reps = -(-length // max(n, 1))
    return np.concatenate([x] * reps, axis=-1)[..., :length]


def windows(logmel: np.ndarray, *, window: int, hop: int) -> np.ndarray:
    """Cut a log-mel ``[n_mels, frames]`` into ``[n_windows, n_mels, window]`` (see module doc).

    Examples
    --------
    >>> windows(np.zeros((64, 700), np.float32), window=300, hop=150).shape
    (4, 64, 300)
    """
    starts = window_starts(logmel.shape[-1], window=window, hop=hop)
    return np.stack([fit_length(logmel[:, s : s + window], window) for s in starts])


def trim_silence(y: np.ndarray, *, top_db: float = 40.0, frame: int = 400, hop: int = 160,
                 margin: int = 1600) -> np.ndarray:
    """Cut leading and trailing audio quieter than ``top_db`` below the loudest frame.

    A cheap stand-in for the VAD the inference pipeline runs, so corpus clips (which start and
    end with up to a second of room tone) look like the speech segments the model will see.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    top_db : float
    frame, hop, margin : int
        Frame length, hop and the samples kept either side of the speech, at 16 kHz.

    Returns
    -------
    np.ndarray [shape=(m,)], m <= n; ``y`` itself when nothing would be left.
    """
    if y.shape[-1] < frame:
        return y
    frames = np.lib.stride_tricks.sliding_window_view(y, frame)[::hop]
    energy = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(energy > energy.max() - top_db)
    if loud.size == 0:
        return y
    start = max(0, loud[0] * hop - margin)
    end = min(y.shape[-1], loud[-1] * hop + frame + margin)
    return y[start:end]
