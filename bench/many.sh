#!/usr/bin/env bash
# bench/many.sh: many containers at once (issue 5).
#
# 1. Start N detached `sleep` containers (default 100) on berth and on
#    Debian's dockerd (its own roots), one after another as a user's loop
#    would: total time, and the memory of each engine with them running
#    (the daemons' RSS, plus berth's monitors or docker's containerd-shims,
#    summed as RSS and as PSS, which counts shared pages once), read right
#    after the last start and again 3 s later, when the containers sit idle
#    (a berth monitor gives back what making its container touched a second
#    after its last request; a shim has nothing of the kind).
# 2. Start cost as running containers grow: the median of `run --rm busybox
#    true` on berth with 10, 100 and 500 (default; --levels) containers running.
#
# How to run it (as root; offline):
#
#   cargo build --release -p berth -p berthd -p berth-monitor
#   bench/many.sh [--count N] [--levels "10 100 500"] [--runs R]
#
# Containers use `--network none`, so the numbers are the engines' own cost per
# container rather than the kernel's veth work (bench/network.sh measures
# that). Everything is removed at the end; results go to
# bench/results/many-<UTC time>/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
bin=$repo/target/release
count=100
levels="10 100 500"
runs=20
while [ $# -gt 0 ]; do
    case "$1" in
        --count) count=$2; shift 2 ;;
        --levels) levels=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "many.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
me=many.sh
. "$here/lib.sh"
require_root_and_binaries berth berthd berth-monitor

out="$repo/bench/results/many-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
run=$(mktemp -d /run/berth-many.XXXXXX)
bridge="bmy$$"
pids=()
cleanup() {
    [ -n "${BERTH_HOST:-}" ] && "$bin/berth" rm -f $("$bin/berth" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
    [ -S "$out/docker.sock" ] && docker -H "unix://$out/docker.sock" rm -f \
        $(docker -H "unix://$out/docker.sock" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    ip link del "$bridge" 2>/dev/null || true
    nft delete table inet "berth_$bridge" 2>/dev/null || true
    rm -rf "$run" 2>/dev/null || true
    for h in /sys/fs/cgroup/*/"berth-many-$$"; do
        [ -d "$h" ] && rmdir "$h" 2>/dev/null || true
    done
}
trap cleanup EXIT
now_ms() { date +%s%3N; }
# kib PIDS...: summed VmRSS and Pss of the processes, "RSS_KiB PSS_KiB".
kib() {
    local rss=0 pss=0 p v
    for p in "$@"; do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        rss=$((rss + ${v:-0}))
        v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
        pss=$((pss + ${v:-0}))
    done
    echo "$rss $pss"
}

"$repo/scripts/busybox-image" "$out/busybox.tar" >/dev/null

export BERTH_HOST="unix://$out/berth.sock"
"$bin/berthd" --data-root "$out/berth-data" --exec-root "$run/berth-exec" -H "$BERTH_HOST" \
    --cgroup-parent "berth-many-$$" --bridge "$bridge" --dns 127.0.0.1 \
    >"$out/berthd.log" 2>&1 &
berthd_pid=$!
pids+=($berthd_pid)
wait_for berthd "$bin/berth" version
"$bin/berth" load -q -i "$out/busybox.tar" >/dev/null

summary="$out/summary.md"
echo "| engine | $count detached starts | per container | daemon RSS | per-container processes, RSS (PSS), just started | the same, idle 3 s later | one process, idle RSS |" > "$summary"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |" >> "$summary"

# memory_cells PIDS...: "RSS (PSS) just now | RSS (PSS) 3 s later | RSS per process later"
memory_cells() {
    local n=$# rss pss rss2 pss2
    read -r rss pss < <(kib "$@")
    sleep 3
    read -r rss2 pss2 < <(kib "$@")
    echo "$((rss / 1024)) MiB ($((pss / 1024)) MiB) for $n | $((rss2 / 1024)) MiB ($((pss2 / 1024)) MiB) | $((rss2 / (n > 0 ? n : 1))) KiB"
}

start_many() { # start_many NAME CLI...: starts $count sleepers; prints the wall time in ms
    local t0 t1 i
    shift
    t0=$(now_ms)
    for ((i = 0; i < count; i++)); do
        "$@" run -d --network none busybox sleep 3600 >/dev/null
    done
    t1=$(now_ms)
    echo $((t1 - t0))
}

ms=$(start_many berth "$bin/berth")
read -r drss _ < <(kib "$berthd_pid")
mons=$(pgrep -f "^$bin/berth-monitor $run/" || true)
echo "| berth | ${ms} ms | $((ms / count)) ms | $((drss / 1024)) MiB | $(memory_cells $mons) |" >> "$summary"
remove_all() { # remove_all CLI...: removes every container
    local ids
    ids=$("$@" ps -aq)
    [ -z "$ids" ] || "$@" rm -f $ids >/dev/null
}
remove_all "$bin/berth"

if command -v dockerd >/dev/null; then
    echo '{}' > "$out/daemon.json"
    dockerd --config-file "$out/daemon.json" --data-root "$out/docker-data" --exec-root "$run/docker-exec" \
        --pidfile "$out/docker.pid" -H "unix://$out/docker.sock" --bridge=none --iptables=false \
        --ip6tables=false --ip-forward=false --ip-masq=false --userland-proxy=false \
        >"$out/dockerd.log" 2>&1 &
    pids+=($!)
    d="docker -H unix://$out/docker.sock"
    wait_for dockerd $d version
    $d load -q -i "$out/busybox.tar" >/dev/null
    ms=$(start_many docker $d)
    dpids="$(cat "$out/docker.pid") $(pgrep -x containerd || true)"
    read -r drss _ < <(kib $dpids)
    shims=$(pgrep -f "containerd-shim" || true)
    echo "| docker | ${ms} ms | $((ms / count)) ms | $((drss / 1024)) MiB (dockerd + containerd) | $(memory_cells $shims) |" >> "$summary"
    remove_all $d
else
    echo "many.sh: dockerd (docker.io) not installed, not measured" >&2
fi

# Start cost as the number of running containers grows.
echo >> "$summary"
echo "| running containers | berth run --rm (median of $runs) |" >> "$summary"
echo "| ---: | ---: |" >> "$summary"
running=0
for level in $levels; do
    while [ "$running" -lt "$level" ]; do
        "$bin/berth" run -d --network none busybox sleep 3600 >/dev/null
        running=$((running + 1))
    done
    hyperfine -N --style basic --warmup 2 --runs "$runs" --export-json "$out/flat-$level.json" \
        "$bin/berth run --rm --network none busybox true" >/dev/null
    median=$(jq -r '.results[0].median * 1000 | . * 100 | round / 100' "$out/flat-$level.json")
    echo "| $level | $median ms |" >> "$summary"
done
cat "$summary"
echo "results: $out"
