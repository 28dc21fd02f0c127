#!/usr/bin/env bash
# The one entry point for building, running and testing goulettefs from a
# clone, on Debian 12.  Each command first installs whatever Debian packages
# are missing (tools/deps.sh; nothing is downloaded when all are present).
#
#   tools/build.sh run [GOULETTEFS-OPTION]...
#       build, then run one goulettefs member in the foreground.  With no
#       options: a single-member cluster mounted at /goulette, data in
#       ./default.goulette, gRPC on 127.0.0.1:50052.  Stop it with Ctrl-C.
#   tools/build.sh test
#       build, then run every test suite (unit, sim, integration) and print
#       "N passed, M failed".
#   tools/build.sh asan      unit and sim suites under ASan+UBSan (build-asan/)
#   tools/build.sh format    check formatting against .clang-format
#   tools/build.sh purity    check that the pure cores do no I/O
#   tools/build.sh build     just build (build/)
#
# With CI=true the build treats warnings as errors.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

say() { printf 'build.sh: %s\n' "$*" >&2; }

meson_build() {
    local dir=$1
    shift
    local werror=false
    if [ "${CI:-}" = true ]; then
        werror=true
    fi
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" -Dwerror=$werror "$@" >/dev/null
    else
        meson configure "$dir" -Dwerror=$werror "$@" >/dev/null
    fi
    ninja -C "$dir"
}

# Print "N passed, M failed, K skipped" from a meson test log.
summarize() {
    local log=$1 label=$2
    /usr/bin/python3 - "$log" "$label" <<'PY'
import json, sys
counts = {"OK": 0, "FAIL": 0, "SKIP": 0, "TIMEOUT": 0, "ERROR": 0,
          "EXPECTEDFAIL": 0, "UNEXPECTEDPASS": 0}
failed = []
with open(sys.argv[1]) as f:
    for line in f:
        r = json.loads(line)
        counts[r["result"]] = counts.get(r["result"], 0) + 1
        if r["result"] not in ("OK", "SKIP", "EXPECTEDFAIL"):
            failed.append(r["name"])
passed = counts["OK"] + counts["EXPECTEDFAIL"]
bad = len(failed)
for name in failed:
    print("failed: %s" % name)
print("%s: %d passed, %d failed, %d skipped" % (sys.argv[2], passed, bad,
                                               counts["SKIP"]))
PY
}

run_tests() {
    local dir=$1 label=$2
    shift 2
    local rc=0
    meson test -C "$dir" --no-rebuild --print-errorlogs "$@" || rc=$?
    summarize "$dir/meson-logs/testlog.json" "$label"
    return $rc
}

check_fuse() {
    if [ ! -c /dev/fuse ]; then
        say "/dev/fuse is missing: the FUSE tests cannot run here"
        return 1
    fi
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
run)
    tools/deps.sh build
    meson_build build
    if [ $# -eq 0 ]; then
        mkdir -p /goulette
        set -- --mount /goulette
    fi
    exec build/tools/goulettefs "$@"
    ;;
build)
    tools/deps.sh build
    meson_build build
    ;;
test)
    tools/deps.sh test
    check_fuse
    meson_build build
    run_tests build tests
    ;;
asan)
    tools/deps.sh test
    meson_build build-asan -Db_sanitize=address,undefined -Db_lundef=false
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        run_tests build-asan asan --suite unit --suite sim
    ;;
format)
    tools/deps.sh test
    mapfile -t files < <(git ls-files '*.c' '*.h')
    if [ ${#files[@]} -eq 0 ]; then
        exit 0
    fi
    if ! clang-format --dry-run --Werror "${files[@]}"; then
        say "formatting differs from .clang-format: run clang-format -i on the files above"
        exit 1
    fi
    say "format: ${#files[@]} files clean"
    ;;
purity)
    tools/purity.sh
    ;;
*)
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
