#!/bin/bash
# tests/conformance/runtime-tools.sh: opencontainers/runtime-tools' validation tests against
# berth-runtime and runc in one run, with a table of each test program's TAP results.
#
# The suite is not part of this repository and this script never builds it: get and build it
# yourself outside the repository as docs/CONFORMANCE.md describes (`make runtimetest
# validation-executables` in its tree). When it is not there the script prints "skipped: ..."
# and exits 0. It is not part of CI (scripts/test does not call it).
#
# Usage (as root, from anywhere):
#
#   RUNTIME_TOOLS_DIR=/work/ext/runtime-tools tests/conformance/runtime-tools.sh [NAME...]
#
# NAME is a validation program without its directory and suffix (e.g. `hooks linux_devices`);
# with none, every validation/*/*.t runs.
#
# Environment:
#   RUNTIME_TOOLS_DIR  the runtime-tools tree, with runtimetest and validation/*/*.t built
#   BERTH_RUNTIME      the berth-runtime binary (default: target/release/berth-runtime if it
#                      exists, else target/debug/berth-runtime)
#   RUNC               the runc binary (default: `runc` on PATH; without one its column says n/a)
#   RUNTIMES           which to run: "berth runc" (default), "berth" or "runc"
#   RT_TIMEOUT         seconds one validation program may take (default 300)
#   OUT_DIR            where the TAP output and the table go (default: a new directory in /tmp)
#
# Each program prints TAP: its result here is "ok" when it exited 0 with no "not ok" line,
# "none" when it exited 0 having recorded no assertion at all, else "FAIL"; with its counts of
# passed, failed and skipped assertions.
#
# Exit status: 0 when berth-runtime fails no program that runc passes (or the suite is absent),
# 1 otherwise, 2 on a usage error.
set -u
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=SCRIPTDIR/report.sh
. "$here/report.sh"

dir=${RUNTIME_TOOLS_DIR:-}
if [ -z "$dir" ] || [ ! -x "$dir/runtimetest" ] || ! ls "$dir"/validation/*/*.t > /dev/null 2>&1; then
    echo "skipped: runtime-tools' validation suite is not present (RUNTIME_TOOLS_DIR='${dir}' needs" \
        "runtimetest and validation/*/*.t built); see docs/CONFORMANCE.md to build it"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "runtime-tools.sh: the suite creates namespaces, cgroups and mounts: run it as root" >&2
    exit 2
fi

berth=${BERTH_RUNTIME:-}
if [ -z "$berth" ]; then
    for f in "$repo/target/release/berth-runtime" "$repo/target/debug/berth-runtime"; do
        if [ -x "$f" ]; then
            berth=$f
            break
        fi
    done
fi
runc=${RUNC:-$(command -v runc || true)}
runtimes=${RUNTIMES:-berth runc}
timeout_s=${RT_TIMEOUT:-300}
out=${OUT_DIR:-$(mktemp -d /tmp/berth-runtime-tools.XXXXXX)}
mkdir -p "$out"

programs=()
if [ $# -gt 0 ]; then
    for name in "$@"; do
        programs+=("validation/$name/$name.t")
    done
else
    while IFS= read -r p; do
        programs+=("$p")
    done < <(cd "$dir" && ls validation/*/*.t)
fi

host_state() {
    find /sys/fs/cgroup -mindepth 2 -maxdepth 4 -type d 2>/dev/null | sort
    findmnt -rn -o TARGET | sort | sed 's/^/mount /'
}

run_suite() { # name binary
    local name=$1 bin=$2 p base rc
    host_state > "$out/$name.host-before"
    echo "== $name: $bin" >&2
    mkdir -p "$out/$name"
    : > "$out/$name.results"
    for p in "${programs[@]}"; do
        base=$(basename "$p" .t)
        # The programs find rootfs-<arch>.tar.gz and runtimetest in their working directory.
        (cd "$dir" && RUNTIME="$bin" timeout --kill-after=10 "$timeout_s" "$p" \
            > "$out/$name/$base.tap" 2> "$out/$name/$base.stderr" < /dev/null)
        rc=$?
        awk -v t="$base" -v rc="$rc" '
            /^ok / { if ($0 ~ /# [Ss][Kk][Ii][Pp]/) skip++; else pass++ }
            /^not ok / { if ($0 ~ /# [Tt][Oo][Dd][Oo]/) skip++; else fail++ }
            END {
                # A plan of 1..0 with exit 0: the program recorded no assertion (its own
                # checks stopped early); neither a pass nor a failure of the runtime.
                if (rc == 0 && fail == 0 && pass + skip == 0) r = "none"
                else r = (rc == 0 && fail == 0) ? "ok" : "FAIL"
                printf "%s\t%s\t%d passed, %d failed, %d skipped, exit %d\n", t, r, pass, fail, skip, rc
            }
        ' "$out/$name/$base.tap" >> "$out/$name.results"
    done
    sort -o "$out/$name.results" "$out/$name.results"
    host_state > "$out/$name.host-after"
    local left
    left=$(comm -13 "$out/$name.host-before" "$out/$name.host-after")
    if [ -n "$left" ]; then
        echo "LEFTOVERS after the $name pass (cgroup directories and mounts that were not there before):"
        printf '%s\n' "$left" | sed 's/^/  /'
    fi
}

ran=()
for r in $runtimes; do
    case $r in
        berth)
            if [ -z "$berth" ] || [ ! -x "$berth" ]; then
                echo "runtime-tools.sh: no berth-runtime binary (build it with cargo build -p berth-runtime, or set BERTH_RUNTIME)" >&2
                exit 2
            fi
            run_suite berth "$berth"
            ran+=(berth)
            ;;
        runc)
            if [ -z "$runc" ]; then
                echo "runtime-tools.sh: runc is not installed: its column says n/a" >&2
                continue
            fi
            run_suite runc "$runc"
            ran+=(runc)
            ;;
        *)
            echo "runtime-tools.sh: RUNTIMES holds '$r'; use berth and/or runc" >&2
            exit 2
            ;;
    esac
done
report "$out" program yes none "with no assertion" no "${ran[@]}"
status=$?
echo "TAP output, stderr and table.md: $out"
exit $status
