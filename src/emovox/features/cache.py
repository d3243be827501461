"""A disk cache of per-file feature vectors, keyed by file content and feature configuration.

Layout: ``<root>/<config hash>/config.json`` describes the configuration (set, rate, library
versions); ``<root>/<config hash>/<sha1[:2]>/<sha1>.npy`` holds the vector of the file whose
bytes hash to ``sha1``. A renamed or copied file is a hit; an edited file is a miss. Every write
goes to a temporary file in the same folder and is renamed into place, so a crash or a parallel
run never leaves a half-written vector.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import AudioError

__all__ = ["FeatureCache", "cache_root", "default_cache_dir", "file_sha1", "atomic_write"]

_CHUNK = 1 << 20


def cache_root() -> Path:
    """The root of every emovox cache: ``$EMOVOX_CACHE``, else ``~/.cache/emovox``."""
    return Path(os.environ.get("EMOVOX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "emovox"))


def default_cache_dir() -> Path:
    """``$EMOVOX_CACHE/features``, else ``~/.cache/emovox/features``."""
    return cache_root() / "features"


def file_sha1(path: str | os.PathLike) -> str:
    """SHA-1 of a file's bytes (hex).

    Raises
    ------
    AudioError
        The file is missing or unreadable.
    """
    h = hashlib.sha1()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
    except FileNotFoundError:
        raise AudioError(f"{os.fspath(path)}: no such file") from None
    except IsADirectoryError:
        raise AudioError(f"{os.fspath(path)}: is a directory, not an audio file") from None
    except OSError as exc:
        raise AudioError(f"{os.fspath(path)}: cannot read ({exc.strerror})") from None
    return h.hexdigest()


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_array(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write one ``.npy`` array atomically (no pickle): a cache entry is whole or absent."""
    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)

    atomic_write(path, write)


class FeatureCache:
    """Vectors of one feature configuration under ``root``.

    Parameters
    ----------
    root : path
        The cache folder (:func:`default_cache_dir` when None).
    config : dict
        The configuration (``emovox.features.registry.feature_config``); must hold ``"hash"``.
    dim : int
        The vector length; a stored vector of another length is treated as missing.
    """

    def __init__(self, root: str | os.PathLike | None, config: dict, *, dim: int) -> None:
        self.dir = Path(root if root is not None else default_cache_dir()) / config["hash"]
        self.config = config
        self.dim = dim

    def _path(self, digest: str) -> Path:
        return self.dir / digest[:2] / f"{digest}.npy"

    def get(self, digest: str) -> np.ndarray | None:
        """The stored vector of content ``digest``, or None (missing, unreadable or wrong length)."""
        path = self._path(digest)
        try:
            vec = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        return vec if vec.shape == (self.dim,) else None

    def put(self, digest: str, vec: np.ndarray) -> None:
        """Store ``vec`` [shape=(dim,)] for content ``digest`` (atomically)."""
        meta = self.dir / "config.json"
        if not meta.exists():
            atomic_write(meta, lambda tmp: Path(tmp).write_text(json.dumps(self.config, indent=1, sort_keys=True)))

        def write(tmp: str) -> None:
            with open(tmp, "wb") as fh:
                np.save(fh, np.asarray(vec, dtype=np.float64), allow_pickle=False)

        atomic_write(self._path(digest), write)

    def __len__(self) -> int:
        return sum(1 for _ in self.dir.glob("*/*.npy")) if self.dir.is_dir() else 0
