#!/usr/bin/env bash
# bench/pushprotect.sh — what push protection adds to a git push: Rampart
# in process, the real git client pushing N commits of ~1 MB of new source
# code each over HTTP; prints p50/p95/max of the push's wall time, of
# Rampart's pre-receive checks and of the secret scan alone. RUNS times
# (2 by default: the machine is shared, compare within one run).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-2}
N=${N:-50}
for i in $(seq 1 "$RUNS"); do
  echo "== run $i"
  go run ./bench/pushprotect -n "$N" -size $((1 << 20)) -files 40
  echo
done
