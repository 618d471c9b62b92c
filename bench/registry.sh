#!/usr/bin/env bash
# bench/registry.sh — push and pull of a 1 GiB image (four 256 MiB random,
# pre-gzipped layers) with crane over loopback, against Rampart (token auth
# and scan on push included) and the reference CNCF registry v3.1.2, in
# one run; prints seconds, MiB/s and the ratios. RUNS=N repeats.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
runs=${RUNS:-2}
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
mkdir -p .cache/tools .cache/bench-registry
tools=$root/.cache/tools
build_tool() { # name version package
  local out="$tools/$1-$2"
  [ -x "$out" ] && return 0
  local tmp; tmp=$(mktemp -d)
  GOBIN="$tmp" go install "$3@$2"
  mv "$tmp/$(basename "$3")" "$out"; rm -rf "$tmp"
}
build_tool crane v0.22.1 github.com/google/go-containerregistry/cmd/crane
build_tool registry v3.1.2 github.com/distribution/distribution/v3/cmd/registry
crane=$tools/crane-v0.22.1
refreg=$tools/registry-v3.1.2
go build -o .cache/rampart ./cmd/rampart

work=$(mktemp -d /tmp/rampart-bench-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# The image: four layers, each a tar of 256 MiB of random bytes, gzipped
# once here (random data does not shrink) so both registries get the same
# bytes. Cached between runs.
img=$root/.cache/bench-registry/image.tar
if [ ! -s "$img" ]; then
  echo "building the 1 GiB test image (once)"
  args=()
  for i in 1 2 3 4; do
    d=$work/l$i; mkdir -p "$d"
    head -c $((256 * 1024 * 1024 - 10240)) /dev/urandom > "$d/blob$i"
    tar -C "$d" -cf - "blob$i" | gzip -1 > "$work/layer$i.tar.gz"
    rm -rf "$d"; args+=(-f "$work/layer$i.tar.gz")
  done
  "$crane" append --oci-empty-base "${args[@]}" -t bench/image:1 -o "$img" >/dev/null 2>&1
  rm -f "$work"/layer*.tar.gz
fi
size=$(stat -c %s "$img")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_http() { for _ in $(seq 1 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }
now() { date +%s.%N; }
# cpu PID: user+system CPU seconds the process has used so far.
cpu() { awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
# PERF=1 records a CPU profile (perf, call graphs) of Rampart's server
# during each push and pull into .cache/bench-registry/perf-*.data and
# prints the top of it.
perf_start() { # name
  [ "${PERF:-}" = 1 ] || return 0
  perf record -q -F 499 -g -p "$rpid" -o "$root/.cache/bench-registry/perf-$1.data" >/dev/null 2>&1 &
  perf_pid=$!; sleep 0.2; return 0
}
perf_stop() { # name
  [ "${PERF:-}" = 1 ] || return 0
  kill -INT "$perf_pid"; wait "$perf_pid" || true
  echo "--- perf top of rampart during $1:"
  perf report -q --stdio --no-children -i "$root/.cache/bench-registry/perf-$1.data" --sort symbol -g none 2>/dev/null | grep -v '^$' | head -"${PERF_TOP:-25}" || true
}

# Rampart, with an org, a developer token and the registry scanning.
rport=$(free_port)
RAMPART_ADMIN_PASSWORD=bench-admin-password-1 .cache/rampart up --data "$work/rampart" --addr 127.0.0.1:$rport --tls=off \
  --ssh-addr '' --gateway-addr '' --log-level warn >"$work/rampart.log" 2>&1 &
rpid=$!; pids+=($rpid)
wait_http "http://127.0.0.1:$rport/healthz"
token=$(curl -sf -H 'Content-Type: application/json' -d '{"username":"admin","password":"bench-admin-password-1","token_name":"bench"}' \
  "http://127.0.0.1:$rport/api/v1/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"]["token"])')
curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d '{"name":"bench"}' "http://127.0.0.1:$rport/api/v1/orgs" >/dev/null

# The reference registry, filesystem storage, deletes on.
gport=$(free_port)
cat > "$work/registry.yml" <<YML
version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: $work/reference}
  delete: {enabled: true}
http: {addr: 127.0.0.1:$gport}
YML
OTEL_TRACES_EXPORTER=none "$refreg" serve "$work/registry.yml" >"$work/reference.log" 2>&1 &
gpid=$!; pids+=($gpid)
wait_http "http://127.0.0.1:$gport/v2/"

export GOMODCACHE=$(go env GOMODCACHE) GOCACHE=$(go env GOCACHE) GOPATH=$(go env GOPATH)
export HOME=$work/home DOCKER_CONFIG=$work/home/.docker
mkdir -p "$HOME"
"$crane" auth login 127.0.0.1:$rport -u admin -p "$token" >/dev/null 2>&1

scan_wait() { # digest → seconds until the scanner decided (run in $run)
  local t0; t0=$(now)
  for _ in $(seq 1 1200); do
    st=$(curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$rport/api/v1/orgs/bench/registry/repositories/image$run" |
      python3 -c "import json,sys; d=json.load(sys.stdin); print(next((m.get('scan_status','') for m in d['manifests'] if m['digest']=='$1'),''))")
    [ -n "$st" ] && [ "$st" != pending ] && { echo "$(echo "$(now) - $t0" | bc -l) $st"; return; }
    sleep 0.2
  done
  echo "timeout"
}

printf '%-10s %-4s %8s %8s %9s %9s %8s %8s %s\n' registry run push_s pull_s push_MiB/s pull_MiB/s push_cpu pull_cpu notes
declare -A tot
# Round 0 warms both servers up (first requests, the scanner's first
# database load, heap growth) and is printed but not counted.
for run in $(seq 0 "$runs"); do
  # Alternate who goes first, and flush dirty pages before each timed
  # step: the side measured second would otherwise pay for the writeback
  # of the first side's gigabyte.
  order="reference rampart"; [ $((run % 2)) = 0 ] && order="rampart reference"
  for target in $order; do
    if [ $target = rampart ]; then host=127.0.0.1:$rport pid=$rpid; else host=127.0.0.1:$gport pid=$gpid; fi
    # A fresh repository each run: the whole image is uploaded every time.
    ref=$host/bench/image$run:1
    if [ $target = rampart ]; then perf_start "push-$run"; fi
    sync
    c0=$(cpu $pid); t0=$(now); "$crane" push --insecure "$img" "$ref" >/dev/null 2>&1; t1=$(now); c1=$(cpu $pid)
    if [ $target = rampart ]; then perf_stop "push-$run"; fi
    notes=""
    if [ $target = rampart ]; then
      dig=$("$crane" digest --insecure "$ref")
      read -r scan_s status < <(scan_wait "$dig")
      notes="scan ${scan_s}s ($status)"
    fi
    out=$work/pulled.tar; rm -f "$out"
    if [ $target = rampart ]; then perf_start "pull-$run"; fi
    sync
    c2=$(cpu $pid); t2=$(now); "$crane" pull --insecure "$ref" "$out" >/dev/null 2>&1; t3=$(now); c3=$(cpu $pid)
    if [ $target = rampart ]; then perf_stop "pull-$run"; fi
    rm -f "$out"
    push=$(echo "$t1 - $t0" | bc -l); pull=$(echo "$t3 - $t2" | bc -l)
    if [ "$run" -gt 0 ]; then
      tot[$target.push]=$(echo "${tot[$target.push]:-0} + $push" | bc -l)
      tot[$target.pull]=$(echo "${tot[$target.pull]:-0} + $pull" | bc -l)
    else
      notes="$notes (warm-up, not counted)"
    fi
    printf '%-10s %-4s %8.2f %8.2f %9.0f %9.0f %8.2f %8.2f %s\n' $target $run "$push" "$pull" \
      "$(echo "$size / 1048576 / $push" | bc -l)" "$(echo "$size / 1048576 / $pull" | bc -l)" \
      "$(echo "$c1 - $c0" | bc -l)" "$(echo "$c3 - $c2" | bc -l)" "$notes"
  done
done

# The registries' own serving speed, without crane: crane's pull hashes the
# image and writes a 1 GiB tarball, which dominates its time and varies with
# the disk. curl fetches the image's first layer (256 MiB) from each, to
# /dev/null, alternating, SERVE_RUNS times (last run's repositories).
layer=$("$crane" manifest --insecure "127.0.0.1:$gport/bench/image$runs:1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["digest"])')
for i in $(seq 1 "${SERVE_RUNS:-5}"); do
  t0=$(now); curl -sf -o /dev/null "http://127.0.0.1:$gport/v2/bench/image$runs/blobs/$layer"; t1=$(now)
  curl -sf -o /dev/null -u "admin:$token" "http://127.0.0.1:$rport/v2/bench/image$runs/blobs/$layer"; t2=$(now)
  tot[reference.serve]=$(echo "${tot[reference.serve]:-0} + $t1 - $t0" | bc -l)
  tot[rampart.serve]=$(echo "${tot[rampart.serve]:-0} + $t2 - $t1" | bc -l)
done
lsize=$(curl -sfI "http://127.0.0.1:$gport/v2/bench/image$runs/blobs/$layer" | awk 'tolower($1)=="content-length:" {print $2+0}')

# The ceiling: Go's sha256 on this machine, which a verifying registry
# cannot beat.
shaMiBs=$(go test ./internal/registry/ -run '^$' -bench '^BenchmarkSHA256$' -benchtime 2s | awk '/MB\/s/ {for(i=1;i<=NF;i++) if($i=="MB/s") print $(i-1)/1.048576}')
echo
echo "throughput ratio rampart/reference (higher is better for Rampart), over $runs runs:"
printf '  push %.2f×   pull %.2f×\n' "$(echo "${tot[reference.push]} / ${tot[rampart.push]}" | bc -l)" "$(echo "${tot[reference.pull]} / ${tot[rampart.pull]}" | bc -l)"
printf '  serving a 256 MiB layer (curl, %s runs): reference %.0f MiB/s, rampart %.0f MiB/s, %.2f×\n' "${SERVE_RUNS:-5}" \
  "$(echo "$lsize * ${SERVE_RUNS:-5} / 1048576 / ${tot[reference.serve]}" | bc -l)" \
  "$(echo "$lsize * ${SERVE_RUNS:-5} / 1048576 / ${tot[rampart.serve]}" | bc -l)" \
  "$(echo "${tot[reference.serve]} / ${tot[rampart.serve]}" | bc -l)"
printf 'sha256 ceiling: %.0f MiB/s; rampart push at %.0f%%, pull at %.0f%% of it\n' "$shaMiBs" \
  "$(echo "100 * $size * $runs / 1048576 / ${tot[rampart.push]} / $shaMiBs" | bc -l)" \
  "$(echo "100 * $size * $runs / 1048576 / ${tot[rampart.pull]} / $shaMiBs" | bc -l)"
