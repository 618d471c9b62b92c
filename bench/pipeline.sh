#!/usr/bin/env bash
# bench/pipeline.sh — overhead of a no-op pipeline job, from the run being
# queued to its container finishing, through the whole server (manual run
# → store → scheduler → tmpfs workspace → git checkout → runc → log →
# status), compared with the floor: runc running `true` directly, in the
# same run. Needs root and runc (apt-get install -y runc).
#
#   bash bench/pipeline.sh            # COUNT=3 RUNS=20 by default
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-3}
RUNS=${RUNS:-20}
command -v runc >/dev/null || { echo "runc is not installed (apt-get install -y runc)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "run as root: runc creates the containers" >&2; exit 1; }
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "runc: $(runc --version | head -1); go: $(go version | cut -d' ' -f3)"
go test -run '^$' -bench 'BenchmarkNoopJob' -benchtime "${RUNS}x" -count "$COUNT" ./internal/pipeline |
  awk '/^Benchmark/ {
    for (i = 1; i <= NF; i++) {
      if ($(i+1) == "ms-queued-to-finished-median") med = $i
      if ($(i+1) == "ms-runc-true-median") floor = $i
      if ($(i+1) == "x-runc-floor") ratio = $i
    }
    printf "%-32s no-op job queued→finished median %5s ms   runc true alone %5s ms   ratio %s\n", $1, med, floor, ratio
  }'
