#!/usr/bin/env bash
# Checks that the pure cores do no I/O (style.md): no libuv, LevelDB, FUSE or
# nghttp2 headers, no clocks, no rand().  The meson build enforces the same at
# link time (the cores' unit tests link nothing else); this catches a header
# include or a clock read that links anyway through libc.
set -euo pipefail
cd "$(dirname "$0")/.."

# The pure cores: the Raft core (everything in raft/ but the drivers, which
# live in raft/uv/), the store's apply core, ring and failure detector, the
# inode table, the gRPC and peer framing, and the member's decision pieces
# (roles to tell brokers, renewals to forward, notice checks).
cores=()
for f in raft/*.c; do
    case "$f" in raft/uv_*.c | "raft/*.c") continue ;; esac
    cores+=("$f")
done
for f in store/ring.c store/crc32.c store/sm*.c store/apply*.c \
    store/codec*.c store/json*.c store/liveness.c fs/inode.c rpc/frame.c \
    tools/roles.c tools/renewals.c tools/notice.c raft/uv/uv_frame.c; do
    [ -f "$f" ] && cores+=("$f")
done
[ ${#cores[@]} -eq 0 ] && exit 0

pattern='#include[[:space:]]*<(uv\.h|leveldb/|fuse|nghttp2/)|clock_gettime|gettimeofday|[^_a-z]rand[[:space:]]*\(|[^_a-z]time[[:space:]]*\([[:space:]]*NULL|pthread_'
if grep -nE "$pattern" "${cores[@]}"; then
    echo "purity: the lines above do I/O, read a clock or use randomness in a pure core" >&2
    exit 1
fi
echo "purity: ${#cores[@]} core files clean" >&2
