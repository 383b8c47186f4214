#!/usr/bin/env bash
# Build, without any registry, the base images the compose lab needs (CI and machines with no registry):
#
#   local/debian:bookworm        debootstrap --variant=minbase of Debian bookworm, imported as an image,
#                                also tagged debian:bookworm-slim
#   python:3.11-slim             stand-in FROM it: Debian's python3 (3.11), pip, venv, and this host's CA
#                                bundle so pip can verify TLS from inside a build container
#   local/ci-servers:bookworm    stand-in for the redis, haproxy, coredns and prometheus images: Debian's
#                                redis-server, haproxy, NSD and prometheus
#
# Images that already exist are kept (delete them to rebuild). Needs root, debootstrap and a Docker engine.
# None of this is used by a normal `docker compose up`, which pulls the real images.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export DOCKER_BUILDKIT=0 # the Debian engine has no buildx; the classic builder is enough here

# The Debian mirror apt on this machine is configured with (deb822 or one-line format).
mirror=${DEBIAN_MIRROR:-$(
    { grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
      grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}'; } |
        grep -v security | head -n1 || true
)}
mirror=${mirror:-http://deb.debian.org/debian}

have() { docker image inspect "$1" >/dev/null 2>&1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! have local/debian:bookworm; then
    echo "base-images: debootstrap bookworm from $mirror"
    start=$SECONDS
    debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
        { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
    # Keep the image small like the official slim images: no apt lists, no docs.
    rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin
    tar -C "$work/rootfs" -c . | docker import - local/debian:bookworm >/dev/null
    rm -rf "$work/rootfs"
    echo "base-images: local/debian:bookworm in $((SECONDS - start)) s"
fi
docker tag local/debian:bookworm debian:bookworm-slim

if ! have python:3.11-slim; then
    mkdir "$work/python"
    cp /etc/ssl/certs/ca-certificates.crt "$work/python/host-ca-certificates.crt"
    cp "$here/python-standin.Dockerfile" "$work/python/Dockerfile"
    docker build -q --network host -t python:3.11-slim "$work/python" >/dev/null
    echo "base-images: python:3.11-slim stand-in built"
fi

# An older stand-in without prometheus (added for the compose `prometheus` service) is built again.
if ! have local/ci-servers:bookworm ||
    ! docker run --rm --entrypoint sh local/ci-servers:bookworm -c 'command -v prometheus' >/dev/null 2>&1; then
    docker build -q --network host -t local/ci-servers:bookworm -f "$here/ci-servers.Dockerfile" "$here" >/dev/null
    echo "base-images: local/ci-servers:bookworm built"
fi
