# shellcheck shell=sh
# bench/layers.sh (sourced, POSIX sh): the generated image layers the pull and unpack
# benchmarks share.
#
# gen_layer DIR I MB: writes DIR/lI.tar, a layer of about MB MB of file data — half random
# bytes, half base64 text (so gzip has something to do, as in real images), and eight small
# files — owned by 0:0, and DIR/lI.tar.gz (gzip -1) beside it. DIR must exist.
gen_layer() {
    _dir=$1 _i=$2 _mb=$3
    _d="$_dir/gen-l$_i"
    mkdir -p "$_d/data$_i"
    _half=$((_mb / 2))
    head -c "${_half}M" /dev/urandom > "$_d/data$_i/random.bin"
    head -c "$((_half * 3 / 4))M" /dev/urandom | base64 > "$_d/data$_i/text.txt"
    for _f in 1 2 3 4 5 6 7 8; do echo "small file $_f of layer $_i" > "$_d/data$_i/small-$_f"; done
    tar -C "$_d" --numeric-owner --owner=0 --group=0 -cf "$_dir/l$_i.tar" .
    gzip -1 -c "$_dir/l$_i.tar" > "$_dir/l$_i.tar.gz"
    rm -rf "$_d"
}
