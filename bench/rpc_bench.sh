#!/usr/bin/env bash
# gRPC front-end throughput: h2load (nghttp2-client) sends a fixed
# goulette.SentinelService/GetTopicLeader request to rpc_test_server (the
# protocol engine with a canned handler, no Raft, no store) and prints
# requests per second and latency at 1 and at 256 concurrent streams.
# The cluster benchmark (a real 3-member goulettefs) comes with the
# cluster; this one measures the engine alone.
#
# Usage: bench/rpc_bench.sh [path/to/rpc_test_server] [requests]
set -euo pipefail

server=${1:-build/tests/integration/rpc/rpc_test_server}
requests=${2:-50000}
command -v h2load >/dev/null || { echo "h2load missing (apt install nghttp2-client)" >&2; exit 1; }
[ -x "$server" ] || { echo "no test server at $server" >&2; exit 1; }

tmp=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# GetTopicLeaderRequest{topic: "orders", replica_count: 3}, gRPC-framed:
# flag 0, length 10, then field 1 (0x0a, len 6, "orders"), field 2 (0x10, 3).
printf '\x00\x00\x00\x00\x0a\x0a\x06orders\x10\x03' >"$tmp/req.bin"

"$server" 0 >"$tmp/port" &
pid=$!
for _ in $(seq 100); do
    grep -q '^PORT ' "$tmp/port" 2>/dev/null && break
    sleep 0.05
done
port=$(awk '/^PORT/ {print $2}' "$tmp/port")
[ -n "$port" ] || { echo "server did not start" >&2; exit 1; }
url="http://127.0.0.1:$port/goulette.SentinelService/GetTopicLeader"
hdrs=(-H 'content-type: application/grpc' -H 'te: trailers')

# One checked call first: the answer must be grpc-status 0.
if command -v nghttp >/dev/null; then
    nghttp -v "${hdrs[@]}" -d "$tmp/req.bin" "$url" | grep -q 'grpc-status: 0' ||
        { echo "the request does not succeed; not benchmarking" >&2; exit 1; }
fi

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "kernel:  $(uname -r); h2load $(h2load --version | awk '{print $2}')"
echo "target:  rpc_test_server (engine only, canned GetTopicLeader), 1 connection"
for streams in 1 256; do
    echo
    echo "== $streams concurrent stream(s), $requests requests =="
    h2load -n "$requests" -c 1 -m "$streams" "${hdrs[@]}" -d "$tmp/req.bin" "$url" |
        grep -E '^(finished in|requests:|status codes:|time for request:|[[:space:]]+min[[:space:]]+max)' |
        sed 's/^/  /'
done
