#!/usr/bin/env bash
# bench/vault.sh — the vault's speed over HTTP, against HashiCorp Vault
# v1.19.0 (the KV v2 engine of a dev server) in the same run:
#
#   read   authorised reads through the Vault-compatible API
#          (GET /v1/secret/data/ORG/PROJECT/ENV/NAME with X-Vault-Token):
#          token check, roles, vault policy, decryption, durable audit entry
#   write  durable writes of new versions (PUT, group commit)
#
# Rampart runs on SQLite (the default) and on PostgreSQL
# ($RAMPART_TEST_POSTGRES); the peer keeps its data in memory (dev mode),
# so its write figure is an upper bound. Each benchmark prints throughput,
# p50/p99 latency and CPU time per request (server and clients, both
# processes for the peer) with CLIENTS concurrent keep-alive clients; the
# script prints the ratio Rampart/Vault per run (RUNS runs, 3 by default:
# the machine is shared, compare within one run). N requests per benchmark
# (default 20000). RATE=R sends the reads and writes open-loop at R per
# second (latency counted from when each request was due), which is how
# "5,000 reads/s with p99 ≤ 5 ms" is checked: RATE=5000 CLIENTS=64.
# The Vault server is built once into .cache/.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
N=${N:-20000}
export RAMPART_BENCH_CLIENTS=${CLIENTS:-16}
export RAMPART_BENCH_RATE=${RATE:-0}
export RAMPART_TEST_POSTGRES=${RAMPART_TEST_POSTGRES:-postgres://rampart:rampart@127.0.0.1:5432/rampart_test?sslmode=disable}
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
mkdir -p .cache/bench
export RAMPART_TEST_VAULT_BIN
RAMPART_TEST_VAULT_BIN=$(bash tools/vaultserver/build.sh | tail -1)
go test -c -o .cache/bench/vault.test ./internal/vault
# Rampart runs as its own process, as in production and as the peer runs.
go build -o .cache/bench/rampart ./cmd/rampart
export RAMPART_BENCH_BIN=$PWD/.cache/bench/rampart
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg); $(go version)"
echo "clients: $RAMPART_BENCH_CLIENTS, requests per benchmark: $N, rate: ${RATE:-as fast as the clients go}"

bench() { # store regexp
  RAMPART_BENCH_STORE=$1 ./.cache/bench/vault.test -test.run '^$' -test.bench "$2" -test.benchtime "${N}x" -test.count 1 |
    awk '/^Benchmark/ {name=$1; sub(/-[0-9]+$/, "", name); for (i = 3; i < NF; i++) m[$(i+1)] = $i;
      printf "%s %s %s %s %s\n", name, (m["reads/s"] != "" ? m["reads/s"] : m["writes/s"]), m["p50-ms"], m["p99-ms"], m["cpu-µs/req"]; delete m}'
}

for run in $(seq 1 "$RUNS"); do
  echo
  echo "== run $run"
  out=$( { bench sqlite 'HTTPRead$|PeerVaultRead|HTTPWrite$|PeerVaultWrite'; bench postgres 'HTTPRead$|HTTPWrite$' | sed 's/^Benchmark/PG-Benchmark/'; } )
  printf '%-28s %10s %8s %8s %12s\n' benchmark "req/s" "p50 ms" "p99 ms" "CPU µs/req"
  printf '%s\n' "$out" | awk '{printf "%-28s %10.0f %8.2f %8.2f %12.0f\n", $1, $2, $3, $4, $5}'
  printf '%s\n' "$out" | awk '{v[$1] = $2; c[$1] = $5} END {
    printf "throughput Rampart(SQLite)/Vault: reads %.2f, writes %.2f; Rampart(PostgreSQL)/Vault: reads %.2f, writes %.2f\n",
      v["BenchmarkHTTPRead"] / v["BenchmarkPeerVaultRead"], v["BenchmarkHTTPWrite"] / v["BenchmarkPeerVaultWrite"],
      v["PG-BenchmarkHTTPRead"] / v["BenchmarkPeerVaultRead"], v["PG-BenchmarkHTTPWrite"] / v["BenchmarkPeerVaultWrite"]
    printf "CPU per request Vault/Rampart(SQLite): reads %.2f, writes %.2f (above 1: Rampart costs less)\n",
      c["BenchmarkPeerVaultRead"] / c["BenchmarkHTTPRead"], c["BenchmarkPeerVaultWrite"] / c["BenchmarkHTTPWrite"] }'
done
