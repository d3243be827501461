#!/usr/bin/env bash
# Build the emovox API image without a registry and call it (issue 14 item 6). NOT YET RUN: written
# for Debian 12 hosts where podman builds with --isolation chroot but cannot run containers
# (setrlimit RLIMIT_NOFILE: Operation not permitted), so the image runs under `buildah run`.
#
#   sudo nice -n 19 scripts/build_image.sh            # WORK=/var/tmp/emovox-image by default
#
# 1. a local base image like python:3.11-slim from Debian packages (debootstrap, Python 3.11,
#    pip allowed to install system-wide as in the official image);
# 2. podman build --isolation chroot --build-arg BASE=localhost/emovox-base:bookworm .
#    (pip inside the build needs an index: PIP_INDEX_URL / PIP_FIND_LINKS are passed through);
# 3. buildah run --isolation chroot: emovox serve, then GET /v1/health and POST /v1/predict.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/var/tmp/emovox-image}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
BASE=localhost/emovox-base:bookworm
IMAGE=localhost/emovox:latest
mkdir -p "$WORK"

need=()
for tool in podman buildah debootstrap curl; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; fi

if ! podman image exists "$BASE"; then
  rm -rf "$WORK/rootfs"
  debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
    bookworm "$WORK/rootfs" "$MIRROR"
  chroot "$WORK/rootfs" sh -c 'ln -sf python3 /usr/bin/python && ln -sf pip3 /usr/bin/pip \
    && rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED && apt-get clean && rm -rf /var/lib/apt/lists/*'
  tar -C "$WORK/rootfs" -c . | podman import --change 'CMD ["python3"]' - "$BASE"
fi

start=$(date +%s)
podman build --isolation chroot --build-arg BASE="$BASE" \
  ${PIP_INDEX_URL:+--build-arg PIP_INDEX_URL="$PIP_INDEX_URL"} -t "$IMAGE" .
echo "build took $(( $(date +%s) - start )) s"
podman image inspect "$IMAGE" --format 'image size: {{.Size}} bytes'

ctr=$(buildah from "$IMAGE")
trap 'kill "$server" 2>/dev/null || true; buildah rm "$ctr" >/dev/null' EXIT
buildah run --isolation chroot --network host "$ctr" -- emovox serve --host 127.0.0.1 --port 8000 --workers 1 &
server=$!
for _ in $(seq 1 120); do curl -fsS localhost:8000/v1/health && break; sleep 1; done
echo
python3 - "$WORK/tone.wav" <<'EOF'
import sys, wave, math, struct
with wave.open(sys.argv[1], "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
    w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 220 * i / 16000))) for i in range(32000)))
EOF
curl -fsS -F file=@"$WORK/tone.wav" localhost:8000/v1/predict
echo
