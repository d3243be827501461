"""``emovox serve``: run the REST and streaming API with uvicorn (needs the ``api`` extra).

Options become ``EMOVOX_*`` environment variables, so every worker process builds the same
settings (:meth:`emovox.api.settings.Settings.from_env`). The API key is read from
``$EMOVOX_API_KEY`` only, never from the command line (it would show in ``ps``).
"""

from __future__ import annotations

import argparse
import os

__all__ = ["add_arguments", "run"]

#: option attribute -> environment variable
_ENV = {
    "model": "EMOVOX_MODEL",
    "threads": "EMOVOX_THREADS",
    "max_concurrency": "EMOVOX_MAX_CONCURRENCY",
    "max_upload_mb": "EMOVOX_MAX_UPLOAD_MB",
    "max_duration": "EMOVOX_MAX_DURATION",
    "timeout": "EMOVOX_REQUEST_TIMEOUT",
    "cors": "EMOVOX_CORS_ORIGINS",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes, each loads the model once (default: 1)")
    parser.add_argument("--model", metavar="DIR", help="model directory (default: the shipped model)")
    parser.add_argument("--int8", action="store_true", help="use the int8-quantised model")
    parser.add_argument("--threads", type=int, metavar="N", help="ONNX Runtime threads per request (default: 1)")
    parser.add_argument("--max-concurrency", type=int, metavar="N",
                        help="inferences at once per worker (default: CPU cores / workers)")
    parser.add_argument("--max-upload-mb", type=float, metavar="MB", help="largest upload (default: 25)")
    parser.add_argument("--max-duration", type=float, metavar="S", help="longest audio in seconds (default: 600)")
    parser.add_argument("--timeout", type=float, metavar="S", help="request timeout in seconds (default: 60)")
    parser.add_argument("--cors", metavar="ORIGINS", help="comma-separated CORS origins (default: CORS off)")
    parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    parser.epilog = ("Environment: EMOVOX_API_KEY (require header X-API-Key), EMOVOX_MODEL, "
                     "EMOVOX_CORS_ORIGINS, EMOVOX_MAX_STREAMS, EMOVOX_STREAM_IDLE. Docs at http://HOST:PORT/docs")


def run(args: argparse.Namespace) -> int:
    from .._lazy import require
    from ..api.settings import Settings
    from ..errors import ParameterError

    uvicorn = require("uvicorn", extra="api")
    require("fastapi", extra="api")
    if args.workers < 1:
        raise ParameterError(f"--workers must be >= 1, got {args.workers}")
    if not 0 < args.port < 65536:
        raise ParameterError(f"--port must be 1..65535, got {args.port}")
    for attr, var in _ENV.items():
        value = getattr(args, attr)
        if value is not None:
            os.environ[var] = str(value)
    if args.int8:
        os.environ["EMOVOX_INT8"] = "1"
    if not os.environ.get("EMOVOX_MAX_CONCURRENCY"):  # share the cores between the workers
        os.environ["EMOVOX_MAX_CONCURRENCY"] = str(max(1, (os.cpu_count() or 1) // args.workers))
    settings = Settings.from_env()  # fail here, once, on a bad value
    from ..models.directory import load_card

    card = load_card(settings.model_dir)  # and on a missing model, before forking workers
    print(f"emovox serve: model {card.name} {card.version}, {args.workers} worker(s), "
          f"http://{args.host}:{args.port}/docs", flush=True)
    uvicorn.run("emovox.api.app:app_from_env", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level=args.log_level, proxy_headers=False,
                ws_max_size=1 << 20)
    return 0
