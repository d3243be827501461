"""Thread settings: numpy's BLAS limited to one thread once per process; a cap for one block of work."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from .errors import ParameterError

__all__ = ["limit_blas_threads", "blas_threads", "thread_limit"]

_lock = threading.Lock()
_done = False


def limit_blas_threads() -> None:
    """Limit numpy's BLAS to one thread for the rest of the process (idempotent, thread-safe).

    The log-mel's small matrix products run 4-5x slower in CPU time with multi-threaded
    OpenBLAS (its threads spin), and ONNX Runtime has its own thread pool anyway. The limit is
    set once and never restored: a save-and-restore per call, overlapping in a server's worker
    threads, would leave whatever count the last call to leave restored. Without threadpoolctl
    it does nothing.
    """
    global _done
    if _done:
        return
    with _lock:
        if _done:
            return
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _done = True
            return
        ThreadpoolController().limit(limits=1, user_api="blas")
        _done = True


def blas_threads() -> list[int]:
    """The thread counts of the BLAS libraries loaded in this process (empty without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [int(i["num_threads"]) for i in threadpool_info() if i.get("user_api") == "blas"]


def thread_limit(threads: int | None) -> contextlib.AbstractContextManager[Any]:
    """A context capping BLAS/OpenMP threads at ``threads`` (threadpoolctl), or doing nothing for None.

    For a training job that owns its process (a protocol fold, a teacher fold), not for server
    threads: the cap is saved and restored around the block.
    """
    if threads is None:
        return contextlib.nullcontext()
    if int(threads) < 1:
        raise ParameterError(f"threads must be >= 1, got {threads}")
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=int(threads))
