#!/usr/bin/env bash
# Pull and push throughput of Berth on its three set-ups, measured with `berth bench`:
#   sqlite   one instance, SQLite + filesystem (the single-machine default)
#   pg-s3    one instance, PostgreSQL + S3 (the tests' s3s-fs server, in a process of its own)
#   pg-s3-3  three instances on that PostgreSQL + S3, behind nginx on loopback
# and CNCF Distribution (Debian's docker-registry, filesystem, no auth) on the same machine as
# a reference. Reports requests/s, p99 and database round trips (statements or transactions,
# from the servers' metrics) per pull and per push. See README.md beside this file.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

usage() {
  cat <<'EOF'
usage: bench/scale-out/run.sh [options]
  --out DIR          results directory (default: /tmp/berth-scale-out)
  --rounds N         rounds of every set-up (default: 2; the summary gives medians)
  --duration D       measured time per workload (default: 20s)
  --postgres URL     server to create the benchmark database on
                     (default: postgres://postgres@127.0.0.1:5432/test)
  --no-distribution  skip the Distribution reference
  --no-build         use target/release as it is
EOF
}

out=/tmp/berth-scale-out rounds=2 duration=20s build=1 distribution=1
pg_server=postgres://postgres@127.0.0.1:5432/test
while [[ $# -gt 0 ]]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --postgres) pg_server=$2; shift 2 ;;
    --no-distribution) distribution=0; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

log() { printf '[scale-out] %s\n' "$*" >&2; }
if [[ $build == 1 ]]; then
  (cd "$root" && cargo build --release -p berth >&2 \
    && cargo build --release -p berth-blob --features testing --example s3-server >&2)
fi
berth=$root/target/release/berth
s3_server=$root/target/release/examples/s3-server
mkdir -p "$out"
work=$(mktemp -d)
pids=()
password=scale-out-password
database=
cleanup() {
  for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n $database ]] && psql -q "$pg_server" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
port() { echo $((20000 + RANDOM % 20000)); }
wait_ready() { for _ in $(seq 100); do curl -fs "$1/readyz" >/dev/null 2>&1 && return; sleep 0.1; done; log "$1 never got ready"; exit 1; }

# A fresh database for each PostgreSQL set-up; its URL is printed.
fresh_database() {
  [[ -n $database ]] && psql -q "$pg_server" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null
  database=berth_bench_$$_$RANDOM
  psql -q "$pg_server" -c "CREATE DATABASE $database" >/dev/null
  echo "${pg_server%/*}/$database"
}

# One S3 server for the whole run, each set-up under its own prefix.
mkfifo "$work/s3.out"
"$s3_server" >"$work/s3.out" 2>"$out/s3-server.log" &
pids+=($!)
s3_table=$(sed '/^$/q' "$work/s3.out")
cat "$work/s3.out" >/dev/null &

# start_berth NAME CONFIG_BODY INSTANCES: writes a config per instance, creates the bench user,
# starts the instances; sets `urls` (one per instance) and `server_pids`.
start_berth() {
  local name=$1 body=$2 instances=$3 i p
  urls=() server_pids=()
  for ((i = 0; i < instances; i++)); do
    p=$(port)
    printf 'listen = "127.0.0.1:%s"\ndata_dir = "%s/r%s-%s-%s"\n%s\n' "$p" "$work" "$round" "$name" "$i" "$body" >"$work/$name-$i.toml"
    urls+=("http://127.0.0.1:$p")
  done
  echo "$password" | "$berth" admin create-user bench --superuser --password-stdin --config "$work/$name-0.toml" >/dev/null
  for ((i = 0; i < instances; i++)); do
    "$berth" serve --config "$work/$name-$i.toml" 2>"$out/$name-$i.log" &
    pids+=($!) server_pids+=($!)
  done
  for url in "${urls[@]}"; do wait_ready "$url"; done
}

stop_servers() {
  for pid in "$@"; do kill "$pid" 2>/dev/null || true; done
  for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}

# nginx on loopback in front of `urls`; sets `front`.
start_nginx() {
  local p upstreams="" url
  p=$(port)
  for url in "${urls[@]}"; do upstreams+="    server ${url#http://};"$'\n'; done
  mkdir -p "$work/nginx/logs"
  cat >"$work/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
error_log $work/nginx/logs/error.log warn;
pid $work/nginx/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  upstream berth {
$upstreams    keepalive 128;
  }
  server {
    listen 127.0.0.1:$p;
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_buffering off;
    location / {
      proxy_pass http://berth;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
    }
  }
}
EOF
  nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
  pids+=($!) nginx_pid=$!
  front=http://127.0.0.1:$p
  for _ in $(seq 50); do curl -s "$front/v2/" >/dev/null 2>&1 && return; sleep 0.1; done
}

# The sum of a metric's samples over every instance.
metric_sum() {
  local name=$1 total=0 url v
  for url in "${urls[@]}"; do
    v=$(curl -fs "$url/metrics" | awk -v n="$name" 'index($0, n) == 1 { s += $NF } END { printf "%d", s }')
    total=$((total + v))
  done
  echo "$total"
}

# measure NAME URL AUTH_ARGS...: pull then push, each with the servers' statement counts.
measure() {
  local name=$1 url=$2 d=$3; shift 3
  local before after
  "$berth" bench --url "$url" "$@" --no-progress --workload pull:1 --workload push:1 --duration 1s >/dev/null
  for workload in pull:32 push:8; do
    local kind=${workload%%:*}
    [[ ${#urls[@]} -gt 0 ]] && before=$(metric_sum berth_db_query_duration_seconds_count)
    "$berth" bench --url "$url" "$@" --no-progress --no-seed --workload "$workload" --duration "$duration" \
      --report "$d/$name-$kind.json" >"$d/$name-$kind.txt"
    if [[ ${#urls[@]} -gt 0 ]]; then
      after=$(metric_sum berth_db_query_duration_seconds_count)
      echo "$((after - before))" >"$d/$name-$kind.db"
    fi
  done
}

rss_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

creds=(--user bench --password "$password")
for round in $(seq "$rounds"); do
  d=$out/round-$round
  mkdir -p "$d"

  log "round $round: one instance, SQLite + filesystem"
  start_berth sqlite "" 1
  measure sqlite "${urls[0]}" "$d" "${creds[@]}"
  rss_kib "${server_pids[0]}" >"$d/sqlite.rss"
  stop_servers "${server_pids[@]}"

  log "round $round: one instance, PostgreSQL + S3"
  db_url=$(fresh_database)
  body=$(printf '[database]\nurl = "%s"\n[storage]\nbackend = "s3"\n%s\n' "$db_url" "${s3_table/prefix = \"bench\"/prefix = \"r$round-one\"}")
  start_berth pg-s3 "$body" 1
  measure pg-s3 "${urls[0]}" "$d" "${creds[@]}"
  rss_kib "${server_pids[0]}" >"$d/pg-s3.rss"
  stop_servers "${server_pids[@]}"

  log "round $round: three instances on PostgreSQL + S3 behind nginx"
  db_url=$(fresh_database)
  body=$(printf '[database]\nurl = "%s"\n[storage]\nbackend = "s3"\n%s\n' "$db_url" "${s3_table/prefix = \"bench\"/prefix = \"r$round-three\"}")
  start_berth pg-s3-3 "$body" 3
  start_nginx
  measure pg-s3-3 "$front" "$d" "${creds[@]}"
  for i in 0 1 2; do rss_kib "${server_pids[$i]}"; done | sort -n | tail -1 >"$d/pg-s3-3.rss"
  stop_servers "${server_pids[@]}" "$nginx_pid"

  if [[ $distribution == 1 ]]; then
    log "round $round: CNCF Distribution (docker-registry), filesystem, no auth"
    p=$(port)
    mkdir -p "$work/dist-$round"
    cat >"$work/dist-$round/config.yml" <<EOF
version: 0.1
log: { level: warn, accesslog: { disabled: true } }
storage:
  cache: { blobdescriptor: inmemory }
  filesystem: { rootdirectory: $work/dist-$round/data }
  delete: { enabled: true }
http: { addr: 127.0.0.1:$p }
EOF
    docker-registry serve "$work/dist-$round/config.yml" 2>"$out/distribution.log" &
    dist=$!
    pids+=($dist)
    for _ in $(seq 50); do curl -fs "http://127.0.0.1:$p/v2/" >/dev/null && break; sleep 0.1; done
    urls=()
    measure distribution "http://127.0.0.1:$p" "$d"
    rss_kib "$dist" >"$d/distribution.rss"
    stop_servers "$dist"
  fi
done
python3 "$here/summary.py" "$out"/round-* | tee "$out/summary.txt"
