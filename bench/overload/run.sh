#!/usr/bin/env bash
# Overload isolation: do image pulls keep their latency while another class is driven at five
# times its capacity? Everything is measured with `berth bench`; see README.md beside this file.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

usage() {
  cat <<'EOF'
usage: bench/overload/run.sh [options]
  --out DIR            results directory (default: /tmp/berth-overload)
  --rounds N           rounds of the whole sequence (default: 2; report medians)
  --duration D         measured seconds per step (default: 20s)
  --pull-rate R        pull operations per second, open loop (default: 200)
  --appr-rate-cap R    [limits.appr_read] rate_per_sec: the App Registry's capacity (default: 1000)
  --push-concurrency N [limits.push] concurrency (default: the server's default)
  --no-build           use target/release/berth as it is
EOF
}

out=/tmp/berth-overload rounds=2 duration=20s pull_rate=200 appr_cap=1000 push_concurrency= build=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --pull-rate) pull_rate=$2; shift 2 ;;
    --appr-rate-cap) appr_cap=$2; shift 2 ;;
    --push-concurrency) push_concurrency=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

log() { printf '[overload] %s\n' "$*" >&2; }
[[ $build == 1 ]] && (cd "$root" && cargo build --release -p berth >&2)
berth=$root/target/release/berth
mkdir -p "$out"
data=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
url=http://127.0.0.1:$port
password=overload-password
server=
cleanup() { [[ -n $server ]] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$data"; }
trap cleanup EXIT

cat >"$data/berth.toml" <<EOF
listen = "127.0.0.1:$port"
data_dir = "$data/dd"
[limits.appr_read]
rate_per_sec = $appr_cap
EOF
[[ -n $push_concurrency ]] && printf '[limits.push]\nconcurrency = %s\n' "$push_concurrency" >>"$data/berth.toml"
echo "$password" | "$berth" admin create-user bench --superuser --password-stdin --config "$data/berth.toml" >/dev/null
"$berth" serve --config "$data/berth.toml" 2>"$out/server.log" &
server=$!
for _ in $(seq 50); do curl -fs "$url/healthz" >/dev/null && break; sleep 0.1; done

bench() { "$berth" bench --url "$url" --user bench --password "$password" --no-progress "$@"; }
json() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"; }

# loaded NAME WORKLOAD: the load runs in a process of its own, a little longer than the pulls
# and at a lower CPU priority: on one shared machine the load generator's own work would
# otherwise be measured as the server's latency (in production, the storm's clients are other
# machines). The pulls are measured by a second process at normal priority.
loaded() {
  local name=$1 workload=$2 secs
  secs=$(python3 -c "import re; print(int(re.sub('[^0-9]', '', '$duration')) + 4)")
  nice -n 10 "$berth" bench --url "$url" --user bench --password "$password" --no-progress --no-seed \
    --workload "$workload" --duration "${secs}s" --report "$d/$name-load.json" >"$d/$name-load.txt" &
  local load=$!
  sleep 2
  bench --no-seed --workload "pull:32@$pull_rate" --duration "$duration" --metrics --report "$d/$name.json" \
    --baseline "$d/unloaded.json" --threshold 100% >"$d/$name.txt" || true
  wait "$load"
}

log "seeding"
bench --workload pull:1 --workload appr-storm:1 --duration 1s >/dev/null
for round in $(seq "$rounds"); do
  d=$out/round-$round
  mkdir -p "$d"
  log "round $round: App Registry capacity (closed loop, 64 workers)"
  bench --no-seed --workload appr-storm:64 --duration "$duration" --report "$d/appr-capacity.json" >"$d/appr-capacity.txt"
  # Capacity in requests per second. A storm operation is one request when its list is shed
  # and three when it is served, so this many operations per second offer at least five times
  # the capacity.
  appr_capacity=$(json "$d/appr-capacity.json" "r['workloads'][0]['successes_per_sec']")
  storm_rate=$(python3 -c "print(round(5 * $appr_capacity))")
  log "round $round: push capacity (closed loop, 32 workers)"
  bench --no-seed --workload push:32 --duration "$duration" --report "$d/push-capacity.json" >"$d/push-capacity.txt"
  push_ops=$(json "$d/push-capacity.json" "r['workloads'][0]['operations_per_sec']")
  flood_rate=$(python3 -c "print(max(1, round(5 * $push_ops)))")

  log "round $round: pulls alone ($pull_rate/s)"
  bench --no-seed --workload "pull:32@$pull_rate" --duration "$duration" --report "$d/unloaded.json" >"$d/unloaded.txt"
  log "round $round: pulls with an App Registry storm at 5x capacity ($storm_rate storms/s)"
  loaded storm "appr-storm:512@$storm_rate"
  log "round $round: pulls with a push flood at 5x capacity ($flood_rate pushes/s)"
  loaded flood "push:512@$flood_rate"
done
python3 "$here/summary.py" "$out"/round-* | tee "$out/summary.txt"
echo "peak RSS of the server: $(awk '/VmHWM/ {print $2, $3}' "/proc/$server/status")" | tee -a "$out/summary.txt"
