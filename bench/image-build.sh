#!/usr/bin/env bash
# bench/image-build.sh — a daemonless image build of a typical small
# service (a 6 MiB binary, 200 static files of 4 KiB, a config file) into
# an OCI image on disk: `rampart image build --output-layout` (which also
# scans the image for its SBOM and writes provenance) against crane v0.22.1
# appending the same files, tarred, as one layer onto an empty base
# (`tar` + `crane append --oci-empty-base -o`). Median of RUNS (default 7)
# wall times per tool, interleaved, and their ratio; repeat the script on
# a shared machine and compare within one run.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-7}
root=$PWD
mkdir -p .cache/tools .cache/bin
crane=.cache/tools/crane-v0.22.1
if [ ! -x "$crane" ]; then
  tmp=$(mktemp -d); GOBIN="$tmp" go install github.com/google/go-containerregistry/cmd/crane@v0.22.1
  mv "$tmp/crane" "$crane"; rm -rf "$tmp"
fi
go build -o .cache/bin/rampart ./cmd/rampart
rampart=$root/.cache/bin/rampart

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ctx=$work/ctx
mkdir -p "$ctx/app/bin" "$ctx/app/web/static" "$ctx/app/etc"
head -c $((6 << 20)) /dev/urandom > "$ctx/app/bin/server"
chmod 755 "$ctx/app/bin/server"
for i in $(seq -w 1 200); do head -c 4096 /dev/urandom > "$ctx/app/web/static/$i.css"; done
echo "listen: :8080" > "$ctx/app/etc/config.yaml"
printf 'FROM scratch\nCOPY app/ /app/\nENTRYPOINT ["/app/bin/server"]\n' > "$ctx/Dockerfile"
echo app/Dockerfile > "$ctx/.dockerignore"

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }
r_times=() c_times=()
for i in $(seq 1 "$RUNS"); do
  t=$(date +%s%N)
  "$rampart" image build --output-layout "$work/r$i" "$ctx" >/dev/null
  r_times+=("$(ms "$t")")
  t=$(date +%s%N)
  tar -C "$ctx" -cf "$work/layer$i.tar" app
  "$crane" append --oci-empty-base -f "$work/layer$i.tar" -t bench/app:1 -o "$work/c$i.tar" 2>/dev/null
  c_times+=("$(ms "$t")")
  rm -rf "$work/r$i" "$work/c$i.tar" "$work/layer$i.tar"
done
r=$(printf '%s\n' "${r_times[@]}" | median)
c=$(printf '%s\n' "${c_times[@]}" | median)
echo "rampart image build (with SBOM + provenance): median ${r} ms  (${r_times[*]})"
echo "tar + crane append:                          median ${c} ms  (${c_times[*]})"
awk -v r="$r" -v c="$c" 'BEGIN { printf "ratio crane/rampart: %.2f (above 1: Rampart faster)\n", c / r }'
