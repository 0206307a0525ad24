#!/bin/sh
# run-one.sh RUNTIME ROOT BUNDLE: one `RUNTIME --root ROOT run --bundle BUNDLE <id>`, with an id
# unique to this run (the pid, which the runtime keeps by exec), for bench/runtime.sh.
exec "$1" --root "$2" run --bundle "$3" "bench-$$"
