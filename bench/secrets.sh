#!/usr/bin/env bash
# bench/secrets.sh — Rampart's secret scanner against gitleaks v8.30.1, on
# the same corpora in the same run:
#
#   dir    the Go module cache of Rampart's own dependencies (≈540 MB)
#   git    a long history made of successive releases of golang.org/x/tools
#          (GIT_VERSIONS of them, all 71 by default): each release is
#          committed directory by directory (one commit per changed
#          two-level directory), a few thousand commits in all
#   recall a corpus of planted secrets (synthetic values in every format
#          Rampart knows, labelled), found by each tool
#   clean  Go's standard library source, where every finding is a false
#          positive
#
# It prints wall time, MB/s and the ratio for dir and git (RUNS times
# each, 2 by default: the machine is shared, compare within one run),
# recall for the planted corpus and finding counts for the clean one.
# Tools and corpora are built once under .cache/ (git-ignored) and reused.
# Both tools skip files over 10 MB and binary files, write a JSON report,
# and run with their defaults otherwise (gitleaks: decoding depth 5; set
# GITLEAKS_FLAGS to change that). Needs go, git, bash, awk and grep.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cache=$root/.cache
bench=$cache/bench
RUNS=${RUNS:-2}
GIT_VERSIONS=${GIT_VERSIONS:-71}
GITLEAKS_VERSION=v8.30.1
GITLEAKS_FLAGS=${GITLEAKS_FLAGS:-}
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
mkdir -p "$bench" "$cache/bin"

log() { printf '\n== %s\n' "$*"; }
now() { date +%s.%N; }

# Tools.
gitleaks=$cache/tools/gitleaks-$GITLEAKS_VERSION/gitleaks
if [ ! -x "$gitleaks" ]; then
  log "building gitleaks $GITLEAKS_VERSION (once)"
  GOBIN=$(dirname "$gitleaks") go install "github.com/zricethezav/gitleaks/v8@$GITLEAKS_VERSION"
fi
rampart=$cache/bin/secretscan
go build -o "$rampart" ./bench/secretscan

# Corpus (a): the module cache of Rampart's dependencies, hard-linked (or
# copied) into one tree so both tools get one directory.
modcache=$(go env GOMODCACHE)
dircorpus=$bench/modcache-$(sha256sum go.sum | cut -c1-12)
if [ ! -f "$dircorpus/.done" ]; then
  log "preparing the module-cache corpus (once)"
  go mod download
  rm -rf "$dircorpus"; mkdir -p "$dircorpus"
  go list -m -f '{{if and .Dir (not .Main)}}{{.Dir}}{{end}}' all | while read -r d; do
    rel=${d#"$modcache"/}
    mkdir -p "$dircorpus/$(dirname "$rel")"
    cp -al "$d" "$dircorpus/$rel" 2>/dev/null || cp -a "$d" "$dircorpus/$rel"
  done
  touch "$dircorpus/.done"
fi

# Corpus (b): a git history of golang.org/x/tools releases.
gitcorpus=$bench/git-xtools-split-$GIT_VERSIONS
if [ ! -f "$gitcorpus.done" ]; then
  log "building the git history corpus: $GIT_VERSIONS releases of golang.org/x/tools (once)"
  rm -rf "$gitcorpus"; mkdir -p "$gitcorpus"
  git -C "$gitcorpus" init -q -b main
  git -C "$gitcorpus" config gc.auto 0
  versions=$(go list -m -versions golang.org/x/tools | tr ' ' '\n' | grep -E '^v[0-9]+\.[0-9]+\.[0-9]+$' | tail -n "$GIT_VERSIONS")
  i=0
  for v in $versions; do
    dir=$(go mod download -json "golang.org/x/tools@$v" | grep '"Dir"' | sed 's/.*"Dir": "\(.*\)",*/\1/')
    find "$gitcorpus" -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf {} +
    cp -a "$dir/." "$gitcorpus/"
    find "$gitcorpus" -path "$gitcorpus/.git" -prune -o -exec chmod u+w {} +
    git -C "$gitcorpus" add -A
    git -C "$gitcorpus" diff --cached --name-only | awk -F/ '{ print (NF > 2 ? $1 "/" $2 : $1) }' | sort -u > "$bench/groups"
    git -C "$gitcorpus" reset -q
    while read -r group; do
      git -C "$gitcorpus" add -A -- "$group" 2>/dev/null || true # already added with its parent
      git -C "$gitcorpus" diff --cached --quiet && continue
      i=$((i + 1))
      d=$(date -u -d "2020-01-01T00:00:00Z + $i minutes" +%Y-%m-%dT%H:%M:%SZ)
      GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.test GIT_COMMITTER_NAME=bench \
        GIT_COMMITTER_EMAIL=bench@example.test GIT_AUTHOR_DATE=$d GIT_COMMITTER_DATE=$d \
        git -C "$gitcorpus" -c commit.gpgsign=false commit -q -m "golang.org/x/tools $v: $group"
    done < "$bench/groups"
  done
  git -C "$gitcorpus" gc -q
  touch "$gitcorpus.done"
fi

# Corpus (c): planted secrets, regenerated every run (it is small).
planted=$bench/planted
rm -rf "$planted"; "$rampart" plant -copies 2 -labels "$bench/planted-labels.json" "$planted"

out=$bench/out; mkdir -p "$out"

# run NAME CMD… — runs a command, prints nothing, sets $secs.
run() {
  local name=$1 t0 t1
  shift
  t0=$(now)
  "$@" >"$out/$name.stdout" 2>"$out/$name.stderr" || { echo "$name failed:"; tail -5 "$out/$name.stderr"; exit 1; }
  t1=$(now)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
}
rampart_field() { grep -o "$1=[0-9]*" "$out/rampart.stdout" | cut -d= -f2; }
count_gitleaks() { grep -c '"RuleID"' "$1" || true; }

compare() { # compare MODE TARGET
  local mode=$1 target=$2 rs gs mb rfind gfind bytes
  local -a glargs=("$mode" --no-banner --log-level error --exit-code 0 --max-target-megabytes 10 -f json -r "$out/gitleaks.json")
  # shellcheck disable=SC2206
  glargs+=($GITLEAKS_FLAGS)
  for r in $(seq 1 "$RUNS"); do
    run rampart "$rampart" "$mode" -max-size 10000000 -json "$out/rampart.json" "$target"; rs=$secs
    bytes=$(rampart_field bytes); rfind=$(rampart_field findings)
    run gitleaks "$gitleaks" "${glargs[@]}" "$target"; gs=$secs
    gfind=$(count_gitleaks "$out/gitleaks.json")
    mb=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')
    awk -v m="$mode" -v r="$r" -v mb="$mb" -v rs="$rs" -v gs="$gs" -v rf="$rfind" -v gf="$gfind" 'BEGIN {
      printf "%-4s run %d  %8s MB  rampart %7.2f s %7.1f MB/s %5d findings | gitleaks %7.2f s %6.1f MB/s %5d findings | rampart is %.1fx faster\n",
        m, r, mb, rs, mb / rs, rf, gs, mb / gs, gf, gs / rs }'
  done
}

log "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), $(go version | cut -d' ' -f3), gitleaks $GITLEAKS_VERSION"
log "directory mode: $dircorpus"
compare dir "$dircorpus"
log "git history mode: $gitcorpus ($(git -C "$gitcorpus" rev-list --count --all) commits)"
compare git "$gitcorpus"

log "recall on planted secrets ($planted)"
run rampart "$rampart" dir -json "$out/rampart.json" "$planted"
printf 'rampart   '; "$rampart" recall -v -labels "$bench/planted-labels.json" -rampart "$out/rampart.json"
run gitleaks "$gitleaks" dir --no-banner --log-level error --exit-code 0 -f json -r "$out/gitleaks.json" "$planted"
printf 'gitleaks  '; "$rampart" recall -v -labels "$bench/planted-labels.json" -gitleaks "$out/gitleaks.json" -root "$planted"

clean=$(go env GOROOT)/src
log "false positives on a clean corpus ($clean)"
run rampart "$rampart" dir -max-size 10000000 -json "$out/rampart.json" "$clean"
echo "rampart   $(rampart_field findings) findings in ${secs} s"
run gitleaks "$gitleaks" dir --no-banner --log-level error --exit-code 0 --max-target-megabytes 10 -f json -r "$out/gitleaks.json" "$clean"
echo "gitleaks  $(count_gitleaks "$out/gitleaks.json") findings in ${secs} s"
