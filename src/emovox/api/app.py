"""The FastAPI application: ``create_app(settings)``.

Routes (all JSON; errors are ``{"error": {"type", "message"}}``):

- ``POST /v1/predict``  audio -> ``{emotion, confidence, uncertain, probabilities}``
- ``POST /v1/analyze``  audio (``?channels=mix|split``, ``?speakers=2|auto``) -> segments + summary, the JSON of
  ``emovox analyze --out x.json``
- ``WS   /v1/stream``   16 kHz mono PCM16 chunks in, ``update`` messages out, ``summary`` on "end"
- ``GET  /v1/health``, ``GET /v1/model`` (model.json + card.md), ``/docs``, ``/openapi.json``

The model is loaded once per worker process (lifespan); inference runs in threads.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations, and
# they name classes imported inside create_app().
import hmac
from contextlib import asynccontextmanager
from typing import Literal

from .. import __version__
from .._lazy import require
from .errors import ApiError, install_handlers
from .settings import Settings

__all__ = ["create_app", "app_from_env"]

_DESCRIPTION = """Speech emotion recognition: audio in, per-segment emotions out.

Send audio in any format ffmpeg reads, as the multipart field `file` or as a raw
`audio/*` / `application/octet-stream` body. Live audio goes over the WebSocket `/v1/stream`
(16 kHz mono PCM16 little-endian binary frames; send the text frame `end` for the summary).
"""


def _schemas() -> tuple[type, ...]:
    """Pydantic models of the responses (built lazily: pydantic comes with the api extra)."""
    from pydantic import BaseModel, ConfigDict, Field

    class ErrorDetail(BaseModel):
        type: str = Field(examples=["audio_error"])
        message: str

    class ErrorBody(BaseModel):
        error: ErrorDetail

    class PredictResult(BaseModel):
        emotion: str = Field(description="the most probable label, or 'no_speech'", examples=["neutral"])
        confidence: float = Field(ge=0, le=1)
        uncertain: bool = Field(description="low top probability or a small lead over the runner-up")
        probabilities: dict[str, float] = Field(description="label -> calibrated probability (empty for no_speech)")

    class Segment(BaseModel):
        model_config = ConfigDict(extra="allow")
        file: str
        channel: str
        start: float
        end: float
        emotion: str
        confidence: float
        uncertain: bool
        probabilities: dict[str, float]

    class AnalyzeResult(BaseModel):
        model_config = ConfigDict(extra="allow")
        file: str
        duration: float
        channels: list[str]
        labels: list[str]
        model: dict
        segments: list[Segment]
        summary: dict

    class Health(BaseModel):
        status: Literal["ok"]
        version: str
        model: dict
        limits: dict

    class ModelInfo(BaseModel):
        name: str
        version: str
        labels: list[str]
        model: dict = Field(description="model.json")
        card: str = Field(description="card.md (Markdown)")

    return ErrorBody, PredictResult, AnalyzeResult, Health, ModelInfo


def _error_responses(ErrorBody, *codes: int) -> dict:
    text = {400: "bad parameter", 401: "missing or wrong X-API-Key", 413: "upload or audio too large",
            415: "unsupported content type", 422: "unreadable or empty audio, or invalid request",
            503: "model unavailable", 504: "inference timed out"}
    return {c: {"model": ErrorBody, "description": text.get(c, "error")} for c in codes}


def create_app(settings: Settings | None = None, *, predictor=None):
    """Build the FastAPI app.

    Parameters
    ----------
    settings : Settings, optional
        Default: :meth:`Settings.from_env`.
    predictor : emovox.inference.Predictor, optional
        An already loaded predictor to serve (embedding the app, tests); default: the model
        ``settings.model_dir`` names, loaded when the app starts.

    Returns
    -------
    fastapi.FastAPI
    """
    fastapi = require("fastapi", extra="api")
    from fastapi import Depends, Query, Request, WebSocket
    from fastapi.responses import JSONResponse, RedirectResponse
    from fastapi.security import APIKeyHeader

    from .service import Service
    from .streaming import stream_endpoint
    from .uploads import REQUEST_BODY, read_upload

    settings = settings or Settings.from_env()
    ErrorBody, PredictResult, AnalyzeResult, Health, ModelInfo = _schemas()

    @asynccontextmanager
    async def lifespan(app):
        import anyio

        if predictor is not None:
            app.state.service = Service(predictor, settings)
        else:
            app.state.service = await anyio.to_thread.run_sync(Service.load, settings)
        yield

    app = fastapi.FastAPI(title="emovox", version=__version__, description=_DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    install_handlers(app)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["Content-Type", "X-API-Key"])

    key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="needed only when the server sets EMOVOX_API_KEY")

    def check_key(key: str | None = Depends(key_header)) -> None:
        if settings.api_key is not None and not (key and hmac.compare_digest(key, settings.api_key)):
            raise ApiError(401, "unauthorized", "missing or wrong X-API-Key header",
                           headers={"WWW-Authenticate": "X-API-Key"})

    def service(request: Request) -> "Service":
        return request.app.state.service

    @app.get("/", include_in_schema=False)
    async def root():
        return RedirectResponse("/docs")

    @app.get("/v1/health", response_model=Health, tags=["meta"])
    async def health(request: Request):
        """Liveness and the loaded model (no API key needed)."""
        card = service(request).predictor.card
        return {"status": "ok", "version": __version__,
                "model": {"name": card.name, "version": card.version}, "limits": settings.public()}

    @app.get("/v1/model", response_model=ModelInfo, tags=["meta"],
             dependencies=[Depends(check_key)], responses=_error_responses(ErrorBody, 401))
    async def model(request: Request):
        """The model card: model.json and card.md of the loaded model."""
        return service(request).model_info()

    async def upload_and_run(request: Request, method: str, **kwargs) -> JSONResponse:
        svc = service(request)
        import anyio

        try:
            with anyio.fail_after(settings.request_timeout):
                upload = await read_upload(request, max_bytes=settings.max_upload_bytes)
        except TimeoutError:
            raise ApiError(504, "timeout", "the upload took too long") from None
        return JSONResponse(await svc.run(getattr(svc, method), upload, **kwargs))

    errors = _error_responses(ErrorBody, 400, 401, 413, 415, 422, 504)

    @app.post("/v1/predict", response_model=PredictResult, tags=["inference"], openapi_extra=REQUEST_BODY,
              dependencies=[Depends(check_key)], responses=errors)
    async def predict(request: Request):
        """Emotion of a whole clip (VAD on: silence, noise or music give `no_speech`)."""
        return await upload_and_run(request, "predict")

    @app.post("/v1/analyze", response_model=AnalyzeResult, tags=["inference"], openapi_extra=REQUEST_BODY,
              dependencies=[Depends(check_key)], responses=errors)
    async def analyze(request: Request,
                      channels: Literal["mix", "split"] = Query("mix", description="split: each channel of a stereo call alone"),
                      speakers: str | None = Query(None, pattern=r"^([1-6]|auto)$",
                                                   description="mono recordings: tell 1-6 voices (or auto) apart; "
                                                               "channels become speaker 1, speaker 2, ...")):
        """Timeline of per-segment emotions and a summary: the JSON of `emovox analyze --out x.json`."""
        count: int | Literal["auto"] | None = (None if speakers is None else "auto" if speakers == "auto"
                                                else int(speakers))  # the Query pattern has checked it
        return await upload_and_run(request, "analyze", channels=channels, speakers=count)

    @app.websocket("/v1/stream")
    async def stream(websocket: WebSocket):
        """Live audio in (16 kHz mono PCM16 frames), emotion updates out; see emovox.api.streaming."""
        await stream_endpoint(websocket)

    return app


def app_from_env():
    """Factory for ``uvicorn --factory emovox.api.app:app_from_env`` (what ``emovox serve`` runs)."""
    return create_app(Settings.from_env())
