#!/bin/sh
# run-one.sh --cleanup RUNTIME ROOT ID: the untimed --prepare step of bench/runtime.sh; removes
# whatever a failed run left under ID, and succeeds whether or not there was anything.
[ "$1" = --cleanup ] || { echo "usage: run-one.sh --cleanup RUNTIME ROOT ID" >&2; exit 2; }
"$2" --root "$3" delete --force "$4" >/dev/null 2>&1
exit 0
