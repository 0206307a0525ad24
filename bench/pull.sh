#!/bin/sh
# bench/pull.sh: pull of a generated multi-layer image (a few hundred MB) from a local
# docker-registry, by berth (crates/image/examples/pull.rs), `skopeo copy docker://… oci:DIR`
# and `podman pull`, side by side; berth twice: the pull as berthd answers it (the image
# whole and usable, its flush to disk still to come), and the pull followed by that flush
# (`--settle`: what berthd then does in the background).
#
# How to run it (as root; no network needed beyond 127.0.0.1):
#
#   apt-get install docker-registry skopeo podman hyperfine jq
#   cargo build --release -p image --example pull      # the binary under test
#   bench/pull.sh
#
# Options:
#   --layers N      layers in the generated image (default 5)
#   --mb M          MB of file data per layer, half random, half base64 text so that
#                   gzip has something to do, as in real images (default 60)
#   --rounds R      hyperfine rounds of one run per tool each; the command order rotates
#                   every round so drift on this shared machine hits every tool alike
#                   (default 5)
#   --berth PATH    the example binary (default target/release/examples/pull)
#
# What it does:
#   1. generates an OCI layout (gzip layers, config, manifest) with tar, gzip and sha256sum;
#   2. starts /usr/bin/docker-registry on 127.0.0.1 (a free port, storage in a temp dir)
#      and pushes the layout with skopeo;
#   3. for each round, runs hyperfine --runs 1 over the four pulls, each with a --prepare
#      that empties that tool's store (so every run downloads and unpacks everything) and
#      runs sync(1), so that no run pays for writing back what the previous tool left
#      dirty (berth without --settle and podman leave much of it to the kernel; a syncfs
#      would flush it too, and its writeback competes for the disk while the next tool
#      runs):
#        berth:  pull --root DIR --quiet pull 127.0.0.1:PORT/bench:latest
#        berth+settle: the same with --settle (syncfs before exiting)
#        skopeo: skopeo copy --src-tls-verify=false docker://… oci:DIR:bench  (no unpacking;
#                fsyncs each blob it writes)
#        podman: podman --root DIR --runroot DIR pull --tls-verify=false …     (unpacks)
#   4. writes bench/results/pull-<UTC time>/round-<k>.json and summary.md, and prints the
#      median of each tool and the ratios berth/skopeo and berth/podman.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
berth="$repo/target/release/examples/pull"
# shellcheck source=bench/layers.sh
. "$here/layers.sh"
layers=5
mb=60
rounds=5

while [ $# -gt 0 ]; do
    case "$1" in
        --layers) layers=$2; shift 2 ;;
        --mb) mb=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --berth) berth=$2; shift 2 ;;
        -h|--help) sed -n '2,40p' "$0"; exit 0 ;;
        *) echo "pull.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

die() { echo "pull.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run me as root (podman's and berth's stores keep ownership)"
for t in hyperfine jq skopeo podman /usr/bin/docker-registry sha256sum gzip; do
    command -v "$t" >/dev/null || die "$t is missing"
done
[ -x "$berth" ] || die "$berth is missing: cargo build --release -p image --example pull"

work=$(mktemp -d /var/tmp/berth-bench-pull.XXXXXX)
reg_pid=
cleanup() {
    if [ -n "$reg_pid" ]; then kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; fi
    podman --root "$work/podman-root" --runroot "$work/podman-run" rmi -a -f >/dev/null 2>&1 || true
    umount -R "$work/podman-root/overlay" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "== generating $layers layers of $mb MB"
layout="$work/layout"
mkdir -p "$layout/blobs/sha256"
diff_ids=
layer_descs=
i=0
while [ "$i" -lt "$layers" ]; do
    mkdir -p "$work/gen"
    gen_layer "$work/gen" "$i" "$mb"
    diff=$(sha256sum "$work/gen/l$i.tar" | cut -d' ' -f1)
    blob=$(sha256sum "$work/gen/l$i.tar.gz" | cut -d' ' -f1)
    size=$(stat -c %s "$work/gen/l$i.tar.gz")
    mv "$work/gen/l$i.tar.gz" "$layout/blobs/sha256/$blob"
    rm -f "$work/gen/l$i.tar"
    diff_ids="$diff_ids${diff_ids:+,}\"sha256:$diff\""
    layer_descs="$layer_descs${layer_descs:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$blob\",\"size\":$size}"
    i=$((i + 1))
done
config="{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"/bin/sh\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[$diff_ids]}}"
printf '%s' "$config" > "$work/config.json"
cdig=$(sha256sum "$work/config.json" | cut -d' ' -f1)
mv "$work/config.json" "$layout/blobs/sha256/$cdig"
manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$cdig\",\"size\":${#config}},\"layers\":[$layer_descs]}"
printf '%s' "$manifest" > "$work/manifest.json"
mdig=$(sha256sum "$work/manifest.json" | cut -d' ' -f1)
msize=$(stat -c %s "$work/manifest.json")
mv "$work/manifest.json" "$layout/blobs/sha256/$mdig"
printf '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"bench"}}]}' \
    "$mdig" "$msize" > "$layout/index.json"
total=$(du -sm "$layout/blobs" | cut -f1)
unpacked=$((layers * mb))
echo "   image: $layers layers, $total MB compressed"

echo "== starting docker-registry"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
  secret: berth-bench
EOF
/usr/bin/docker-registry serve "$work/registry.yml" 2> "$work/registry.log" &
reg_pid=$!
# Wait for the port by asking it, bounded (no fixed sleep).
n=0
until curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; do
    n=$((n + 1)); [ "$n" -lt 300 ] || die "registry did not start: $(cat "$work/registry.log")"
    sleep 0.1
done
ref="127.0.0.1:$port/bench:latest"
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$layout:bench" "docker://$ref"
echo "   pushed $ref"

# The disk's floor for what berth keeps durably: the compressed blobs plus the unpacked layers.
/usr/bin/time -f %e -o "$work/floor" dd if=/dev/zero of="$work/ddtest" bs=1M count=$((total + unpacked)) conv=fsync 2>/dev/null
floor=$(cat "$work/floor")
rm -f "$work/ddtest"

out="$here/results/pull-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
b_cmd="$berth --root $work/berth --quiet pull $ref"
d_cmd="$berth --root $work/berth-settle --quiet --settle pull $ref"
s_cmd="skopeo --insecure-policy copy -q --src-tls-verify=false docker://$ref oci:$work/skopeo:bench"
p_cmd="podman --root $work/podman-root --runroot $work/podman-run --storage-driver overlay pull -q --tls-verify=false $ref"
b_prep="rm -rf $work/berth && sync"
d_prep="rm -rf $work/berth-settle && sync"
s_prep="rm -rf $work/skopeo && sync"
p_prep="podman --root $work/podman-root --runroot $work/podman-run --storage-driver overlay rmi -a -f && sync"
k=1
while [ "$k" -le "$rounds" ]; do
    case $((k % 4)) in
        1) order="b d s p" ;;
        2) order="d s p b" ;;
        3) order="s p b d" ;;
        0) order="p b d s" ;;
    esac
    set --
    for t in $order; do
        case $t in
            b) set -- "$@" --prepare "$b_prep" -n berth "$b_cmd" ;;
            d) set -- "$@" --prepare "$d_prep" -n berth+settle "$d_cmd" ;;
            s) set -- "$@" --prepare "$s_prep" -n skopeo "$s_cmd" ;;
            p) set -- "$@" --prepare "$p_prep" -n podman "$p_cmd" ;;
        esac
    done
    echo "== round $k/$rounds ($order)"
    hyperfine --runs 1 --style basic --export-json "$out/round-$k.json" "$@"
    k=$((k + 1))
done

jq -s '[.[].results[]] | group_by(.command) | map({tool: .[0].command,
      median: ([.[].times[0]] | sort | if length % 2 == 1 then .[length/2|floor]
               else (.[length/2-1] + .[length/2]) / 2 end),
      runs: length})' "$out"/round-*.json > "$out/medians.json"
med() { jq -r --arg t "$1" '.[] | select(.tool == $t) | .median' "$out/medians.json"; }
b=$(med berth); d=$(med berth+settle); s=$(med skopeo); p=$(med podman)
{
    echo "# pull of a $layers-layer image ($total MB compressed, about $unpacked MB unpacked) from a local docker-registry"
    echo
    echo "floor: writing and fsyncing what berth keeps (blobs + unpacked layers) with dd: $floor s"
    echo
    echo "median of $rounds alternating runs each (seconds):"
    echo
    echo "| tool | median s | berth / tool | berth+settle / tool |"
    echo "| --- | --- | --- | --- |"
    echo "| berth (examples/pull) | $b | 1.00 | $(echo "$d $b" | awk '{printf "%.2f", $1/$2}') |"
    echo "| berth --settle (then syncfs) | $d | $(echo "$b $d" | awk '{printf "%.2f", $1/$2}') | 1.00 |"
    echo "| skopeo copy → oci: (no unpack) | $s | $(echo "$b $s" | awk '{printf "%.2f", $1/$2}') | $(echo "$d $s" | awk '{printf "%.2f", $1/$2}') |"
    echo "| podman pull | $p | $(echo "$b $p" | awk '{printf "%.2f", $1/$2}') | $(echo "$d $p" | awk '{printf "%.2f", $1/$2}') |"
} > "$out/summary.md"
cat "$out/summary.md"
