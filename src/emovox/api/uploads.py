"""Reading uploads safely: content-type check (415), size limit checked early and while reading
(413), multipart or raw body, and a duration probe before anything is decoded.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from ..errors import AudioError
from .errors import ApiError

__all__ = ["Upload", "read_upload", "probe_duration", "RAW_TYPES", "REQUEST_BODY"]

#: Media types accepted as a raw request body (besides any ``audio/*``).
RAW_TYPES = ("application/octet-stream",)
_MULTIPART = "multipart/form-data"
_MULTIPART_SLACK = 64 * 1024  # boundaries and part headers

#: The OpenAPI description of the request body of /v1/predict and /v1/analyze.
REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "description": "An audio file in any format ffmpeg reads: as the multipart field `file`, "
                       "or as the raw body with an `audio/*` or `application/octet-stream` type "
                       "(name it with the `X-Filename` header).",
        "content": {
            _MULTIPART: {"schema": {"type": "object", "required": ["file"],
                                    "properties": {"file": {"type": "string", "format": "binary"}}}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "audio/wav": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@dataclass(frozen=True)
class Upload:
    """The bytes of an uploaded file and a display name for it."""

    data: bytes
    name: str


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"upload larger than the limit of {limit / 2**20:.1f} MiB")


async def _read_body(request, limit: int, *, stated: int | None = None) -> bytes:
    """The request body, refusing (413) as soon as it exceeds ``limit`` bytes.

    ``stated`` is the limit the error message names (the upload limit, without multipart slack).
    """
    stated = limit if stated is None else stated
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, "bad_request", f"invalid Content-Length {declared!r}") from None
        if size > limit:
            raise _too_large(stated)
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise _too_large(stated)
        chunks.append(chunk)
    return b"".join(chunks)


def _safe_name(name: str | None) -> str:
    base = os.path.basename((name or "").replace("\\", "/")).strip()
    base = "".join(c for c in base if c.isprintable())[:200]
    return base or "upload"


async def read_upload(request, *, max_bytes: int) -> Upload:
    """Read the audio of a request: multipart field ``file`` or a raw ``audio/*`` body.

    Raises
    ------
    ApiError
        415 for another content type, 413 over ``max_bytes``, 422 with no file or no bytes.
    """
    media = _media_type(request.headers.get("content-type"))
    if media == _MULTIPART:
        body = await _read_body(request, max_bytes + _MULTIPART_SLACK, stated=max_bytes)
        data, name = await _parse_multipart(request, body)
    elif media.startswith("audio/") or media in RAW_TYPES:
        data = await _read_body(request, max_bytes)
        name = request.headers.get("x-filename") or request.query_params.get("filename") or "upload"
    else:
        raise ApiError(415, "unsupported_media_type",
                       f"content type {media or '(none)'!r} is not accepted; send multipart/form-data "
                       "with a 'file' field, or the raw audio as audio/* or application/octet-stream")
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    if not data:
        raise ApiError(422, "audio_error", "the upload is empty (0 bytes)")
    return Upload(data, _safe_name(name))


async def _parse_multipart(request, body: bytes) -> tuple[bytes, str]:
    from starlette.datastructures import UploadFile
    from starlette.requests import Request

    sent = False

    async def replay():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(request.scope, replay).form(max_files=1, max_fields=20)
    try:
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise ApiError(422, "missing_file", "multipart body has no file field named 'file'")
        return await part.read(), part.filename or "upload"
    finally:
        await form.close()


def probe_duration(data: bytes, *, name: str = "upload") -> float | None:
    """Duration in seconds read from the file's header (soundfile, else ffprobe); None if unknown.

    Nothing is decoded, so an upload that would decode to hours of audio is refused cheaply.

    Raises
    ------
    AudioError
        ffprobe finds no readable audio in it (so ffmpeg would not decode it either).
    """
    import soundfile as sf

    try:
        info = sf.info(io.BytesIO(data))
        return info.frames / info.samplerate if info.samplerate else None
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        pass
    exe = shutil.which("ffprobe")
    if exe is None:
        return None
    with tempfile.NamedTemporaryFile(prefix="emovox-", suffix=".bin") as tmp:
        tmp.write(data)
        tmp.flush()
        try:
            proc = subprocess.run([exe, "-v", "error", "-select_streams", "a:0", "-show_entries",
                                   "format=duration:stream=codec_type", "-of", "json", tmp.name],
                                  capture_output=True, timeout=30)
        except subprocess.TimeoutExpired:
            return None
    try:
        probe = json.loads(proc.stdout.decode() or "{}")
    except ValueError:
        probe = {}
    if proc.returncode != 0 or not probe.get("streams"):
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        reason = lines[-1].replace(tmp.name, "").strip(": ") if lines else "no audio stream"
        raise AudioError(f"{name}: not a readable audio file ({reason[:120]})")
    try:
        return float(probe.get("format", {}).get("duration"))
    except (TypeError, ValueError):
        return None
