#!/usr/bin/env bash
# OperatorHub storm: the App Registry (CNR) hot path under many concurrent clients, on Berth
# and on the reference appr server. See README.md in this directory.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

usage() {
  cat <<EOF
Usage: bench/appr-storm/run.sh [options]

Local mode (default): starts fresh servers on 127.0.0.1, seeds them, storms each in turn.
  --servers LIST       comma list of berth,ref (default: berth,ref)
  --berth-bin PATH     Berth binary (default: \$ROOT/target/release/berth)
  --no-build           do not run 'cargo build --release' first
  --appr PATH          reference 'appr' executable (default: install it, see README)
  --appr-cli-dir DIR   where to install the reference CLI (default: target/appr-cli)

Target mode: benchmark a server that is already running.
  --url URL            server root, e.g. http://127.0.0.1:5000 (no /cnr suffix)
  --kind berth|ref     how to seed it (default: berth if --user is given, else ref)
  --name NAME          label in the results (default: the kind)
  --pid PID            server process, to read its peak RSS from /proc (optional)
  --no-seed            the target already holds this data set; only walk and storm

Both modes:
  --user USER          basic-auth user for seeding Berth (default: bench)
  --password PASS      its password (default: bench-password; env BENCH_PASSWORD)
  --packages LIST      package count(s), comma list, e.g. 100,1000,10000 (default: 1000);
                       local mode starts fresh servers for each count
  --namespaces N|auto  namespaces the packages are spread over; auto = one per 100 packages,
                       so a list answer always holds 100 packages (default: auto)
  --releases N         releases per package, 1.0.0, 1.1.0, ... (default: 2)
  --duration D         wrk duration of the mixed storm (default: 30s)
  --connections C      wrk connections (default: 64)
  --threads T          wrk threads (default: 2)
  --warmup D           unrecorded warm-up run before each storm (default: 5s; 0 = none)
  --step-duration D    per-step runs (list only, show only, blob only); 0 = skip (default: 10s)
  --rounds N           storm every server N times, alternating servers (default: 1)
  --seed-workers N     concurrent pushes while seeding (default: 8 for Berth, 4 for ref)
  --out DIR            results directory (default: bench/appr-storm/results/<timestamp>)
  --work DIR           scratch directory for server data (default: a fresh temp dir)
  --keep               keep the scratch directory
  -h, --help
EOF
}

servers=berth,ref berth_bin=$ROOT/target/release/berth build=1 appr=${APPR:-}
appr_cli_dir=${APPR_CLI_DIR:-$ROOT/target/appr-cli}
url='' kind='' name='' target_pid='' seed=1
user=bench user_given=0 password=${BENCH_PASSWORD:-bench-password}
packages_list=1000 namespaces_opt=auto namespaces=10 releases=2 duration=30s connections=64 threads=2 warmup=5s
step_duration=10s rounds=1 seed_workers='' out='' work='' keep=0

while [[ $# -gt 0 ]]; do
  case $1 in
    --servers) servers=$2; shift ;;
    --berth-bin) berth_bin=$2; shift ;;
    --no-build) build=0 ;;
    --appr) appr=$2; shift ;;
    --appr-cli-dir) appr_cli_dir=$2; shift ;;
    --url) url=${2%/}; shift ;;
    --kind) kind=$2; shift ;;
    --name) name=$2; shift ;;
    --pid) target_pid=$2; shift ;;
    --no-seed) seed=0 ;;
    --user) user=$2; user_given=1; shift ;;
    --password) password=$2; shift ;;
    --packages) packages_list=$2; shift ;;
    --namespaces) namespaces_opt=$2; shift ;;
    --releases) releases=$2; shift ;;
    --duration) duration=$2; shift ;;
    --connections) connections=$2; shift ;;
    --threads) threads=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --step-duration) step_duration=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --seed-workers) seed_workers=$2; shift ;;
    --out) out=$2; shift ;;
    --work) work=$2; shift ;;
    --keep) keep=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[storm %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v wrk >/dev/null || die "wrk not found (Debian/Ubuntu: apt-get install -y wrk)"
command -v python3 >/dev/null || die "python3 not found"
command -v curl >/dev/null || die "curl not found"

out=${out:-$HERE/results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
if [[ -z $work ]]; then work=$(mktemp -d "${TMPDIR:-/tmp}/appr-storm.XXXXXX"); else mkdir -p "$work"; fi
work=$(cd "$work" && pwd)

# Every process this script starts is recorded here and stopped on exit.
declare -A PIDS=()
cleanup() {
  local rc=$?
  for s in "${!PIDS[@]}"; do stop_server "$s"; done
  if [[ $keep == 0 ]]; then rm -rf "$work"; else log "scratch kept in $work"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_ready() { # URL PID LOG
  local i
  for i in $(seq 1 150); do
    if curl -sf -o /dev/null "$1/cnr/version"; then return 0; fi
    if [[ -n $2 ]] && ! kill -0 "$2" 2>/dev/null; then tail -20 "$3" >&2; die "server exited during start-up"; fi
    sleep 0.2
  done
  tail -20 "$3" >&2
  die "$1/cnr/version did not answer within 30 s"
}

status_kb() { # PID FIELD -> kB value or empty
  [[ -n $1 && -r /proc/$1/status ]] && awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" || true
}

stop_server() {
  local pid=${PIDS[$1]:-}
  [[ -n $pid ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  unset "PIDS[$1]"
}

install_appr() {
  [[ -n $appr ]] && { [[ -x $appr ]] || die "--appr $appr is not executable"; return; }
  local installer=$ROOT/.ci/install-appr.sh
  log "installing the reference appr CLI with $installer into $appr_cli_dir"
  appr=$("$installer" "$appr_cli_dir" | tail -1)
  [[ -x $appr ]] || die "reference appr CLI not installed (installer printed '$appr')"
}

# Starts server $1 (berth|ref) on a fresh data directory; sets URL_<kind> and PIDS[kind].
start_server() {
  local s=$1 port dir
  port=$(free_port)
  dir=$work/$s-$packages
  rm -rf "$dir"
  mkdir -p "$dir"
  case $s in
    berth)
      printf '%s\n' "$password" | "$berth_bin" admin create-user "$user" --superuser --password-stdin \
        --data-dir "$dir/data" >"$dir/create-user.log" 2>&1 || { cat "$dir/create-user.log" >&2; die "berth admin create-user failed"; }
      "$berth_bin" serve --listen "127.0.0.1:$port" --data-dir "$dir/data" >"$dir/server.log" 2>&1 &
      ;;
    ref)
      mkdir -p "$dir/home"
      HOME=$dir/home PYTHONWARNINGS=ignore DATABASE_URL=$dir/data \
        "$appr" run-server -b 127.0.0.1 -p "$port" --db-class filesystem >"$dir/server.log" 2>&1 &
      ;;
  esac
  PIDS[$s]=$!
  eval "URL_$s=http://127.0.0.1:$port"
  wait_ready "http://127.0.0.1:$port" "${PIDS[$s]}" "$dir/server.log"
  log "$s: pid ${PIDS[$s]} on http://127.0.0.1:$port ($(curl -s "http://127.0.0.1:$port/cnr/version" | tr -d ' \n'))"
}

# prepare NAME KIND URL PID: seeds (unless --no-seed) and walks; writes $out/<run>/meta-prep.json
prepare() {
  local nm=$1 k=$2 u=$3 pid=$4 d=$out/$1-$packages seed_s=0 t0 workers
  mkdir -p "$d"
  if [[ $seed == 1 ]]; then
    workers=${seed_workers:-$([[ $k == berth ]] && echo 8 || echo 4)}
    log "$nm: seeding $packages packages x $releases releases in $namespaces namespaces ($workers workers)"
    t0=$(date +%s.%N)
    if [[ $k == berth ]]; then
      python3 "$HERE/seed.py" seed --url "$u" --packages "$packages" --namespaces "$namespaces" --releases "$releases" \
        --workers "$workers" --berth --user "$user" --password "$password" 2>&1 | tee "$d/seed.log" >&2
    else
      python3 "$HERE/seed.py" seed --url "$u" --packages "$packages" --namespaces "$namespaces" --releases "$releases" \
        --workers "$workers" 2>&1 | tee "$d/seed.log" >&2
    fi
    [[ ${PIPESTATUS[0]} == 0 ]] || die "$nm: seeding failed (see $d/seed.log)"
    seed_s=$(python3 -c "import time; print(round(time.time() - $t0, 1))")
  fi
  log "$nm: walking the hot path once (list, show default/helm, sample of blobs)"
  python3 "$HERE/seed.py" walk --url "$u" --packages "$packages" --namespaces "$namespaces" --releases "$releases" \
    --out "$d/paths.txt" 2>&1 | tee "$d/walk.log" >&2
  [[ ${PIPESTATUS[0]} == 0 ]] || die "$nm: the hot path walk found problems (see $d/walk.log)"
  local hwm
  hwm=$(status_kb "$pid" VmHWM)
  cat >"$d/prep.json" <<EOF
{"name": "$nm", "kind": "$k", "url": "$u", "packages": $packages, "namespaces": $namespaces,
 "releases": $releases, "seeded": $([[ $seed == 1 ]] && echo true || echo false), "seed_seconds": $seed_s,
 "pushes": $((packages * releases)), "rss_hwm_kb_after_seed": ${hwm:-null}}
EOF
}

wrk_run() { # NAME URL STEP DURATION OUTFILE
  local d=$out/$1-$packages
  STORM_PATHS=$d/paths.txt STORM_STEP=$3 STORM_THREADS=$threads STORM_OUT=$5 \
    wrk -t"$threads" -c"$connections" -d"$4" --timeout 30s --latency -s "$HERE/storm.lua" "$2" \
    >"${5%.json}.txt" 2>&1 || { cat "${5%.json}.txt" >&2; die "wrk failed"; }
}

# storm NAME URL PID ROUND
storm() {
  local nm=$1 u=$2 pid=$3 r=$4 d=$out/$1-$packages step
  if [[ $warmup != 0 && $warmup != 0s ]]; then
    log "$nm: warm-up $warmup"
    wrk_run "$nm" "$u" all "$warmup" "$d/warmup-r$r.json"
  fi
  log "$nm: storm $duration, $connections connections, $threads threads (round $r)"
  wrk_run "$nm" "$u" all "$duration" "$d/all-r$r.json"
  python3 - "$d/all-r$r.json" <<'EOF' >&2
import json, sys
j = json.load(open(sys.argv[1])); l = j["latency_ms"]; e = sum(j["errors"].values())
print("    %8.0f req/s   p50 %7.2f ms   p99 %7.2f ms   max %7.1f ms   errors %d" % (j["rps"], l["p50"], l["p99"], l["max"], e))
EOF
  if [[ $step_duration != 0 && $step_duration != 0s ]]; then
    for step in list show blob; do
      log "$nm: step $step only, $step_duration"
      wrk_run "$nm" "$u" "$step" "$step_duration" "$d/$step-r$r.json"
    done
  fi
  cat >"$d/rss-r$r.json" <<EOF
{"rss_hwm_kb": $(v=$(status_kb "$pid" VmHWM); echo "${v:-null}"), "rss_kb": $(v=$(status_kb "$pid" VmRSS); echo "${v:-null}")}
EOF
}

conf_json() {
  cat <<EOF
{"duration": "$duration", "connections": $connections, "threads": $threads, "warmup": "$warmup",
 "step_duration": "$step_duration", "rounds": $rounds, "namespaces": "$namespaces_opt", "releases": $releases,
 "nproc": $(nproc), "host": "$(hostname)", "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
 "berth_commit": "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)",
 "wrk": "$(wrk --version 2>&1 | head -1 | awk '{print $2}')"}
EOF
}

conf_json >"$out/config.json"
set_namespaces() { # for $packages
  if [[ $namespaces_opt == auto ]]; then namespaces=$(((packages + 99) / 100)); else namespaces=$namespaces_opt; fi
}
IFS=, read -r -a counts <<<"$packages_list"

if [[ -n $url ]]; then
  kind=${kind:-$([[ $user_given == 1 ]] && echo berth || echo ref)}
  [[ $kind == berth || $kind == ref ]] || die "--kind must be berth or ref"
  name=${name:-$kind}
  curl -sf -o /dev/null "$url/cnr/version" || die "$url/cnr/version does not answer"
  for packages in "${counts[@]}"; do
    set_namespaces
    prepare "$name" "$kind" "$url" "$target_pid"
    for r in $(seq 1 "$rounds"); do storm "$name" "$url" "$target_pid" "$r"; done
  done
else
  IFS=, read -r -a list <<<"$servers"
  for s in "${list[@]}"; do
    case $s in
      berth)
        if [[ $build == 1 ]]; then
          log "building Berth (cargo build --release)"
          (cd "$ROOT" && cargo build --release -q) || die "cargo build --release failed"
        fi
        [[ -x $berth_bin ]] || die "no Berth binary at $berth_bin"
        ;;
      ref) install_appr ;;
      *) die "unknown server '$s' (berth or ref)" ;;
    esac
  done
  for packages in "${counts[@]}"; do
    set_namespaces
    for s in "${list[@]}"; do
      start_server "$s"
      u=URL_$s
      prepare "$s" "$s" "${!u}" "${PIDS[$s]}"
    done
    for r in $(seq 1 "$rounds"); do
      for s in "${list[@]}"; do u=URL_$s; storm "$s" "${!u}" "${PIDS[$s]}" "$r"; done
    done
    for s in "${list[@]}"; do
      cp "$work/$s-$packages/server.log" "$out/$s-$packages/server.log" 2>/dev/null || true
      stop_server "$s"
    done
  done
fi

python3 "$HERE/report.py" "$out"
log "results in $out (summary.md, summary.json)"
