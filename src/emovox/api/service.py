"""The per-worker inference service: one Predictor, a bounded thread pool, request timeouts.

Every model call runs off the event loop (``anyio.to_thread``) behind a
:class:`anyio.CapacityLimiter`, so at most ``max_concurrency`` inferences run at once per worker
and the loop stays free to accept uploads, answer health checks and drive streams. A request
that times out gets its 504 at once, but a thread cannot be stopped: its slot stays taken until
the thread has finished, so abandoned work still counts against ``max_concurrency``.
"""

from __future__ import annotations

import functools
import io
import threading
from collections.abc import Callable
from typing import Any, Literal, TypeVar, cast

from ..audio import SAMPLE_RATE, load
from ..inference.predictor import Predictor
from .errors import ApiError
from .settings import Settings
from .uploads import Upload, probe_duration

__all__ = ["Service"]

T = TypeVar("T")


class Service:
    """What the routes call: decode, check limits, predict or analyze, in a worker thread.

    Parameters
    ----------
    predictor : Predictor
    settings : Settings
    """

    def __init__(self, predictor: Predictor, settings: Settings):
        import anyio

        self.predictor = predictor
        self.settings = settings
        self.limiter = anyio.CapacityLimiter(settings.max_concurrency)
        self.streams = 0

    @classmethod
    def load(cls, settings: Settings) -> Service:
        """Load the model named by ``settings`` (blocking: call it from a thread)."""
        predictor = Predictor.load(settings.model_dir, int8=settings.int8, threads=settings.threads)
        return cls(predictor, settings)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in a worker thread, at most ``max_concurrency`` at once.

        The slot is held until the thread has finished, even after a timeout answered the
        request: the work it abandons still runs and still counts.

        Raises
        ------
        ApiError
            504 if it (queueing included) takes longer than ``request_timeout``.
        """
        import anyio
        from anyio.lowlevel import current_token

        slot = _Slot(self.limiter, current_token())
        call = functools.partial(fn, *args, **kwargs)
        try:
            with anyio.fail_after(self.settings.request_timeout):
                await self.limiter.acquire_on_behalf_of(slot)
                slot.acquired = True
                result = await anyio.to_thread.run_sync(slot.run, call, abandon_on_cancel=True)
                return cast(T, result)  # None only for work the request left before it began
        except TimeoutError:
            raise ApiError(504, "timeout", f"inference took longer than {self.settings.request_timeout:g} s") from None
        finally:
            slot.leave()

    # -- blocking work, run in threads -----------------------------------------------------------
    def _check_duration(self, seconds: float | None) -> None:
        limit = self.settings.max_duration
        if seconds is not None and seconds > limit:
            raise ApiError(413, "audio_too_long", f"audio is {seconds:.1f} s long; the limit is {limit:g} s")

    def decode(self, upload: Upload, *, channels: Literal["mix", "split"] = "mix"):
        """Audio of an upload at 16 kHz (``(n,)`` for mix, ``(channels, n)`` for split)."""
        self._check_duration(probe_duration(upload.data, name=upload.name))
        named = io.BytesIO(upload.data)
        named.name = upload.name  # errors name the upload, not "<n bytes>"
        y = load(named, channels=channels)
        self._check_duration(y.shape[-1] / SAMPLE_RATE)
        return y

    def predict(self, upload: Upload) -> dict:
        """``{emotion, confidence, uncertain, probabilities}`` of a whole clip."""
        p = self.predictor.predict(self.decode(upload))
        return {"emotion": p.label, "confidence": p.confidence, "uncertain": p.uncertain,
                "probabilities": p.probabilities}

    def analyze(self, upload: Upload, *, channels: Literal["mix", "split"] = "mix",
                speakers: int | Literal["auto"] | None = None) -> dict:
        """The ``Analysis.to_dict()`` of an upload: what ``emovox analyze --out x.json`` writes."""
        from ..inference.analysis import analyze

        y = self.decode(upload, channels="split")
        return analyze(y, predictor=self.predictor, channels=channels, name=upload.name,
                       speakers=speakers).to_dict()

    def model_info(self) -> dict:
        card = self.predictor.card
        return {"name": card.name, "version": card.version, "labels": list(card.labels),
                "model": card.raw, "card": card.card_text()}


class _Slot:
    """One ``max_concurrency`` slot, released once both the request and its thread are done.

    The request side (:meth:`leave`, on the event loop) and the thread side (:meth:`run`) each
    mark themselves done under a lock; whichever is last releases the slot. A thread that had
    not started when the request left never runs its work.
    """

    def __init__(self, limiter: Any, token: Any):
        self.limiter = limiter
        self.token = token
        self.acquired = False
        self._lock = threading.Lock()
        self._started = self._done = self._left = False

    def run(self, call: Callable[[], T]) -> T | None:
        with self._lock:
            if self._left:  # the request timed out before a thread picked the work up
                return None
            self._started = True
        try:
            return call()
        finally:
            with self._lock:
                self._done = True
                release = self._left
            if release:  # the request has left (timed out): give the slot back from the loop
                import anyio.from_thread

                try:
                    anyio.from_thread.run_sync(self.limiter.release_on_behalf_of, self, token=self.token)
                except Exception:  # the event loop is gone: nothing is left to release to
                    pass

    def leave(self) -> None:
        if not self.acquired:
            return
        with self._lock:
            self._left = True
            release = not self._started or self._done
        if release:
            self.limiter.release_on_behalf_of(self)
