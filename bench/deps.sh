#!/usr/bin/env bash
# bench/deps.sh — Rampart's dependency scan against osv-scanner, offline, fed
# the same advisories (the Go vulnerability database), on the same go.mod
# files: Rampart's own and those of large Go projects at old, vulnerable
# versions. osv-scanner runs without call analysis (Rampart matches at module
# level, as osv-scanner does then). Each tool runs RUNS times per manifest (default 5); the script
# prints the median wall times, their ratio, and any difference between the
# advisory ids the two report.
#
#   bash bench/deps.sh            # RUNS=9 bash bench/deps.sh for more runs
#
# Needs only Go and the Go module proxy. Built tools and data are cached
# under .cache/ (git-ignored), keyed by version: a second run rebuilds
# nothing. osv-scanner v2.6.0 needs Go 1.27 to build; the go command fetches
# that toolchain itself (GOTOOLCHAIN=go1.27.3) for that one build.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
RUNS=${RUNS:-5}
OSV_SCANNER_VERSION=v2.6.0
VULNDB=golang.org/x/vulndb@v0.0.0-20261105234957-e22db6528018
cache=$root/.cache
work=$cache/bench-deps
mkdir -p "$work"

# Modules whose go.mod files are scanned (only the go.mod is fetched).
manifests=(
  k8s.io/kubernetes@v1.20.0
  github.com/hashicorp/vault@v1.8.0
  github.com/hashicorp/terraform@v0.14.0
  github.com/traefik/traefik/v2@v2.4.0
  github.com/containerd/containerd@v1.5.0
  go.etcd.io/etcd/server/v3@v3.5.0
  github.com/gohugoio/hugo@v0.80.0
)

json_field() { sed -n "s/^[[:space:]]*\"$1\": \"\\(.*\\)\",\{0,1\}$/\\1/p" | head -1; }

osv=$cache/osv-scanner-$OSV_SCANNER_VERSION/osv-scanner
if [ ! -x "$osv" ]; then
  echo "building osv-scanner $OSV_SCANNER_VERSION (once; it needs Go 1.27)..." >&2
  GOTOOLCHAIN=go1.27.3 GOBIN=$(dirname "$osv") go install "github.com/google/osv-scanner/v2/cmd/osv-scanner@$OSV_SCANNER_VERSION"
fi

echo "building rampart and the bench helper..." >&2
go build -o "$work/rampart" ./cmd/rampart
go build -o "$work/depscan" ./bench/depscan

vulndb=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "$VULNDB" | json_field Dir)/data/osv
[ -d "$vulndb" ] || { echo "no $vulndb" >&2; exit 1; }
key=${VULNDB##*@}
zip=$work/vulndb-$key.zip
[ -f "$zip" ] || "$work/depscan" mkzip "$vulndb" "$zip"

# osv-scanner's offline database: the zip where v2.6.0 looks for it.
export OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY=$work/osv-db-$key
mkdir -p "$OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY/osv-scalibr/Go"
cp "$zip" "$OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY/osv-scalibr/Go/all.zip"
# Rampart's: the same zip, imported by the real command.
db=$work/advisories-$key.db
rm -f "$db"
"$work/rampart" db import "$zip" --db "$db" >/dev/null

# One directory per manifest, holding only its go.mod.
dirs=()
mkdir -p "$work/manifests/rampart"
cp go.mod "$work/manifests/rampart/go.mod"
dirs+=("$work/manifests/rampart")
for m in "${manifests[@]}"; do
  name=$(echo "$m" | tr '/@' '__')
  d=$work/manifests/$name
  if [ ! -f "$d/go.mod" ]; then
    mod=$(cd "$work" && GOFLAGS=-mod=mod go list -m -json "$m" | json_field GoMod)
    mkdir -p "$d"
    cp "$mod" "$d/go.mod"
  fi
  dirs+=("$d")
done

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# run_rampart DIR... / run_osv DIR...: one timed run; ids to $out.
run_rampart() { "$work/depscan" scan -db "$db" "$@" >"$out" 2>/dev/null; }
run_osv() {
  local args=()
  for d in "$@"; do args+=(-L "$d/go.mod"); done
  "$osv" scan source --offline --no-call-analysis=all "${args[@]}" --format json >"$out.json" 2>/dev/null || [ $? -eq 1 ]
  "$work/depscan" osv-ids "$out.json" >"$out"
}

out=$work/out
printf '\nmachine: %s, %s cores; %s; %d runs each, median wall time\n' \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" "$(nproc)" "$(go version | cut -d' ' -f3)" "$RUNS"
printf '%-40s %8s %12s %12s %8s  %s\n' manifest packages rampart_ms osv_ms ratio "same ids"
bench() { # label dir...
  local label=$1; shift
  local rt=() ot=()
  for _ in $(seq "$RUNS"); do
    s=$(now_ms); run_rampart "$@"; rt+=($(( $(now_ms) - s )))
    cp "$out" "$work/rampart.ids"
    s=$(now_ms); run_osv "$@"; ot+=($(( $(now_ms) - s )))
    cp "$out" "$work/osv.ids"
  done
  local r o n
  r=$(printf '%s\n' "${rt[@]}" | median)
  o=$(printf '%s\n' "${ot[@]}" | median)
  n=$("$work/depscan" scan -db "$db" "$@" 2>&1 >/dev/null | sed -n 's/ packages$//p')
  local same="yes ($(wc -l <"$work/rampart.ids") ids)"
  if ! diff -q "$work/rampart.ids" "$work/osv.ids" >/dev/null; then
    same="NO: $( { diff "$work/rampart.ids" "$work/osv.ids" || true; } | grep '^[<>]' | sed 's/^</rampart only:/; s/^>/osv-scanner only:/' | tr '\n' ' ')"
  fi
  printf '%-40s %8s %12s %12s %7.1fx  %s\n' "$label" "$n" "$r" "$o" "$(awk -v r="$r" -v o="$o" 'BEGIN {print o / (r > 0 ? r : 1)}')" "$same"
}
for d in "${dirs[@]}"; do
  bench "$(basename "$d")" "$d"
done
bench "all $((${#dirs[@]})) at once" "${dirs[@]}"
