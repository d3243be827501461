"""The per-worker inference service: one Predictor, a bounded thread pool, request timeouts.

Every model call runs off the event loop (``anyio.to_thread``) behind a
:class:`anyio.CapacityLimiter`, so at most ``max_concurrency`` inferences run at once per worker
and the loop stays free to accept uploads, answer health checks and drive streams.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal, TypeVar

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

        Raises
        ------
        ApiError
            504 if it (queueing included) takes longer than ``request_timeout``.
        """
        import anyio

        call = functools.partial(fn, *args, **kwargs)
        try:
            with anyio.fail_after(self.settings.request_timeout):
                return await anyio.to_thread.run_sync(call, limiter=self.limiter, abandon_on_cancel=True)
        except TimeoutError:
            raise ApiError(504, "timeout", f"inference took longer than {self.settings.request_timeout:g} s") from None

    # -- blocking work, run in threads -----------------------------------------------------------
    def _check_duration(self, seconds: float | None) -> None:
        limit = self.settings.max_duration
        if seconds is not None and seconds > limit:
            raise ApiError(413, "audio_too_long", f"audio is {seconds:.1f} s long; the limit is {limit:g} s")

    def decode(self, upload: Upload, *, channels: Literal["mix", "split"] = "mix"):
        """Audio of an upload at 16 kHz (``(n,)`` for mix, ``(channels, n)`` for split)."""
        self._check_duration(probe_duration(upload.data, name=upload.name))
        y = load(upload.data, channels=channels)
        self._check_duration(y.shape[-1] / SAMPLE_RATE)
        return y

    def predict(self, upload: Upload) -> dict:
        """``{emotion, confidence, uncertain, probabilities}`` of a whole clip."""
        p = self.predictor.predict(self.decode(upload))
        return {"emotion": p.label, "confidence": p.confidence, "uncertain": p.uncertain,
                "probabilities": p.probabilities}

    def analyze(self, upload: Upload, *, channels: Literal["mix", "split"] = "mix") -> dict:
        """The ``Analysis.to_dict()`` of an upload: what ``emovox analyze --out x.json`` writes."""
        from ..inference.analysis import analyze

        y = self.decode(upload, channels="split")
        return analyze(y, predictor=self.predictor, channels=channels, name=upload.name).to_dict()

    def model_info(self) -> dict:
        card = self.predictor.card
        return {"name": card.name, "version": card.version, "labels": list(card.labels),
                "model": card.raw, "card": card.card_text()}
