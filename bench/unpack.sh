#!/bin/sh
# bench/unpack.sh: unpacking layers, berth's unpacker (crates/image/examples/unpack.rs: the
# code a pull or load runs per layer) beside plain GNU `tar -x` of the same layers, the floor
# (issue 4). Both gzip layers (`tar -xzf`, gzip inflating in a second process) and
# uncompressed ones (`tar -xf`). berth does more than tar: it hashes the whole tar stream for
# the diff ID, keeps ownership, modes, xattrs and links as the image says, applies whiteouts,
# and checks every entry against escaping the directory.
#
# How to run it (as root, so ownership is kept by both; offline):
#
#   apt-get install hyperfine jq
#   cargo build --release -p image --example unpack
#   bench/unpack.sh [--layers N] [--mb M] [--runs R]
#
# Options: --layers N generated layers (default 5), --mb M MB of file data per layer (default
# 60, as bench/pull.sh makes them), --runs R hyperfine runs per command (default 5). Every run
# unpacks all the layers into fresh directories; each command's --prepare empties them and
# runs `sync`, so no run pays for another's writeback. Results: bench/results/unpack-<UTC>/.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
berth="$repo/target/release/examples/unpack"
# shellcheck source=bench/layers.sh
. "$here/layers.sh"
layers=5
mb=60
runs=5
while [ $# -gt 0 ]; do
    case "$1" in
        --layers) layers=$2; shift 2 ;;
        --mb) mb=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unpack.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
die() { echo "unpack.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run me as root (both keep the layers' ownership)"
for t in hyperfine jq tar gzip; do command -v "$t" >/dev/null || die "$t is missing"; done
[ -x "$berth" ] || die "$berth is missing: cargo build --release -p image --example unpack"

work=$(mktemp -d /var/tmp/berth-bench-unpack.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
echo "== generating $layers layers of $mb MB"
i=0
while [ "$i" -lt "$layers" ]; do
    gen_layer "$work" "$i" "$mb"
    i=$((i + 1))
done

# all_layers CMD: a shell line running CMD (with {L} for the layer, {D} for its directory)
# on every layer in turn.
all_layers() {
    line=""
    i=0
    while [ "$i" -lt "$layers" ]; do
        one=$(printf '%s' "$1" | sed "s|{L}|$work/l$i|g; s|{D}|$work/out/$i|g")
        line="$line${line:+ && }$one"
        i=$((i + 1))
    done
    printf '%s' "$line"
}
prepare="rm -rf $work/out && mkdir -p $(i=0; while [ "$i" -lt "$layers" ]; do printf '%s ' "$work/out/$i"; i=$((i + 1)); done) && sync"

out="$here/results/unpack-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
hyperfine --style basic --runs "$runs" --prepare "$prepare" --export-json "$out/unpack.json" \
    -n "berth, gzip layers" "$(all_layers "$berth {L}.tar.gz {D} >/dev/null")" \
    -n "tar -xzf, gzip layers" "$(all_layers "tar -xzf {L}.tar.gz -C {D}")" \
    -n "berth, uncompressed layers" "$(all_layers "$berth {L}.tar {D} >/dev/null")" \
    -n "tar -xf, uncompressed layers" "$(all_layers "tar -xf {L}.tar -C {D}")" >/dev/null

total=$(du -cm "$work"/l*.tar | tail -1 | cut -f1)
{
    echo "# unpacking $layers layers ($total MB of tar) into fresh directories"
    echo
    echo "| command | median s | MB/s of tar |"
    echo "| --- | ---: | ---: |"
    jq -r --argjson mb "$total" '.results[] | "| \(.command) | \(.median * 1000 | round / 1000) | \($mb / .median | round) |"' "$out/unpack.json"
} > "$out/summary.md"
cat "$out/summary.md"
echo "results: $out"
