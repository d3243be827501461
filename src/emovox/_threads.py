"""Process-wide thread settings: numpy's BLAS limited to one thread, once per process."""

from __future__ import annotations

import threading

__all__ = ["limit_blas_threads", "blas_threads"]

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
