"""``WS /v1/stream``: live emotion updates over a WebSocket.

Protocol (JSON text frames from the server):

1. on connect: ``{"type": "ready", "sample_rate": 16000, "format": "pcm_s16le", "channels": 1,
   "update_seconds", "window_seconds", "labels"}``
2. the client sends binary frames of 16 kHz mono PCM16 little-endian (100-500 ms each is
   typical); for every ``update_seconds`` of audio the server sends
   ``{"type": "update", "start", "end", "window_start", "emotion", "confidence", "uncertain",
   "probabilities", ...}`` where ``start``-``end`` is the audio this update covers (updates tile
   the stream) and the prediction looked at ``window_start``-``end``.
3. the client sends the text frame ``end``: the server sends the last ``update`` (if audio is
   left), ``{"type": "summary", "duration", "segments": [...], "summary": {...}}`` and closes
   (1000). ``ping`` is answered with ``{"type": "pong"}``.

A bad frame (odd byte count, empty or oversized chunk, unknown text) gets
``{"type": "error", "error": {"type", "message"}}`` and the stream goes on; auth failures,
overload, idle and length limits get an error frame and a close. An inference that times out
closes the stream too (1013, try again later): the abandoned call may still be running, and
the next chunk must not run beside it.
"""

from __future__ import annotations

import hmac
import json
import logging

from ..audio import SAMPLE_RATE
from ..errors import EmovoxError
from ..inference.streaming import StreamingPredictor
from .errors import ApiError, error_body, status_of

__all__ = ["stream_endpoint", "MAX_CHUNK_SECONDS"]

log = logging.getLogger("emovox.api")

#: Largest binary frame accepted, in seconds of audio.
MAX_CHUNK_SECONDS = 5.0
_POLICY, _TOO_BIG, _TRY_LATER, _GOING_AWAY, _INTERNAL = 1008, 1009, 1013, 1001, 1011


class _Closed(Exception):
    """The client went away."""


async def _send(ws, message: dict) -> None:
    from starlette.websockets import WebSocketDisconnect

    try:
        await ws.send_text(json.dumps(message))
    except (WebSocketDisconnect, OSError, RuntimeError) as exc:  # RuntimeError: send after close
        raise _Closed from exc


async def _error(ws, kind: str, message: str, *, close: int | None = None) -> None:
    await _send(ws, {"type": "error", **error_body(kind, message)})
    if close is not None:
        await ws.close(code=close)


def _command(text: str) -> str:
    text = text.strip()
    if text.startswith("{"):
        try:
            text = str(json.loads(text).get("type", ""))
        except (ValueError, AttributeError):
            return ""
    return text.lower()


async def stream_endpoint(websocket) -> None:
    """Serve one live stream (see the module docstring for the protocol)."""
    await websocket.accept()
    service = getattr(websocket.app.state, "service", None)
    settings = websocket.app.state.settings
    try:
        if settings.api_key is not None:
            # Browsers cannot set headers on a WebSocket, so the key may also come as ?api_key=
            key = websocket.headers.get("x-api-key") or websocket.query_params.get("api_key") or ""
            if not hmac.compare_digest(key, settings.api_key):
                return await _error(websocket, "unauthorized", "missing or wrong X-API-Key header (or api_key query "
                                    "parameter)", close=_POLICY)
        if service is None:
            return await _error(websocket, "unavailable", "the model is not loaded", close=_TRY_LATER)
        if service.streams >= settings.max_streams:
            return await _error(websocket, "too_many_streams",
                                f"this worker serves {settings.max_streams} streams at most", close=_TRY_LATER)
        service.streams += 1
        try:
            await _serve(websocket, service, settings)
        finally:
            service.streams -= 1
    except _Closed:
        return
    except Exception:  # never let one stream take the worker down; tell the client if it's still there
        log.exception("stream failed")
        try:
            await _error(websocket, "internal_error", "internal server error", close=_INTERNAL)
        except Exception:
            pass


async def _serve(ws, service, settings) -> None:
    import anyio

    live = StreamingPredictor(service.predictor, update_seconds=settings.stream_update_seconds)
    max_chunk = int(MAX_CHUNK_SECONDS * SAMPLE_RATE) * 2
    await _send(ws, {"type": "ready", "sample_rate": SAMPLE_RATE, "format": "pcm_s16le", "channels": 1,
                     "update_seconds": settings.stream_update_seconds,
                     "window_seconds": service.predictor.card.window_seconds,
                     "labels": list(service.predictor.labels)})
    while True:
        with anyio.move_on_after(settings.stream_idle_timeout) as idle:
            message = await ws.receive()
        if idle.cancelled_caught:
            return await _error(ws, "idle_timeout", f"no data for {settings.stream_idle_timeout:g} s", close=_GOING_AWAY)
        if message["type"] == "websocket.disconnect":
            return  # closed without "end": nobody is left to send the summary to
        data, text = message.get("bytes"), message.get("text")
        if data is not None:
            if len(data) > max_chunk:
                await _error(ws, "bad_chunk", f"chunk of {len(data)} bytes; send at most {MAX_CHUNK_SECONDS:g} s "
                             f"({max_chunk} bytes) per frame")
                continue
            if live.duration + len(data) / 2 / SAMPLE_RATE > settings.max_stream_seconds:
                return await _error(ws, "stream_too_long",
                                    f"a stream may carry {settings.max_stream_seconds:g} s of audio", close=_TOO_BIG)
            if not await _updates(ws, service, live.feed_pcm16, data):
                return
        elif text is not None:
            command = _command(text)
            if command == "end":
                if not await _updates(ws, service, live.flush):
                    return
                await _send(ws, {"type": "summary", "duration": round(live.duration, 3),
                                 "segments": live.segments, "summary": live.summary()})
                return await ws.close(code=1000)
            if command == "ping":
                await _send(ws, {"type": "pong"})
            else:
                await _error(ws, "bad_message", f"unknown text frame {text[:40]!r}; send binary PCM16 audio, "
                             "'end' or 'ping'")


async def _updates(ws, service, fn, *args) -> bool:
    """Run ``fn`` (feed/flush) in the inference pool and send its segments as updates.

    Returns False when the stream has been closed (an inference timed out).
    """
    try:
        segments = await service.run(fn, *args)
    except EmovoxError as exc:
        await _error(ws, "bad_chunk" if status_of(exc)[0] < 500 else status_of(exc)[1], str(exc))
        return True
    except ApiError as exc:
        if exc.status == 504:
            await _error(ws, exc.type, f"{exc.message}; the stream is closed: reconnect and send "
                         "smaller or fewer chunks, or raise EMOVOX_REQUEST_TIMEOUT", close=_TRY_LATER)
            return False
        await _error(ws, exc.type, exc.message)
        return True
    for seg in segments:
        await _send(ws, {"type": "update", **seg})
    return True
