#!/usr/bin/env bash
# bench/network.sh: what a container's network costs at start, berth against
# docker, in one hyperfine session: `run --rm busybox true` on each engine's
# default bridge and with `--network none` (the difference is the network's
# cost: namespace, veth, address, routes, and for docker its sandbox), and
# berth with a published port (reservation and DNAT rule added and removed).
# Then TCP throughput between two containers on one bridge with iperf3
# (Debian's, put in an image with its libraries), on each engine.
#
# How to run it (as root; offline):
#
#   cargo build --release -p berth -p berthd -p berth-monitor
#   bench/network.sh [--runs N] [--rounds R]
#                                    # N per command (default 60) in R rounds
#                                    # (default 6) whose command order rotates,
#                                    # so a load spike on this shared machine
#                                    # does not land on one command only
#
# Both daemons run on private roots with bridges of their own (berthd makes
# its own; dockerd gets one made here, with --iptables=false, so the host's
# iptables rules are not touched — docker adds no rule per container without
# -p anyway). Everything is removed at the end. Results go to
# bench/results/network-<UTC time>/ with the medians and the differences.
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
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "network.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
me=network.sh
. "$here/lib.sh"
require_root_and_binaries berth berthd berth-monitor

out="$repo/bench/results/network-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
run=$(mktemp -d /run/berth-netbench.XXXXXX)
bbridge="bnb$$"
dbridge="dnb$$"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    ip link del "$bbridge" 2>/dev/null || true
    ip link del "$dbridge" 2>/dev/null || true
    nft delete table inet "berth_$bbridge" 2>/dev/null || true
    rm -rf "$run" 2>/dev/null || true
    for h in /sys/fs/cgroup/*/"berth-netbench-$$"; do
        [ -d "$h" ] && rmdir "$h" 2>/dev/null || true
    done
}
trap cleanup EXIT

"$repo/scripts/busybox-image" "$out/busybox.tar" >/dev/null

export BERTH_HOST="unix://$out/berth.sock"
"$bin/berthd" --data-root "$out/berth-data" --exec-root "$run/berth-exec" -H "$BERTH_HOST" \
    --cgroup-parent "berth-netbench-$$" --bridge "$bbridge" --dns 127.0.0.1 \
    >"$out/berthd.log" 2>&1 &
pids+=($!)
wait_for berthd "$bin/berth" version
"$bin/berth" load -q -i "$out/busybox.tar" >/dev/null
names=("berth run --rm (bridge)" "berth run --rm --network none" "berth run --rm -p 127.0.0.1::80 (bridge)")
cmds=("$bin/berth run --rm busybox true" "$bin/berth run --rm --network none busybox true" "$bin/berth run --rm -p 127.0.0.1::80 busybox true")

if command -v dockerd >/dev/null; then
    # dockerd's --bip makes docker0 and its iptables rules; a bridge given with -b is used as
    # it is. Its subnet is one berthd did not take.
    ip link add "$dbridge" type bridge
    ip addr add 10.254.77.1/24 dev "$dbridge"
    ip link set "$dbridge" up
    echo '{}' > "$out/daemon.json"
    dockerd --config-file "$out/daemon.json" --data-root "$out/docker-data" --exec-root "$run/docker-exec" \
        --pidfile "$out/docker.pid" -H "unix://$out/docker.sock" --bridge="$dbridge" --iptables=false \
        --ip6tables=false --ip-forward=false --ip-masq=false --userland-proxy=false \
        >"$out/dockerd.log" 2>&1 &
    pids+=($!)
    wait_for dockerd docker -H "unix://$out/docker.sock" version
    docker -H "unix://$out/docker.sock" load -q -i "$out/busybox.tar" >/dev/null
    names+=("docker run --rm (bridge)" "docker run --rm --network none")
    cmds+=("docker -H unix://$out/docker.sock run --rm busybox true" "docker -H unix://$out/docker.sock run --rm --network none busybox true")
else
    echo "network.sh: dockerd (docker.io) not installed, not measured" >&2
fi

rotated_rounds "$out/network.json" "$runs" "$rounds"
jq -r '(.results | map({key: .command, value: .median}) | from_entries) as $m
  | "berth network cost (bridge - none): \(($m["berth run --rm (bridge)"] - $m["berth run --rm --network none"]) * 1000 | . * 100 | round / 100) ms",
    (if $m["docker run --rm (bridge)"] then
      "docker network cost (bridge - none): \(($m["docker run --rm (bridge)"] - $m["docker run --rm --network none"]) * 1000 | . * 100 | round / 100) ms",
      "docker run --rm (bridge) / berth run --rm (bridge): \($m["docker run --rm (bridge)"] / $m["berth run --rm (bridge)"] * 100 | round / 100)"
     else empty end)' "$out/network.json"

# TCP throughput container to container on each engine's bridge.
throughput() { # throughput NAME CLI...: iperf3 server and client containers, Gbit/s
    local name=$1; shift
    local srv ip
    srv=$("$@" run -d iperf:latest iperf3 -s -1)
    ip=$("$@" inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$srv")
    for _ in $(seq 50); do
        if "$@" run --rm iperf:latest iperf3 -c "$ip" -t 5 -J > "$out/iperf-$name.json" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    "$@" rm -f "$srv" >/dev/null 2>&1 || true
    jq -r --arg n "$name" '"\($n) iperf3 TCP container to container: \(.end.sum_received.bits_per_second / 1e9 * 100 | round / 100) Gbit/s"' "$out/iperf-$name.json"
}
if command -v iperf3 >/dev/null; then
    "$repo/scripts/busybox-image" --with "$(command -v iperf3)" "$out/iperf.tar" iperf:latest >/dev/null
    "$bin/berth" load -q -i "$out/iperf.tar" >/dev/null
    throughput berth "$bin/berth"
    if command -v dockerd >/dev/null; then
        docker -H "unix://$out/docker.sock" load -q -i "$out/iperf.tar" >/dev/null
        throughput docker docker -H "unix://$out/docker.sock"
    fi
else
    echo "network.sh: iperf3 not installed (apt-get install iperf3), throughput not measured" >&2
fi
echo "results: $out"
