#!/bin/sh
# Asserts that a seed always gives the same run: two transcripts of the
# same seed are identical byte for byte, a different seed gives another
# one, and the output ends with the "N passed, M failed" line.
#   determinism.sh SIM NODES SEED
set -u
sim=$1 nodes=$2 seed=$3
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
"$sim" --nodes "$nodes" --seeds 1 --first-seed "$seed" --steps 20000 \
    --trace > "$tmp/a"
"$sim" --nodes "$nodes" --seeds 1 --first-seed "$seed" --steps 20000 \
    --trace > "$tmp/b"
"$sim" --nodes "$nodes" --seeds 1 --first-seed $((seed + 1)) \
    --steps 20000 --trace > "$tmp/c"
if ! cmp "$tmp/a" "$tmp/b"; then
    echo "FAIL: two runs of seed $seed differ"
    exit 1
fi
if cmp -s "$tmp/a" "$tmp/c"; then
    echo "FAIL: seeds $seed and $((seed + 1)) gave the same transcript"
    exit 1
fi
if [ "$(wc -l < "$tmp/a")" -lt 1000 ]; then
    echo "FAIL: the transcript of seed $seed is suspiciously short"
    exit 1
fi
if [ "$(tail -n 1 "$tmp/a")" != "1 passed, 0 failed" ]; then
    echo "FAIL: unexpected last line: $(tail -n 1 "$tmp/a")"
    exit 1
fi
echo "seed $seed ($nodes nodes): $(wc -l < "$tmp/a") transcript lines," \
    "identical across runs"
