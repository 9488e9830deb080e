#!/usr/bin/env bash
# Builds the desktop image (docker/Dockerfile) into the engine the `docker` backend talks to:
# DOCKER_HOST, else /var/run/docker.sock, else the podman service of scripts/setup-podman.sh.
# Usage: scripts/build-image.sh [TAG]   (default cua/desktop:dev; FORCE=1 rebuilds regardless)
# Skips the build when TAG exists with the same inputs hash (label cua.inputs).
set -euo pipefail

TAG=${1:-cua/desktop:dev}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PODMAN_SOCK=unix:///run/cua/podman.sock
WRAPPER=/usr/local/libexec/cua/runc-norlimit

answers() { curl -sf --max-time 3 --unix-socket "${1#unix://}" http://d/_ping >/dev/null 2>&1; }

# Which engine: the one DOCKER_HOST names, or the first local socket that answers.
host=${DOCKER_HOST:-}
if [ -z "$host" ]; then
  for candidate in unix:///var/run/docker.sock "$PODMAN_SOCK"; do
    if answers "$candidate"; then host=$candidate; break; fi
  done
fi
if [ -z "$host" ]; then
  echo "no Docker Engine API answers: run scripts/setup-podman.sh first" >&2
  exit 1
fi
engine=docker
if [[ $host == unix://* ]] &&
   curl -sf --max-time 3 --unix-socket "${host#unix://}" http://d/version | grep -q Podman; then
  engine=podman  # podman's service shares its image store with the podman CLI
fi

# The build context: exactly what the Dockerfile copies (README.md stubbed if the repo lacks one).
ctx=$(mktemp -d /tmp/cua-image.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
cp "$ROOT/docker/Dockerfile" "$ROOT/pyproject.toml" "$ctx/"
if [ -f "$ROOT/README.md" ]; then cp "$ROOT/README.md" "$ctx/"; else echo "# cua" >"$ctx/README.md"; fi
(cd "$ROOT" && find cua -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 |
  xargs -0 cp --parents -t "$ctx")

base_arg=()
[ $engine = podman ] && base_arg=(--build-arg BASE_IMAGE=cua/base:bookworm)
# The host's CA bundle, lent to pip's step as a build secret (for HTTPS-inspecting proxies).
ca=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
secret=()
[ -s "$ca" ] && secret=(--secret "id=pip-ca,src=$ca")

# Inputs hash: everything in the context (Dockerfile, pyproject.toml, cua/) but
# README.md, and the base image argument.
hash=$(cd "$ctx" && {
  find Dockerfile pyproject.toml cua -type f -print0 | LC_ALL=C sort -z |
    xargs -0 sha256sum
  echo "${base_arg[*]:-}"
} | sha256sum | cut -c1-16)

if [ $engine = podman ]; then
  have=$(podman image inspect --format '{{ index .Labels "cua.inputs" }}' "$TAG" 2>/dev/null || true)
else
  have=$(DOCKER_HOST=$host docker image inspect \
    --format '{{ index .Config.Labels "cua.inputs" }}' "$TAG" 2>/dev/null || true)
fi
if [ "$have" = "$hash" ] && [ -z "${FORCE:-}" ]; then
  echo "$TAG is up to date (inputs $hash)"
  exit 0
fi

echo "building $TAG with $engine (inputs $hash)"
start=$(date +%s)
if [ $engine = podman ]; then
  podman build --network host --runtime "$WRAPPER" "${base_arg[@]}" "${secret[@]}" \
    --label "cua.inputs=$hash" -t "$TAG" -f "$ctx/Dockerfile" "$ctx"
else
  DOCKER_HOST=$host docker build "${secret[@]}" \
    --label "cua.inputs=$hash" -t "$TAG" -f "$ctx/Dockerfile" "$ctx"
fi
echo "built $TAG in $(($(date +%s) - start)) s"
