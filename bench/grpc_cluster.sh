#!/usr/bin/env bash
# The gRPC port of a real 3-member goulettefs cluster (no mounts) under
# h2load (nghttp2-client): a fixed goulette.SentinelService/GetTopicLeader
# request for a placed topic, at 1 and at 256 concurrent streams on one
# connection to one member; each answer is a ReadIndex read (batched by the
# Raft core) served from the member's store.  Prints requests per second,
# latency and the machine.  The engine alone: bench/rpc_bench.sh.
#
# Usage: bench/grpc_cluster.sh [goulettefs] [goulettectl] [requests] [member]
#   member: 1 (default), 2 or 3; the script prints whether it leads.
set -euo pipefail

fs=${1:-build/tools/goulettefs}
ctl=${2:-build/tools/goulettectl}
requests=${3:-20000}
target=${4:-1}
command -v h2load >/dev/null || { echo "h2load missing (apt install nghttp2-client)" >&2; exit 1; }
command -v nghttp >/dev/null || { echo "nghttp missing (apt install nghttp2-client)" >&2; exit 1; }
[ -x "$fs" ] && [ -x "$ctl" ] || { echo "no goulettefs/goulettectl at $fs, $ctl" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
peer=() grpc=()
for i in 1 2 3; do peer[$i]=$(free_port); grpc[$i]=$(free_port); done
spec="n1=127.0.0.1:${peer[1]},n2=127.0.0.1:${peer[2]},n3=127.0.0.1:${peer[3]}"
for i in 1 2 3; do
    "$fs" --name "n$i" --data-dir "$tmp/n$i" --initial-cluster "$spec" \
        --peer-listen "127.0.0.1:${peer[$i]}" \
        --grpc-listen "127.0.0.1:${grpc[$i]}" --log-level warn \
        >"$tmp/n$i.log" 2>&1 &
    pids+=($!)
done
ep="127.0.0.1:${grpc[$target]}"
for _ in $(seq 200); do
    "$ctl" --endpoints "$ep" status 2>/dev/null | grep -q 'serving: *yes' && break
    sleep 0.1
done
"$ctl" --endpoints "$ep" status | grep -q 'serving: *yes' ||
    { echo "the cluster did not come up" >&2; cat "$tmp"/n*.log >&2; exit 1; }

hdrs=(-H 'content-type: application/grpc' -H 'te: trailers')
base="http://$ep/goulette.SentinelService"
call() { # method body-file: one checked call
    nghttp -v "${hdrs[@]}" -d "$2" "$base/$1" | grep -q 'grpc-status: 0' ||
        { echo "$1 failed; not benchmarking" >&2; exit 1; }
}
# RegisterBrokerRequest{broker_id: "bN", address: "127.0.0.1:900N"}.
for i in 1 2 3; do
    printf '\x00\x00\x00\x00\x14\x0a\x02b%d\x12\x0e127.0.0.1:900%d' "$i" "$i" >"$tmp/reg$i.bin"
    call RegisterBroker "$tmp/reg$i.bin"
done
# GetTopicLeaderRequest{topic: "orders", replica_count: 3}; the first call
# places the topic, the measured ones read it.
printf '\x00\x00\x00\x00\x0a\x0a\x06orders\x10\x03' >"$tmp/req.bin"
call GetTopicLeader "$tmp/req.bin"

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "kernel:  $(uname -r); h2load $(h2load --version | awk '{print $2}')"
echo "target:  member n$target of 3 ($("$ctl" --endpoints "$ep" status | awk '/^state:/ {print $2}')), GetTopicLeader(orders, 3) after ReadIndex, 1 connection"
for streams in 1 256; do
    echo
    echo "== $streams concurrent stream(s), $requests requests =="
    h2load -n "$requests" -c 1 -m "$streams" "${hdrs[@]}" -d "$tmp/req.bin" "$base/GetTopicLeader" |
        grep -E '^(finished in|requests:|status codes:|time for request:|[[:space:]]+min[[:space:]]+max)' |
        sed 's/^/  /'
done
