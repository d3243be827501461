"""Feature matrices for many files, cached per file so a re-run computes only what changed."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .._progress import progress as _progress
from ..audio import SAMPLE_RATE, load
from ..errors import AudioError, EmovoxError, ParameterError
from .cache import FeatureCache, file_sha1
from .registry import extract, feature_config, feature_names

__all__ = ["extract_many", "extract_batch", "Extraction"]

@dataclass
class Extraction:
    """The result of :func:`extract_batch`.

    ``X`` [shape=(n, d)] has a NaN row for each file in ``errors`` (``on_error="skip"``).
    """

    X: np.ndarray
    names: list[str]
    paths: list[str]
    hits: int = 0
    computed: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


def _path_of(source) -> str:
    path = getattr(source, "path", source)
    if not isinstance(path, (str, os.PathLike)):
        raise ParameterError(f"expected a path or an Item, got {type(source).__name__}")
    return os.fspath(path)


def _compute(path: str, set: str, sr: int) -> np.ndarray:
    """The feature vector of one file; any failure becomes an AudioError naming the file."""
    y = load(path, sr=sr)
    try:
        return extract(y, set=set, sr=sr)
    except EmovoxError as exc:
        raise AudioError(f"{path}: {exc}") from None
    except Exception as exc:  # a library failing on odd audio: name the file, keep going if asked
        raise AudioError(f"{path}: feature extraction failed ({type(exc).__name__}: {exc})") from None


def _worker(args: tuple[str, str, int]) -> tuple[np.ndarray | None, str | None]:
    try:
        return _compute(*args), None
    except AudioError as exc:
        return None, str(exc)


def extract_batch(
    sources: Iterable,
    *,
    set: str = "handcrafted",
    sr: int = SAMPLE_RATE,
    cache_dir: str | os.PathLike | None | Literal[False] = None,
    n_jobs: int = 1,
    progress: bool = True,
    on_error: Literal["raise", "skip"] = "raise",
) -> Extraction:
    """Like :func:`extract_many`, and also report cache hits, computations, errors and time."""
    if on_error not in ("raise", "skip"):
        raise ParameterError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if int(n_jobs) < 1:
        raise ParameterError(f"n_jobs must be >= 1, got {n_jobs}")
    t0 = time.perf_counter()
    paths = [_path_of(s) for s in sources]
    names = feature_names(set)
    cache = None if cache_dir is False else FeatureCache(cache_dir, feature_config(set, sr=sr), dim=len(names))
    X = np.full((len(paths), len(names)), np.nan)
    out = Extraction(X, names, paths)

    def fail(i: int, message: str) -> None:
        if on_error == "raise":
            raise AudioError(message)
        out.errors.append((paths[i], message))

    def store(i: int, digest: str | None, vec: np.ndarray) -> None:
        X[i] = vec
        out.computed += 1
        if cache is not None and digest is not None:
            cache.put(digest, vec)

    todo: list[tuple[int, str | None]] = []
    desc = set if n_jobs == 1 else f"{set}: cache"  # in parallel, this pass only hashes and looks up
    for i, path in enumerate(_progress(paths, total=len(paths), desc=desc, enabled=None if progress else False)):
        digest = None
        if cache is not None:
            try:
                digest = file_sha1(path)
            except AudioError as exc:
                fail(i, str(exc))
                continue
            vec = cache.get(digest)
            if vec is not None:
                X[i] = vec
                out.hits += 1
                continue
        if n_jobs > 1:
            todo.append((i, digest))
            continue
        try:
            store(i, digest, _compute(path, set, sr))
        except AudioError as exc:
            fail(i, str(exc))
    if todo:
        _run_parallel(todo, paths, set, sr, int(n_jobs), progress, store, fail)
    out.seconds = time.perf_counter() - t0
    return out


def _run_parallel(todo: Sequence[tuple[int, str | None]], paths: list[str], set: str, sr: int,
                  n_jobs: int, progress: bool, store, fail) -> None:
    jobs = [(paths[i], set, sr) for i, _ in todo]
    with ProcessPoolExecutor(max_workers=min(n_jobs, len(jobs))) as pool:
        results = pool.map(_worker, jobs, chunksize=max(1, min(16, len(jobs) // (4 * n_jobs))))
        for (i, digest), (vec, err) in zip(todo, _progress(results, total=len(jobs), desc=set,
                                                           enabled=None if progress else False), strict=True):
            if err is not None:
                fail(i, err)
            else:
                store(i, digest, vec)


def extract_many(
    sources: Iterable,
    *,
    set: str = "handcrafted",
    sr: int = SAMPLE_RATE,
    cache_dir: str | os.PathLike | None | Literal[False] = None,
    n_jobs: int = 1,
    progress: bool = True,
    on_error: Literal["raise", "skip"] = "raise",
) -> np.ndarray:
    """Feature vectors of many audio files, one row per file, cached on disk per file.

    Each file is loaded with :func:`emovox.audio.load` (16 kHz mono) and passed to
    :func:`emovox.features.extract`. Vectors are cached under ``cache_dir`` (default
    ``$EMOVOX_CACHE/features`` or ``~/.cache/emovox/features``; ``False`` turns the cache off)
    by the SHA-1 of the file's bytes and a hash of the feature configuration (set, rate,
    library versions), so a re-run computes only new or changed files.

    Parameters
    ----------
    sources : iterable of paths or :class:`emovox.corpora.Item`
    set : str
        A name of :data:`emovox.features.FEATURE_SETS` or a ``+`` combination.
    n_jobs : int
        Worker processes for the files not in the cache.
    progress : bool
        Show a progress bar (only on a terminal).
    on_error : {"raise", "skip"}
        ``"raise"``: the first unreadable file raises :class:`AudioError` naming it. ``"skip"``:
        its row is NaN (use :func:`extract_batch` to get the list of errors).

    Returns
    -------
    np.ndarray [shape=(n_files, len(feature_names(set)))], float64

    Examples
    --------
    >>> X = extract_many(["a.wav", "b.flac"], set="logmel_stats")  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (2, 128)
    """
    return extract_batch(sources, set=set, sr=sr, cache_dir=cache_dir, n_jobs=n_jobs,
                         progress=progress, on_error=on_error).X
