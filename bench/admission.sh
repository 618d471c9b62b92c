#!/usr/bin/env bash
# bench/admission.sh — AdmissionReviews per second through Rampart's
# admission webhook, end to end: `rampart up` serving HTTPS on loopback
# (its own CA), a service-account token with policy:decide, and the load
# generator bench/admission sending AdmissionReview v1 requests for pods
# (half admitted, half denied by the built-in policies) — first the
# replicas of two ReplicaSets, as a cluster sends them (they share the
# admission gate's cached result), then pods that all differ (every
# review evaluated) — from CLIENTS
# concurrent keep-alive connections for DURATION, RUNS times. Every review
# is authenticated, authorised, judged by every admission policy and
# recorded in the decision log, as in production. The generator runs on the
# same machine and takes CPU from the server: the figure is a floor. The
# peer, run first for each client count, is an authenticated GET of a small
# static document through the same server (the floor of any API request).
#
#   bash bench/admission.sh                   # SQLite in a temporary data directory
#   STORE=postgres://… bash bench/admission.sh
#   CLIENTS="16 64" DURATION=20s RUNS=3 bash bench/admission.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
CLIENTS=${CLIENTS:-"8 32 64"}
DURATION=${DURATION:-10s}
RUNS=${RUNS:-2}
STORE=${STORE:-}
mkdir -p .cache/bin
go build -o .cache/bin/rampart ./cmd/rampart
go build -o .cache/bin/admission-load ./bench/admission

data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 18443)
export RAMPART_ADMIN_PASSWORD="bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
args=(up --data "$data" --addr "127.0.0.1:$port" --tls=on --log-level warn)
[ -n "$STORE" ] && args+=(--store "$STORE")
./.cache/bin/rampart "${args[@]}" >"$data/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 300); do
  [ -f "$data/tls/ca.crt" ] && curl -fsS --cacert "$data/tls/ca.crt" "https://localhost:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
echo "rampart up on https://localhost:$port (store: ${STORE:-sqlite}); $(nproc) cores; $(uptime | sed 's/.*load/load/')"
# cpu_ticks is the server's user+system CPU time so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
# load MODE CLIENTS: one run of the generator; prints its line and the
# server's CPU per request (warm-up included in both, so it is a ceiling).
load() {
  local before after out n w flag=()
  [ "$1" = baseline ] && flag=(-baseline)
  [ "$1" = distinct ] && flag=(-distinct)
  before=$(cpu_ticks)
  out=$(./.cache/bin/admission-load -server "https://localhost:$port" -ca "$data/tls/ca.crt" -c "$2" -d "$DURATION" "${flag[@]}")
  after=$(cpu_ticks)
  n=$(sed -n 's/.*: \([0-9]*\) requests,.*/\1/p' <<<"$out")
  w=$(sed -n 's/.*warm-up \([0-9]*\) requests.*/\1/p' <<<"$out")
  rate=$(sed -n 's/.* \([0-9]*\) requests\/s.*/\1/p' <<<"$out")
  cpu=$(awk -v t=$((after - before)) -v hz="$hz" -v n="$n" -v w="${w:-0}" 'BEGIN { printf "%.3f", t * 1000 / hz / (n + w) }')
  printf '  %s; server CPU %s ms per request\n' "$out" "$cpu"
}
# Each client count runs the peer first — an authenticated, authorised
# GET of a small static document through the same server, the floor of
# any API request here — then the AdmissionReviews; the ratios compare
# them within the run.
for run in $(seq 1 "$RUNS"); do
  for c in $CLIENTS; do
    echo "run $run, $c clients:"
    load baseline "$c"; brate=$rate bcpu=$cpu
    load admission "$c"
    awk -v br="$brate" -v ar="$rate" -v bc="$bcpu" -v ac="$cpu" \
      'BEGIN { printf "  replicas / baseline: %.2f of the requests per second, %.2f times the CPU per request\n", ar / br, ac / bc }'
    load distinct "$c"
    awk -v br="$brate" -v ar="$rate" -v bc="$bcpu" -v ac="$cpu" \
      'BEGIN { printf "  distinct pods / baseline: %.2f of the requests per second, %.2f times the CPU per request\n", ar / br, ac / bc }'
  done
done
