# shellcheck shell=sh
# tests/conformance/report.sh: the side-by-side report both conformance scripts end with,
# sourced by contest.sh and runtime-tools.sh (plain sh, so either shell can source it).
#
# Each script leaves OUT/berth.results and OUT/runc.results: one line per test, sorted, with
# three tab-separated fields: the test's name, its result (ok, FAIL, or a script's own kind
# such as skipped or none) and a detail (a failure's message, or the counts of assertions).

# report OUT ITEM CELL_DETAIL THIRD THIRD_LABEL WORSE_DETAIL [RUNTIME...]
#
# Writes OUT/table.md (a row per test either pass reported, "n/a" where a runtime has no
# result) and prints it, then each RUNTIME's totals, then the tests that runc passes and
# berth-runtime does not. Returns 1 when there are such tests, else 0.
#
#   ITEM          the first column's header (`test`, `program`)
#   CELL_DETAIL   `yes`: a cell shows the detail in parentheses after the result
#   THIRD         the result counted in the third total, besides ok and FAIL
#   THIRD_LABEL   how that total reads (`skipped`, `with no assertion`)
#   WORSE_DETAIL  `yes`: each test berth-runtime does worse on is listed with its detail
report() {
    report_out=$1
    report_item=$2
    report_cell_detail=$3
    report_third=$4
    report_third_label=$5
    report_worse_detail=$6
    shift 6
    for report_r in berth runc; do
        [ -f "$report_out/$report_r.results" ] || : > "$report_out/$report_r.results"
    done

    {
        echo "| $report_item | berth | runc |"
        echo "| --- | --- | --- |"
        cut -f1 "$report_out/berth.results" "$report_out/runc.results" | sort -u \
            | while IFS= read -r report_t; do
                report_b=$(report_cell "$report_out/berth.results" "$report_t" "$report_cell_detail")
                report_c=$(report_cell "$report_out/runc.results" "$report_t" "$report_cell_detail")
                echo "| $report_t | ${report_b:-n/a} | ${report_c:-n/a} |"
            done
    } > "$report_out/table.md"
    cat "$report_out/table.md"
    echo

    for report_r in "$@"; do
        awk -F'\t' -v r="$report_r" -v third="$report_third" -v label="$report_third_label" '
            { n[$2]++ }
            END { printf "%s: %d passed, %d failed, %d %s\n", r, n["ok"], n["FAIL"], n[third], label }
        ' "$report_out/$report_r.results"
    done

    report_status=0
    if [ -s "$report_out/berth.results" ] && [ -s "$report_out/runc.results" ]; then
        report_worse=$(join -t "$(printf '\t')" "$report_out/berth.results" "$report_out/runc.results" \
            | awk -F'\t' -v detail="$report_worse_detail" '
                $2 != "ok" && $4 == "ok" { print "  " $1 (detail == "yes" ? ": " $3 : "") }')
        if [ -n "$report_worse" ]; then
            echo "berth-runtime fails where runc passes:"
            printf '%s\n' "$report_worse"
            report_status=1
        fi
    fi
    return $report_status
}

# report_cell RESULTS TEST CELL_DETAIL: TEST's result in RESULTS (with its detail when
# CELL_DETAIL is `yes`), empty when RESULTS has none.
report_cell() {
    awk -F'\t' -v t="$2" -v detail="$3" '
        $1 == t { print $2 (detail == "yes" ? " (" $3 ")" : ""); exit }' "$1"
}
