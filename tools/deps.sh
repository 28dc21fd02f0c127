#!/usr/bin/env bash
# Installs the Debian 12 packages goulettefs needs to build, run and test.
# Idempotent: when every package is already installed it downloads nothing
# and does not even refresh the package lists.
#
# Usage: scripts/deps.sh [build|test]   (default: test, which is a superset)
set -euo pipefail

want=${1:-test}

build_pkgs=(
    build-essential meson ninja-build pkg-config
    libfuse3-dev fuse3
    libprotobuf-c-dev protobuf-c-compiler
    libleveldb-dev libuv1-dev libnghttp2-dev libjansson-dev
    check libsubunit-dev
)
test_pkgs=(
    python3-grpcio python3-grpc-tools
    inotify-tools attr nghttp2-client
    clang-format
)

case "$want" in
build) pkgs=("${build_pkgs[@]}") ;;
test) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
*)
    echo "usage: $0 [build|test]" >&2
    exit 2
    ;;
esac

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
        grep -q '^install ok installed$'; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=sudo
    else
        echo "deps: missing packages: ${missing[*]}" >&2
        echo "deps: run as root (or install sudo) to install them" >&2
        exit 1
    fi
else
    SUDO=
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "deps: apt-get not found; goulettefs supports Debian 12." >&2
    echo "deps: install these packages by hand: ${missing[*]}" >&2
    exit 1
fi

echo "deps: installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update -qq; then
    echo "deps: apt-get update failed (no network to the Debian mirror?)" >&2
    exit 1
fi
if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >/dev/null; then
    echo "deps: apt-get install failed for: ${missing[*]}" >&2
    exit 1
fi
echo "deps: done" >&2
