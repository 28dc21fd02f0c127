#!/bin/sh
# Asserts that the simulator catches one planted core bug.
#   planted.sh SIM_BUGS SIM BUG NODES SEEDS STEPS 'prop1|prop2' [SKIP]
# 1. raft-sim-bugs --bug BUG over SEEDS seeds must exit 1 and report at
#    least one seed failing with one of the expected properties, and no
#    failure of any other property (which would be a checker or runtime
#    problem, not this bug).
# 2. raft-sim (correct core) over the same seeds and the same scenario must
#    pass: the failures come from the bug, not from the scenario.  SKIP is a
#    comma list of seeds left out of this run because they hit a core bug
#    documented in tests/sim/KNOWN_FAILURES.md.
set -u
sim_bugs=$1 sim=$2 bug=$3 nodes=$4 seeds=$5 steps=$6 props=$7 skip=${8:-}
scenario=$("$sim_bugs" --list-bugs | sed -n "s/^$bug //p")

out=$("$sim_bugs" --bug "$bug" --nodes "$nodes" --seeds "$seeds" \
    --steps "$steps")
rc=$?
echo "$out" | tail -n 20
if [ "$rc" -ne 1 ]; then
    echo "FAIL: raft-sim-bugs --bug $bug exited $rc, expected 1"
    exit 1
fi
caught=$(echo "$out" | grep -E -c "^seed [0-9]+: FAIL ($props) ")
other=$(echo "$out" | grep -E "^seed [0-9]+: FAIL " |
    grep -E -v -c "^seed [0-9]+: FAIL ($props) ")
echo "$bug: $caught seed(s) caught with $props, $other with another property"
if [ "$caught" -eq 0 ] || [ "$other" -ne 0 ]; then
    echo "FAIL: $bug not caught as $props"
    exit 1
fi

if [ -z "$scenario" ]; then
    echo "FAIL: no scenario listed for $bug"
    exit 1
fi
out=$("$sim" --scenario "$scenario" --nodes "$nodes" --seeds "$seeds" \
    --steps "$steps" --skip-seeds "$skip")
rc=$?
echo "$out" | tail -n 5
if [ "$rc" -ne 0 ]; then
    echo "FAIL: the correct core fails the $scenario scenario"
    exit 1
fi
exit 0
