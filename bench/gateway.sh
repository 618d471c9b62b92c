#!/usr/bin/env bash
# bench/gateway.sh — Rampart's gateway against nginx, side by side in one
# run, on the same backend (bench/gwbackend), with wrk:
#
#   plain   reverse proxy without a WAF: Rampart vs nginx
#   waf     blocking mode, CRS 4.25 at paranoia level 1: Rampart (Coraza)
#           vs nginx + ModSecurity 3 (libnginx-mod-http-modsecurity) with
#           the same CRS 4.25 rules, read from the coraza-coreruleset module
#   json    the WAF routes again with an 8 KB JSON POST body
#
# It prints requests per second, p99 latency, server CPU per request (the
# gateway process's user+system time over the run, from /proc) and the
# ratios. nginx, the ModSecurity module and wrk come from Debian's packages
# (installed when missing). RUNS (default 3) runs of DURATION (default 10s)
# per case, CONNS (default 32) connections; CASES (default "plain waf
# json") picks the cases; ACCESS_LOG=off turns Rampart's gateway access
# log off (nginx keeps its own). WORK (default .cache/bench/gateway) and
# PORTS (default 19080: the ports PORTS…PORTS+19 and PORTS+363) let two runs on one
# machine stay apart — .cache is shared between worktrees, and a second run
# with the same WORK would remove the first one's data and nginx pid file.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
CASES=${CASES:-plain waf json}
ACCESS_LOG=${ACCESS_LOG:-on}
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
work=${WORK:-$root/.cache/bench/gateway}
mkdir -p "$work" "$root/.cache/bin"

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx)
[ -e /usr/share/nginx/modules-available/mod-http-modsecurity.conf ] || [ -e /usr/lib/nginx/modules/ngx_http_modsecurity_module.so ] || need+=(libnginx-mod-http-modsecurity)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing from Debian: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

go build -o "$root/.cache/bin/rampart" ./cmd/rampart
go build -o "$root/.cache/bin/gwbackend" ./bench/gwbackend
crs=$(go mod download -json github.com/corazawaf/coraza-coreruleset/v4@v4.25.0 | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')/rules

P=${PORTS:-19080}
BACKEND=127.0.0.1:$((P + 19)) NGX_PLAIN=$((P + 1)) NGX_WAF=$((P + 2)) RP_API=$P RP_GW=$((P + 363))
for port in $((P + 19)) $((P + 1)) $((P + 2)) $P $((P + 363)); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is in use (another bench/gateway.sh run?): set PORTS and WORK"; exit 1
  fi
done
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true; }
trap cleanup EXIT

"$root/.cache/bin/gwbackend" -addr $BACKEND & pids+=($!)

# ModSecurity: Debian's recommended base (/etc/nginx/modsecurity.conf),
# engine on, no audit log, response bodies not inspected (as on Rampart's
# route), then the CRS 4.25 setup and rules.
mkdir -p "$work/modsec" "$work/nginx"
sed -e 's/^SecRuleEngine .*/SecRuleEngine On/' -e 's#^SecAuditLog .*#SecAuditLog '"$work"'/modsec_audit.log#' \
  -e 's/^SecAuditEngine .*/SecAuditEngine Off/' -e 's/^SecResponseBodyAccess .*/SecResponseBodyAccess Off/' \
  /etc/nginx/modsecurity.conf > "$work/modsec/main.conf"
cp /etc/nginx/unicode.mapping "$work/modsec/" 2>/dev/null || true
# ModSecurity cannot include paths with '@' (the module cache has them).
rm -rf "$work/crs"; mkdir -p "$work/crs/rules"
cp "$crs/@crs-setup.conf.example" "$work/crs/crs-setup.conf"
cp "$crs/@owasp_crs/"* "$work/crs/rules/"
# ModSecurity 3.0.9 wants an action list on chained rules, which CRS 4
# leaves out when there is nothing to say: give them "t:none".
sed -i -E 's/^([[:space:]]+SecRule [^"]+ "([^"\\]|\\.)*")[[:space:]]*$/\1 "t:none"/' "$work/crs/rules/"*.conf
cat >> "$work/modsec/main.conf" <<CONF
Include $work/crs/crs-setup.conf
Include $work/crs/rules/*.conf
CONF
modload=$(ls /usr/lib/nginx/modules/ngx_http_modsecurity_module.so)
cat > "$work/nginx/nginx.conf" <<CONF
load_module $modload;
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log $work/nginx-access.log;
  upstream backend { server $BACKEND; keepalive 256; }
  server {
    listen 127.0.0.1:$NGX_PLAIN;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host \$host; }
  }
  server {
    listen 127.0.0.1:$NGX_WAF;
    modsecurity on;
    modsecurity_rules_file $work/modsec/main.conf;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host \$host; }
  }
}
CONF
rm -f "$work/nginx.pid"
nginx -c "$work/nginx/nginx.conf"

# Rampart: a gateway with two routes on the same backend.
cat > "$work/gateway.yaml" <<CONF
routes:
  - name: plain
    host: plain.bench
    backends: [{url: "http://$BACKEND"}]
  - name: waf
    host: waf.bench
    backends: [{url: "http://$BACKEND"}]
    waf: {mode: block, paranoia: 1}
CONF
rm -rf "$work/data"
RAMPART_ADMIN_PASSWORD=bench-admin-password "$root/.cache/bin/rampart" up --data "$work/data" --addr 127.0.0.1:$RP_API --tls=off --ssh-addr "" \
  --gateway-addr 127.0.0.1:$RP_GW --gateway-tls=off --gateway-config "$work/gateway.yaml" --gateway-access-log="$ACCESS_LOG" --log-level info \
  >"$work/rampart.out" 2>"$work/rampart.log" & rp=$!; pids+=($rp)
for _ in $(seq 1 100); do curl -s -o /dev/null -H 'Host: plain.bench' http://127.0.0.1:$RP_GW/ && break; sleep 0.2; done

# A valid JSON document of about 8 KB (truncating one would make it
# invalid, and both WAFs refuse bodies that do not parse).
body8k=$(python3 -c 'import json; print(json.dumps({"items": [{"id": i, "name": "item %d" % i, "tags": ["alpha", "beta"], "price": i * 1.5} for i in range(105)]}))')
printf 'wrk.method = "POST"\nwrk.body = [[%s]]\nwrk.headers["Content-Type"] = "application/json"\n' "$body8k" > "$work/post.lua"

cpu_of() { # total user+system clock ticks of the given pids
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo $t
}
nginx_pids() { pgrep -P "$(cat "$work/nginx.pid")" | tr '\n' ' '; }
hz=$(getconf CLK_TCK)
check() { # check HOST PORT — a benign request must pass, an attack must be blocked on WAF routes
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $1" "http://127.0.0.1:$2/search?q=hello&page=2" || true)
  [ "$code" = 200 ] || { echo "benign request to $1:$2 answered $code"; exit 1; }
}
measure() { # measure NAME HOST PORT PIDS... ; sets rps p99 cpu
  local name=$1 host=$2 port=$3; shift 3
  local args=(-t2 -c"$CONNS" -d"$DURATION" --latency -H "Host: $host")
  # A JSON request costs tens of milliseconds of CPU on either WAF: give
  # it more than wrk's default 2 s before counting it as timed out.
  [ "$name" = json ] && args+=(-s "$work/post.lua" --timeout 20s)
  local c0 c1 out
  c0=$(cpu_of "$@")
  out=$(wrk "${args[@]}" "http://127.0.0.1:$port/search?q=hello&page=2")
  c1=$(cpu_of "$@")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  local reqs non2xx
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  [ -z "$non2xx" ] || { echo "$name on $host: $non2xx non-2xx responses"; echo "$out"; exit 1; }
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  cpu=$(awk -v c=$((c1 - c0)) -v hz="$hz" -v n="$reqs" 'BEGIN { printf "%.3f", c / hz / n * 1000 }')
}

echo "== load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), $(go version | cut -d' ' -f3), $(nginx -v 2>&1 | cut -d' ' -f3), wrk -t2 -c$CONNS -d$DURATION"
check plain.bench $RP_GW; check waf.bench $RP_GW; check plain.bench $NGX_PLAIN; check waf.bench $NGX_WAF
for name in $CASES; do
  for r in $(seq 1 "$RUNS"); do
    case $name in
      plain) rh=plain.bench nport=$NGX_PLAIN ;;
      *) rh=waf.bench nport=$NGX_WAF ;;
    esac
    measure "$name" "$rh" $RP_GW "$rp"; r_rps=$rps r_p99=$p99 r_cpu=$cpu
    # shellcheck disable=SC2046
    measure "$name" "$rh" "$nport" $(nginx_pids); n_rps=$rps n_p99=$p99 n_cpu=$cpu
    awk -v n="$name" -v r="$r" -v a="$r_rps" -v b="$n_rps" -v ap="$r_p99" -v bp="$n_p99" -v ac="$r_cpu" -v bc="$n_cpu" 'BEGIN {
      printf "%-5s run %d  rampart %8.0f req/s p99 %8s cpu %6.3f ms/req | nginx%s %8.0f req/s p99 %8s cpu %6.3f ms/req | throughput ratio %.2fx\n",
        n, r, a, ap, ac, (n == "plain" ? "" : "+modsec"), b, bp, bc, a / b }'
    case $name in
      waf) waf_rps=$r_rps waf_cpu=$r_cpu ;;
      json) awk -v r="$r" -v j="$r_rps" -v g="$waf_rps" -v jc="$r_cpu" -v gc="$waf_cpu" 'BEGIN {
        printf "json  run %d  rampart keeps %.2f of its WAF GET rate (target 0.5), CPU %.2fx a GET\n", r, j / g, jc / gc }' ;;
    esac
  done
done
echo "== load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
