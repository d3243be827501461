#!/usr/bin/env bash
# Build the emovox API image without a registry and call it (issue 14 item 6). For Debian 12 hosts
# where podman builds with --isolation chroot but cannot run containers through its OCI runtime
# (setrlimit RLIMIT_NOFILE: Operation not permitted), so the image runs under `buildah run`.
# Too slow for CI (minutes: debootstrap, ffmpeg, pip); run it by hand, as root:
#
#   nice -n 19 ionice -c3 scripts/build_image.sh      # WORK=/var/tmp/emovox-image by default
#   SAMPLE=some.wav scripts/build_image.sh            # also POST that file to /v1/predict
#
# 1. a local base image like python:3.11-slim from Debian packages (debootstrap, Debian's
#    Python 3.11 and pip, pip allowed to install system-wide as in the official image), imported
#    as localhost/emovox-base:bookworm (skipped when it exists; REBASE=1 to remake it);
# 2. podman build --isolation chroot --format docker --build-arg BASE=localhost/emovox-base:bookworm .
#    (docker format: the OCI format drops the Dockerfile's HEALTHCHECK);
#    pip inside the build reaches PyPI itself; the host's CA bundle is bind-mounted over the
#    image's for the build only (a TLS-inspecting egress proxy), so it does not end up in the image;
# 3. buildah run --isolation chroot: emovox serve, then GET /v1/health and POST /v1/predict.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/var/tmp/emovox-image}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
HOST_CA=${HOST_CA:-/etc/ssl/certs/ca-certificates.crt}
PORT=${PORT:-8000}
BASE=localhost/emovox-base:bookworm
IMAGE=localhost/emovox:latest
mkdir -p "$WORK"

need=()
for tool in podman buildah debootstrap curl; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; fi

if [ -n "${REBASE:-}" ] || ! podman image exists "$BASE"; then
  start=$(date +%s)
  rm -rf "$WORK/rootfs"
  debootstrap --variant=minbase --include=python3,python3-pip,ca-certificates \
    bookworm "$WORK/rootfs" "$MIRROR"
  cat > "$WORK/rootfs/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY_MIRROR bookworm-security main
EOF
  chroot "$WORK/rootfs" sh -c 'ln -sf python3 /usr/bin/python && ln -sf pip3 /usr/bin/pip \
    && rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED && apt-get clean && rm -rf /var/lib/apt/lists/*'
  tar -C "$WORK/rootfs" -c . | podman import --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' - "$BASE"
  rm -rf "$WORK/rootfs"
  echo "base image took $(( $(date +%s) - start )) s"
fi

start=$(date +%s)
ca=()
[ -f "$HOST_CA" ] && ca=(--volume "$HOST_CA:/etc/ssl/certs/ca-certificates.crt:ro")
podman build --isolation chroot --format docker "${ca[@]}" --build-arg BASE="$BASE" -t "$IMAGE" .
echo "build took $(( $(date +%s) - start )) s"
podman image inspect "$IMAGE" --format 'image size: {{.Size}} bytes'
podman images "$IMAGE"

ctr=$(buildah from "$IMAGE")
server=
cleanup() {
  [ -n "$server" ] && kill -- "-$server" 2>/dev/null || true
  sleep 1
  buildah rm "$ctr" >/dev/null || true
}
trap cleanup EXIT
# setsid: the server gets its own process group, so the cleanup stops uvicorn and its workers too.
setsid buildah run --isolation chroot --network host "$ctr" -- \
  emovox serve --host 127.0.0.1 --port "$PORT" --workers 1 > "$WORK/serve.log" 2>&1 &
server=$!
up=
for _ in $(seq 1 300); do
  if curl -fsS "localhost:$PORT/v1/health" > "$WORK/health.json" 2>/dev/null; then up=1; break; fi
  kill -0 "$server" 2>/dev/null || break
  sleep 1
done
cat "$WORK/serve.log"
[ -n "$up" ] || { echo "the server did not answer /v1/health" >&2; exit 1; }
echo "GET /v1/health:"; cat "$WORK/health.json"; echo

# a 2 s 220 Hz tone, written by the image's own Python (the host needs none)
buildah run --isolation chroot "$ctr" -- python -c '
import sys, wave, math, struct
w = wave.open(sys.stdout.buffer, "wb"); w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 220 * i / 16000))) for i in range(32000)))
w.close()' > "$WORK/tone.wav"
for f in "$WORK/tone.wav" ${SAMPLE:+"$SAMPLE"}; do
  echo "POST /v1/predict $(basename "$f"):"
  curl -fsS -F file=@"$f" "localhost:$PORT/v1/predict"
  echo
done
