"""Every error the API returns has one JSON shape: ``{"error": {"type": ..., "message": ...}}``.

emovox's own exceptions map to 4xx (bad audio is never a 500); anything unexpected becomes a
500 whose body says nothing about the server's internals.
"""

from __future__ import annotations

import logging

from ..errors import (
    AudioError,
    DataError,
    EmovoxError,
    MissingDependencyError,
    ModelError,
    ParameterError,
)

__all__ = ["ApiError", "error_body", "status_of", "install_handlers"]

log = logging.getLogger("emovox.api")

#: emovox exception class -> (HTTP status, error type). First match wins.
_STATUS: tuple[tuple[type[EmovoxError], int, str], ...] = (
    (AudioError, 422, "audio_error"),
    (DataError, 422, "data_error"),
    (ParameterError, 400, "parameter_error"),
    (MissingDependencyError, 503, "missing_dependency"),
    (ModelError, 503, "model_error"),
)

_HTTP_TYPES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type",
    422: "validation_error", 429: "too_many_requests", 503: "unavailable", 504: "timeout",
}


class ApiError(Exception):
    """An error with its HTTP status, raised by the routes and turned into the JSON shape."""

    def __init__(self, status: int, type: str, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.headers = headers


def error_body(type: str, message: str) -> dict:
    return {"error": {"type": type, "message": message}}


def status_of(exc: EmovoxError) -> tuple[int, str]:
    """HTTP status and error type of an emovox exception."""
    for cls, status, kind in _STATUS:
        if isinstance(exc, cls):
            return status, kind
    return 400, "emovox_error"


def install_handlers(app) -> None:
    """Register the exception handlers on a FastAPI ``app``."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    def respond(status: int, kind: str, message: str, headers=None) -> JSONResponse:
        return JSONResponse(error_body(kind, message), status_code=status, headers=headers)

    async def on_api_error(request, exc: ApiError):
        return respond(exc.status, exc.type, exc.message, exc.headers)

    async def on_emovox_error(request, exc: EmovoxError):
        status, kind = status_of(exc)
        if status >= 500:
            log.error("%s: %s", kind, exc)
        return respond(status, kind, str(exc))

    async def on_http(request, exc: HTTPException):
        kind = _HTTP_TYPES.get(exc.status_code, "http_error")
        return respond(exc.status_code, kind, str(exc.detail), getattr(exc, "headers", None))

    async def on_validation(request, exc: RequestValidationError):
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "body"))
            parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg")))
        return respond(422, "validation_error", "; ".join(parts) or "invalid request")

    async def on_unexpected(request, exc: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return respond(500, "internal_error", "internal server error")

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(EmovoxError, on_emovox_error)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(Exception, on_unexpected)
