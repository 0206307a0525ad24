#!/bin/sh
# bench/runtime.sh: `<runtime> run` of a busybox bundle whose process is `true`, for
# berth-runtime, runc and crun side by side in one hyperfine session.
#
# How to run it (as root; from any directory of the repository; no network needed):
#
#   cargo build --release -p berth-runtime     # the binary under test
#   bench/runtime.sh                           # berth-runtime vs runc vs crun
#   bench/runtime.sh --peers-only              # runc vs crun only (berth-runtime not built yet)
#
# Options:
#   --berth PATH    berth-runtime to measure (default: target/release/berth-runtime)
#   --runs N        timed runs per runtime in all, at least 100 (default 200)
#   --rounds R      the runs are split into R hyperfine rounds whose command order rotates, so
#                   that drift on this shared machine hits every runtime alike (default 5)
#   --warmup N      warm-up runs per runtime per round (default 5)
#   --peers-only    measure runc and crun only
#
# What it does:
#   1. builds the bundle with the test kit's own fixture (`cargo run -p berth-tests --example
#      make_bundle`): the tests' default spec (ociVersion 1.0.2, which crun 1.8 needs) running
#      `true`, with no cgroupsPath, so each runtime makes its default cgroup per container;
#   2. re-executes itself in a private mount namespace (`unshare -m`) in which
#      /sys/fs/cgroup/unified, the cgroup2 mount of this hybrid host, is unmounted and covered
#      by a throwaway tmpfs: crun 1.8 refuses hybrid hosts, and this way the workaround costs
#      nothing per run (see /work/shared/design/testing.md); whatever crun writes there goes
#      with the namespace. All three runtimes are measured under the same conditions;
#   3. runs hyperfine -N (no shell, nothing but the runtime timed) on
#      `RUNTIME --root ROOT run --bundle BUNDLE bench-NAME`, each runtime with its own --root;
#      `run` deletes its container when it exits, so the id is free for the next run, and an
#      untimed --prepare force-deletes whatever a failed run left under that id;
#   4. writes bench/results/runtime-<UTC time>/round-<k>.{json,md} and summary.md, and prints
#      the median of all runs of each runtime and the ratios berth/runc and berth/crun.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
berth="$repo/target/release/berth-runtime"
runs=200
rounds=5
warmup=5
peers_only=0

while [ $# -gt 0 ]; do
    case "$1" in
        --berth) berth=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --warmup) warmup=$2; shift 2 ;;
        --peers-only) peers_only=1; shift ;;
        -h|--help) sed -n '2,36p' "$0"; exit 0 ;;
        *) echo "runtime.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

die() { echo "runtime.sh: $*" >&2; exit 1; }

if [ "${BERTH_BENCH_IN_NS:-}" != 1 ]; then
    [ "$(id -u)" = 0 ] || die "run me as root: runtimes create namespaces and cgroups"
    command -v hyperfine >/dev/null || die "hyperfine is missing: apt-get install hyperfine"
    command -v jq >/dev/null || die "jq is missing: apt-get install jq"
    [ "$runs" -ge 100 ] || die "--runs $runs: at least 100 runs per runtime"
    [ "$rounds" -ge 1 ] && [ "$runs" -ge "$rounds" ] || die "--rounds $rounds: between 1 and --runs"
    if [ "$peers_only" = 0 ]; then
        if [ ! -x "$berth" ]; then
            die "berth-runtime not found at $berth: build it (cargo build --release -p berth-runtime), give --berth PATH, or measure the peers alone with --peers-only"
        fi
        "$berth" --version >/dev/null 2>&1 || die "$berth --version fails: berth-runtime does not run; use --peers-only to measure the peers alone"
    fi
    out="$repo/bench/results/runtime-$(date -u +%Y%m%dT%H%M%SZ)"
    mkdir -p "$out"
    # The bundle comes from the test kit, so the benchmark runs what the tests run.
    (cd "$repo" && cargo run -q -p berth-tests --example make_bundle -- "$out/bundle" true) >/dev/null \
        || die "could not build the bundle with the berth-tests make_bundle example"
    export BERTH_BENCH_IN_NS=1 BERTH_BENCH_OUT="$out"
    exec unshare -m "$0" --berth "$berth" --runs "$runs" --rounds "$rounds" --warmup "$warmup" \
        $( [ "$peers_only" = 1 ] && echo --peers-only )
fi

# From here on: inside the private mount namespace.
out=$BERTH_BENCH_OUT
bundle="$out/bundle"
if mountpoint -q /sys/fs/cgroup/unified; then
    umount /sys/fs/cgroup/unified
fi
mount -t tmpfs -o size=4m,mode=755 berth-bench-unified /sys/fs/cgroup/unified

# name=binary pairs of what is measured.
set --
if [ "$peers_only" = 0 ]; then set -- "$@" "berth-runtime=$berth"; fi
runc_bin=$(command -v runc || true)
crun_bin=$(command -v crun || true)
if [ -n "$runc_bin" ]; then set -- "$@" "runc=$runc_bin"; else echo "runtime.sh: runc not installed, not measured" >&2; fi
if [ -n "$crun_bin" ]; then set -- "$@" "crun=$crun_bin"; else echo "runtime.sh: crun not installed, not measured" >&2; fi
[ $# -ge 2 ] || [ $# -ge 1 -a "$peers_only" = 1 ] || die "fewer than two runtimes to compare"

# A check run of each runtime first: a runtime that cannot run the bundle fails here, loudly.
for pair in "$@"; do
    name=${pair%%=*}; bin=${pair#*=}
    mkdir -p "$out/root-$name"
    "$bin" --root "$out/root-$name" run --bundle "$bundle" "bench-$name" \
        || die "$name ($bin) cannot run the bundle; see its error above"
done

per_round=$((runs / rounds))
k=1
while [ "$k" -le "$rounds" ]; do
    # Rotate the order of the commands from round to round.
    i=1
    while [ "$i" -lt "$k" ]; do
        first=$1; shift; set -- "$@" "$first"; i=$((i + 1))
    done
    args=""
    for pair in "$@"; do
        name=${pair%%=*}; bin=${pair#*=}
        args="$args --command-name $name --prepare '$here/run-one.sh --cleanup $bin $out/root-$name bench-$name'"
        args="$args '$bin --root $out/root-$name run --bundle $bundle bench-$name'"
    done
    eval hyperfine -N --style basic --warmup "$warmup" --runs "$per_round" \
        --export-json "'$out/round-$k.json'" --export-markdown "'$out/round-$k.md'" $args
    k=$((k + 1))
done

# Whatever a failed run left behind in the runtimes' roots.
for pair in "$@"; do
    name=${pair%%=*}; bin=${pair#*=}
    for id in $("$bin" --root "$out/root-$name" list -q 2>/dev/null); do
        "$bin" --root "$out/root-$name" delete --force "$id" || true
    done
done

# berth-runtime's default cgroup parent (/berth), made for the bundle without a
# cgroupsPath: removed when empty (rmdir refuses a parent that still has children).
for h in /sys/fs/cgroup/*/berth; do
    [ -d "$h" ] && rmdir "$h" 2>/dev/null || true
done

# Medians over every run of every round, in milliseconds, and the ratios.
jq -s '
  def median: sort | if length % 2 == 1 then .[(length - 1) / 2] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  [.[].results[]] | group_by(.command)
  | map({key: .[0].command, value: {runs: ([.[].times[]] | length), median_ms: ([.[].times[]] | median * 1000)}})
  | from_entries
' "$out"/round-*.json > "$out/medians.json"

summary="$out/summary.md"
{
    echo "# runtime run of a busybox \`true\` bundle ($(date -u +%Y-%m-%dT%H:%MZ))"
    echo
    echo "Command: \`bench/runtime.sh --runs $runs --rounds $rounds --warmup $warmup$( [ "$peers_only" = 1 ] && echo ' --peers-only')\`"
    echo "(hyperfine -N, $rounds rounds of $per_round runs with rotating order; inside unshare -m with"
    echo "/sys/fs/cgroup/unified unmounted and covered by a tmpfs, so that crun 1.8 runs on this hybrid host)."
    echo
    echo "| runtime | runs | median (ms) |"
    echo "| --- | ---: | ---: |"
    jq -r 'to_entries[] | "| \(.key) | \(.value.runs) | \(.value.median_ms * 100 | round / 100) |"' "$out/medians.json"
    echo
    jq -r '
      def ratio(a; b): if has(a) and has(b) then "\(a)/\(b): \(.[a].median_ms / .[b].median_ms * 1000 | round / 1000)" else empty end;
      ratio("berth-runtime"; "runc"), ratio("berth-runtime"; "crun"), ratio("crun"; "runc")
    ' "$out/medians.json" | sed 's/^/- /'
} > "$summary"
echo
cat "$summary"
echo
echo "results: $out"
