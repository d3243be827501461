# emovox API server: CPU only, no torch (the predict path is numpy + ONNX Runtime).
#   docker build -t emovox .
#   docker run --rm -p 8000:8000 emovox                  # http://localhost:8000/docs
#   docker run --rm -p 8000:8000 -e EMOVOX_API_KEY=... emovox --workers 4
# The web app image: docker build --build-arg EXTRAS=ui -t emovox-ui . (see docker-compose.yml)
# Without a registry: scripts/build_image.sh makes a local Debian base (debootstrap) and builds
# with --build-arg BASE=localhost/emovox-base:bookworm (podman/buildah, --isolation chroot).
ARG BASE=python:3.11-slim
FROM ${BASE}

ARG EXTRAS=api
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# ffmpeg decodes the formats libsndfile does not (m4a, mp4, webm, aac, ...)
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 --shell /usr/sbin/nologin emovox

# The same install as the README's "Serving" section: pip install ".[api]"
WORKDIR /tmp/emovox-src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install ".[${EXTRAS}]" \
 && ! pip show torch >/dev/null 2>&1 \
 && cd / && rm -rf /tmp/emovox-src \
 && emovox --version

USER emovox
WORKDIR /home/emovox
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/v1/health', timeout=4).status != 200)"
ENTRYPOINT ["emovox", "serve", "--host", "0.0.0.0", "--port", "8000"]
CMD ["--workers", "2"]
