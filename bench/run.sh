#!/usr/bin/env bash
# bench/run.sh: `run --rm busybox true` end to end — CLI, API, daemon, monitor,
# runtime — side by side in one hyperfine session: berth (berthd on private
# roots), docker (Debian's dockerd on private roots), podman, and a bare `runc
# run` of the same rootfs (the floor of a runtime alone). Also the CLI's own
# start-up: `berth version` against the running berthd.
#
# How to run it (as root; offline):
#
#   cargo build --release -p berth -p berthd -p berth-monitor -p berth-runtime
#   bench/run.sh [--runs N] [--rounds R]
#                                    # N per command (default 60) in R rounds
#                                    # (default 6) whose command order rotates
#
# Peers that are not installed (docker.io, podman, runc) are left out with a
# message. Results go to bench/results/run-<UTC time>/ and the medians and
# ratios are printed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
bin=$repo/target/release
runs=60
rounds=6
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
me=run.sh
. "$here/lib.sh"
require_root_and_binaries berth berthd berth-monitor

out="$repo/bench/results/run-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
# Exec roots live in /run (a tmpfs), as both daemons' defaults do; data roots on disk.
run=$(mktemp -d /run/berth-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$run" 2>/dev/null || true
    # berthd's default bridge and nftables table (named after the bridge).
    ip link del "bbr$$" 2>/dev/null || true
    nft delete table inet "berth_bbr$$" 2>/dev/null || true
    for h in /sys/fs/cgroup/*/"berth-bench-$$"; do
        [ -d "$h" ] && rmdir "$h" 2>/dev/null || true
    done
    if [ -n "${pd:-}" ]; then
        # podman leaves its storage's overlay mount behind.
        umount "$pd/root/overlay" 2>/dev/null || true
        rm -rf "$pd"
    fi
}
trap cleanup EXIT

"$repo/scripts/busybox-image" "$out/busybox.tar" >/dev/null

# berth
export BERTH_HOST="unix://$out/berth.sock"
"$bin/berthd" --data-root "$out/berth-data" --exec-root "$run/berth-exec" -H "$BERTH_HOST" \
    --cgroup-parent "berth-bench-$$" --bridge "bbr$$" \
    >"$out/berthd.log" 2>&1 &
pids+=($!)
wait_for berthd "$bin/berth" version
"$bin/berth" load -q -i "$out/busybox.tar" >/dev/null
# --network none on every engine: the same work (bench/network.sh compares bridges).
names=("berth run --rm")
cmds=("$bin/berth run --rm --network none busybox true")

# runc, on the same rootfs as a bundle
if command -v runc >/dev/null; then
    (cd "$repo" && cargo run -q -p berth-tests --example make_bundle -- "$out/bundle" true) >/dev/null
    mkdir -p "$out/runc-root"
    # A fresh container id per run: runc deletes the container when it exits.
    printf '#!/bin/sh\nexec %s --root %s run --bundle %s "bench-$$"\n' \
        "$(command -v runc)" "$out/runc-root" "$out/bundle" > "$out/runc-once.sh"
    chmod +x "$out/runc-once.sh"
    names+=("runc run (bare runtime)")
    cmds+=("$out/runc-once.sh")
else
    echo "run.sh: runc not installed, not measured" >&2
fi

# docker, with Debian's dockerd on its own roots (no network changes on the host)
if command -v dockerd >/dev/null; then
    echo '{}' > "$out/daemon.json"
    dockerd --config-file "$out/daemon.json" --data-root "$out/docker-data" --exec-root "$run/docker-exec" \
        --pidfile "$out/docker.pid" -H "unix://$out/docker.sock" --bridge=none --iptables=false \
        --ip6tables=false --ip-forward=false --ip-masq=false --userland-proxy=false \
        >"$out/dockerd.log" 2>&1 &
    pids+=($!)
    wait_for dockerd docker -H "unix://$out/docker.sock" version
    docker -H "unix://$out/docker.sock" load -q -i "$out/busybox.tar" >/dev/null
    names+=("docker run --rm")
    cmds+=("docker -H unix://$out/docker.sock run --rm --network none busybox true")
else
    echo "run.sh: dockerd (docker.io) not installed, not measured" >&2
fi

# podman, on its own roots
if command -v podman >/dev/null; then
    # podman refuses a runroot path longer than 50 characters.
    pd=$(mktemp -d /tmp/berth-bench-podman.XXXXXX)
    # podman picks crun by default, and crun 1.8 refuses this hybrid cgroup host: use runc.
    p="podman --root $pd/root --runroot $pd/run --tmpdir $pd/tmp --cgroup-manager cgroupfs --events-backend none --runtime runc"
    $p load -q -i "$out/busybox.tar" >/dev/null
    names+=("podman run --rm")
    cmds+=("$p run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 busybox true")
else
    echo "run.sh: podman not installed, not measured" >&2
fi

names+=("berth version (CLI start-up)")
cmds+=("$bin/berth version")
rotated_rounds "$out/run.json" "$runs" "$rounds"
jq -r '(.results | map({key: .command, value: .median}) | from_entries) as $m
  | ($m["berth run --rm"]) as $b
  | $m | to_entries[] | select(.key != "berth run --rm" and (.key | startswith("berth version") | not))
  | "berth run --rm / \(.key): \($b / .value * 1000 | round / 1000)"' "$out/run.json"
echo "results: $out"
