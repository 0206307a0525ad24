#!/bin/bash
# tests/conformance/contest.sh: youki's OCI conformance suite ("contest") against
# berth-runtime and runc in one run, with a per-test table of both results.
#
# The suite is not part of this repository and this script never builds it: get and build it
# yourself outside the repository as docs/CONFORMANCE.md describes. When it is not there the
# script prints "skipped: ..." and exits 0. It is not part of CI (scripts/test does not call it).
#
# Usage (as root, from anywhere):
#
#   CONTEST_DIR=/work/ext/youki tests/conformance/contest.sh [TEST-SELECTOR...]
#
# TEST-SELECTOR is passed to `contest run -t` (e.g. `hooks` or `lifecycle::create,start`); with
# none, the whole suite runs.
#
# Environment:
#   CONTEST_DIR     a youki source tree in which contest and runtimetest were built, or a
#                   directory holding the binaries `contest`, `runtimetest` and `bundle.tar.gz`
#   CONTEST         the contest binary (overrides the search in CONTEST_DIR)
#   RUNTIMETEST     the statically linked runtimetest binary (likewise)
#   CONTEST_BUNDLE  the suite's bundle.tar.gz (likewise)
#   BERTH_RUNTIME   the berth-runtime binary (default: target/release/berth-runtime if it
#                   exists, else target/debug/berth-runtime)
#   RUNC            the runc binary (default: `runc` on PATH; without one the runc column says n/a)
#   RUNTIMES        which to run: "berth runc" (default), "berth" or "runc"
#   CONTEST_TIMEOUT seconds one test group may take (default 600)
#   OUT_DIR         where logs and the table go (default: a new directory under /tmp)
#
# Output: OUT_DIR/<runtime>.stdout and .stderr (the suite's own output, with each failure's
# message), OUT_DIR/<runtime>.results (group::test, result, first line of the message),
# OUT_DIR/table.md, and on stdout the table, each runtime's totals, the tests that pass with runc
# and fail with berth, and whatever a pass left on the host (cgroup directories, mounts, processes).
#
# Exit status: 0 when berth-runtime fails no test that runc passes (or the suite is absent),
# 1 otherwise, 2 on a usage error.
set -u
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=SCRIPTDIR/report.sh
. "$here/report.sh"

first_file() {
    for f in "$@"; do
        if [ -f "$f" ]; then
            printf '%s\n' "$f"
            return 0
        fi
    done
    return 1
}

dir=${CONTEST_DIR:-}
contest=${CONTEST:-}
runtimetest=${RUNTIMETEST:-}
bundle=${CONTEST_BUNDLE:-}
if [ -n "$dir" ]; then
    [ -n "$contest" ] || contest=$(first_file "$dir/contest" "$dir/target/release/contest" \
        "$dir/target/debug/contest" "$dir/target/x86_64-unknown-linux-gnu/release/contest" \
        "$dir/target/x86_64-unknown-linux-gnu/debug/contest") || contest=
    [ -n "$runtimetest" ] || runtimetest=$(first_file "$dir/runtimetest" \
        "$dir/contest-target/x86_64-unknown-linux-gnu/release/runtimetest" \
        "$dir/contest-target/x86_64-unknown-linux-gnu/debug/runtimetest" \
        "$dir/target/x86_64-unknown-linux-gnu/release/runtimetest" \
        "$dir/target/x86_64-unknown-linux-gnu/debug/runtimetest") || runtimetest=
    [ -n "$bundle" ] || bundle=$(first_file "$dir/bundle.tar.gz" \
        "$dir/tests/contest/contest/bundle.tar.gz") || bundle=
fi

if [ -z "$contest" ] || [ -z "$runtimetest" ] || [ -z "$bundle" ]; then
    echo "skipped: youki's contest suite is not present (CONTEST_DIR='${dir}': contest='${contest}'" \
        "runtimetest='${runtimetest}' bundle.tar.gz='${bundle}'); see docs/CONFORMANCE.md to build it"
    exit 0
fi
for f in "$contest" "$runtimetest"; do
    if [ ! -x "$f" ]; then
        echo "contest.sh: $f is not executable" >&2
        exit 2
    fi
done
if [ "$(id -u)" != 0 ]; then
    echo "contest.sh: the suite creates namespaces, cgroups and mounts: run it as root" >&2
    exit 2
fi

berth=${BERTH_RUNTIME:-}
if [ -z "$berth" ]; then
    berth=$(first_file "$repo/target/release/berth-runtime" "$repo/target/debug/berth-runtime") || berth=
fi
runc=${RUNC:-$(command -v runc || true)}
runtimes=${RUNTIMES:-berth runc}
timeout_s=${CONTEST_TIMEOUT:-600}
out=${OUT_DIR:-$(mktemp -d /tmp/berth-contest.XXXXXX)}
mkdir -p "$out"

# contest unpacks bundle.tar.gz from its working directory into a temporary directory per test.
work="$out/work"
mkdir -p "$work"
cp "$bundle" "$work/bundle.tar.gz"

if [ $# -gt 0 ]; then
    selectors=("$@")
else
    mapfile -t selectors < <(cd "$work" && "$contest" list 2>/dev/null)
    if [ ${#selectors[@]} = 0 ]; then
        echo "contest.sh: \`$contest list\` printed no test groups" >&2
        exit 2
    fi
fi

# What a pass may leave behind: cgroup directories, mounts and processes that mention the suite.
host_state() {
    find /sys/fs/cgroup -mindepth 2 -maxdepth 4 -type d 2>/dev/null | sort
    findmnt -rn -o TARGET | sort | sed 's/^/mount /'
}

close_inherited_fds() {
    local f fd
    for f in /proc/"$BASHPID"/fd/*; do
        fd=${f##*/}
        if [ "$fd" -gt 2 ]; then
            eval "exec $fd>&-" 2>/dev/null
        fi
    done
    return 0
}

run_suite() { # name binary
    local name=$1 bin=$2 before after
    before="$out/$name.host-before"
    after="$out/$name.host-after"
    host_state > "$before"
    echo "== $name: $bin" >&2
    # RUNTIME_KIND tells the suite which runtime it drives; unset, it takes youki and skips what
    # youki lacks (checkpoint), which would hide those tests from berth's column.
    local kind=(env RUNTIME_KIND=berth)
    if [ "$name" = runc ]; then
        # The suite skips a few tests it knows runc does not pass the youki way.
        kind=(env RUNTIME_KIND=runc)
    fi
    : > "$out/$name.stdout"
    : > "$out/$name.stderr"
    # One contest invocation per group: a test that panics (as some do when a runtime lacks a
    # flag they use) takes down its whole contest process, and so only its own group.
    local sel rc
    for sel in "${selectors[@]}"; do
        printf '# Selector %s\n' "$sel" >> "$out/$name.stdout"
        # contest's fd tests count the descriptors a container gets with --preserve-fds: close
        # whatever this shell inherited (a terminal multiplexer or CI wrapper may leave some).
        (close_inherited_fds && cd "$work" && "${kind[@]}" timeout --kill-after=30 "$timeout_s" "$contest" run \
            --runtime "$bin" --runtimetest "$runtimetest" -t "$sel" \
            >> "$out/$name.stdout" 2> "$out/$name.stderr.last")
        rc=$?
        if [ $rc = 124 ] || [ $rc = 137 ]; then
            printf '# Crashed %s: no result within %ss\n' "$sel" "$timeout_s" >> "$out/$name.stdout"
        elif [ $rc != 0 ]; then
            printf '# Crashed %s: contest exited %s: %s\n' "$sel" "$rc" \
                "$(grep -m1 -A1 'panicked at' "$out/$name.stderr.last" | tail -n1 | cut -c1-160)" \
                >> "$out/$name.stdout"
        fi
        cat "$out/$name.stderr.last" >> "$out/$name.stderr"
    done
    rm -f "$out/$name.stderr.last"
    # One line per test: group::test <TAB> ok|skipped|fail <TAB> first line of the message.
    awk '
        /^# Selector / { sel = substr($0, 12); seen = 0; next }
        /^# Start group / { group = substr($0, 15); seen = 1; next }
        /^# Crashed / {
            if (pending != "") { print pending "\t"; pending = "" }
            msg = $0; sub(/^# Crashed [^:]*: /, "", msg)
            # The tests of a crashed group that did print a result keep it; the group itself
            # gets a line saying that the rest did not run.
            print sel "::(contest crashed)\tCRASH\t" substr(msg, 1, 160)
            next
        }
        /^[0-9]+ \/ [0-9]+ : / {
            if (pending != "") { print pending "\t" ""; pending = "" }
            line = $0
            sub(/^[0-9]+ \/ [0-9]+ : /, "", line)
            n = split(line, parts, " : ")
            result = parts[n]
            test = substr(line, 1, length(line) - length(result) - 3)
            if (result == "ok") { print group "::" test "\tok\t"; next }
            r = (result == "skipped") ? "skipped" : "FAIL"
            pending = group "::" test "\t" r
            next
        }
        /^\t/ && pending != "" {
            msg = $0; sub(/^\t/, "", msg); gsub(/\t/, " ", msg)
            print pending "\t" substr(msg, 1, 160); pending = ""; next
        }
        END { if (pending != "") print pending "\t" }
    ' "$out/$name.stdout" | sort > "$out/$name.results"
    host_state > "$after"
    local left
    left=$(comm -13 "$before" "$after")
    if [ -n "$left" ]; then
        echo "LEFTOVERS after the $name pass (cgroup directories and mounts that were not there before):"
        printf '%s\n' "$left" | sed 's/^/  /'
    fi
    local procs
    # Zombies are left out: contest does not reap some of its children, and the machine's pid 1
    # may not either; they hold nothing.
    procs=$(ps -eo pid,stat,args | awk '$2 !~ /^Z/' | grep -E 'runtimetest|contest run|sleep 3000' | grep -v -E 'grep|contest\.sh' || true)
    if [ -n "$procs" ]; then
        echo "LEFTOVER processes after the $name pass:"
        printf '%s\n' "$procs" | sed 's/^/  /'
    fi
}

ran=()
for r in $runtimes; do
    case $r in
        berth)
            if [ -z "$berth" ] || [ ! -x "$berth" ]; then
                echo "contest.sh: no berth-runtime binary (build it with cargo build -p berth-runtime, or set BERTH_RUNTIME)" >&2
                exit 2
            fi
            run_suite berth "$berth"
            ran+=(berth)
            ;;
        runc)
            if [ -z "$runc" ]; then
                echo "contest.sh: runc is not installed: its column says n/a" >&2
                continue
            fi
            run_suite runc "$runc"
            ran+=(runc)
            ;;
        *)
            echo "contest.sh: RUNTIMES holds '$r'; use berth and/or runc" >&2
            exit 2
            ;;
    esac
done

report "$out" test no skipped skipped yes "${ran[@]}"
status=$?
echo "logs, per-test messages and table.md: $out"
exit $status
