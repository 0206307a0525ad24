# bench/lib.sh: what the end-to-end benchmark scripts share. Sourced, not run.
# The caller sets `me` (its name for messages) and `bin` (target/release).

die() { echo "$me: $*" >&2; exit 1; }

# require_root_and_binaries BINARY...: root, hyperfine, and berth's release binaries.
require_root_and_binaries() {
    [ "$(id -u)" = 0 ] || die "run me as root"
    command -v hyperfine >/dev/null || die "hyperfine is missing: apt-get install hyperfine"
    local b
    for b in "$@"; do
        [ -x "$bin/$b" ] || die "$bin/$b missing: cargo build --release -p ${*// / -p }"
    done
}

# wait_for WHAT COMMAND...: bounded wait (30 s) for a daemon to answer.
wait_for() {
    local what=$1; shift
    for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    die "$what did not come up"
}

# rotated_rounds OUT.json RUNS ROUNDS: times the commands in the arrays `names` and `cmds`
# with hyperfine in ROUNDS rounds whose order rotates (a load spike on a shared machine
# does not land on one command only), and writes the medians over all runs to OUT.json
# ({results: [{command, median, runs}]}, seconds).
rotated_rounds() {
    local json=$1 runs=$2 rounds=$3
    local per_round=$((runs / rounds)) n=${#names[@]} k i j
    local dir
    dir=$(dirname "$json")
    for ((k = 0; k < rounds; k++)); do
        set --
        for ((i = 0; i < n; i++)); do
            j=$(((i + k) % n))
            set -- "$@" --command-name "${names[$j]}" "${cmds[$j]}"
        done
        hyperfine -N --style basic --warmup 2 --runs "$per_round" \
            --export-json "$dir/round-$k.json" "$@" >/dev/null
    done
    jq -s '
      def median: sort | if length % 2 == 1 then .[(length - 1) / 2] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
      {results: ([.[].results[]] | group_by(.command)
        | map({command: .[0].command, median: ([.[].times[]] | median), runs: ([.[].times[]] | length)}))}
    ' "$dir"/round-*.json > "$json"
    jq -r '.results[] | "\(.command): median \(.median * 1000 | . * 100 | round / 100) ms over \(.runs) runs"' "$json"
}
