#!/usr/bin/env bash
# Benchmark peer: ferrokinesis, a Kinesis mock server written in Rust (axum/tokio), in memory or
# in its durable mode (WAL + snapshots under a state directory).
#
# Usage:
#   bench/peers/ferrokinesis.sh start PORT DIR [--durable]   install (if needed), start on PORT
#   bench/peers/ferrokinesis.sh stop DIR                     stop the instance in DIR/ferrokinesis.pid
#   bench/peers/ferrokinesis.sh install                      only install
#
# Needs: cargo on PATH (or CARGO) and a crates.io registry (or its mirror) the first time.
#
# Environment knobs:
#   FERROKINESIS_ROOT           `cargo install --root` (default: <repo>/target/bench-tools)
#   FERROKINESIS_SHARD_LIMIT    account shard limit (default 50, as kinesalite.sh; its own is 10)
#   FERROKINESIS_START_TIMEOUT  seconds to wait for the port to answer (default 30)
#   FERROKINESIS_KEEP_STATE=1   keep DIR/state on `stop` (by default it is removed, see below)
#
# Install: ferrokinesis 0.7.0 from crates.io, `cargo install --locked` (its own Cargo.lock),
# default features (server + access-log; no TLS, no mirror), into $FERROKINESIS_ROOT/bin, once;
# later starts reuse the binary when cargo's $FERROKINESIS_ROOT/.crates.toml lists 0.7.0. cargo's default
# `release` profile of the crate is used (opt-level 3), whatever PROFILE the caller builds with.
#
# Modes:
#   memory   (default) the whole store lives in DashMaps in the process; nothing touches disk.
#   durable  (--durable) `--state-dir DIR/state`: every mutating request (each PutRecords
#            included) serialises the *whole* store (all streams and every retained record,
#            as JSON) into one WAL entry, appends it to DIR/state/wal.log and fsyncs
#            (File::sync_all) before answering; mutations are serialised on one I/O lock.
#            Every --snapshot-interval-secs (default 30) it also writes snapshot.bin and
#            empties the WAL. So the cost of a PutRecords grows with everything stored so
#            far, and the WAL grows quadratically (a 10-s run can leave GBs): `start` always
#            begins from an empty DIR/state and `stop` deletes it (FERROKINESIS_KEEP_STATE=1
#            keeps it). This is ferrokinesis 0.7.0's design (src/store.rs
#            persist_current_state_result, src/persistence.rs append_wal_entry), not a setting
#            of ours. It needs no flag to create streams: the benchmark creates its stream
#            through CreateStream, as with the other targets.
#
# Flags we pass (checked against `ferrokinesis --help` of 0.7.0), so that it is neither slowed
# down nor sped up artificially:
#   --port PORT                   listen port. ferrokinesis has no host option and binds
#                                 0.0.0.0:PORT (all interfaces); the benchmark talks to
#                                 127.0.0.1:PORT.
#   --create-stream-ms 0          streams go ACTIVE at once (default 500 ms in CREATING); same
#   --delete-stream-ms 0          as kinesalite.sh's createStreamMs/deleteStreamMs/
#   --update-stream-ms 0          updateStreamMs 0. Only stream set-up/teardown, not timed.
#   --shard-limit 50              account shard limit (default 10); the benchmark needs 4.
#   --log-level warn              default is info; no per-request lines either way (access log
#                                 is off by default, --access-log not passed), this only keeps
#                                 the log short.
# Settings left at their defaults, on purpose:
#   --enforce-limits              off (default): no AWS-like per-shard write throttling
#                                 (1 MiB/s and 1,000 records/s per shard). The load far exceeds
#                                 that; kinesalite and millrace do not throttle either.
#   --max-request-body-mb 7       default 7 MB; a benchmark PutRecords body is ~0.45 MB.
#   --iterator-ttl-seconds 300    default; the read-back finishes well within it.
#   --retention-check-interval-secs 0   default: retention reaper off (no background trimming).
#   --max-retained-bytes          unset (default): no cap. A cap would drop records and the
#                                 read-back count would not match.
#   --snapshot-interval-secs 30   default (durable mode only), see above.
set -euo pipefail

FERROKINESIS_VERSION="0.7.0"
CARGO="${CARGO:-cargo}"
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
ROOT="${FERROKINESIS_ROOT:-$REPO/target/bench-tools}"
BIN="$ROOT/bin/ferrokinesis"
SHARD_LIMIT="${FERROKINESIS_SHARD_LIMIT:-50}"
START_TIMEOUT="${FERROKINESIS_START_TIMEOUT:-30}"

die() { echo "ferrokinesis.sh: $*" >&2; exit 1; }

usage() {
  cat >&2 <<'EOF'
usage: ferrokinesis.sh start PORT DIR [--durable]
       ferrokinesis.sh stop DIR
       ferrokinesis.sh install
EOF
  exit 2
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ferrokinesis has no --version; cargo install records what it put under $ROOT in .crates.toml.
installed_version() {
  [[ -x "$BIN" && -f "$ROOT/.crates.toml" ]] || return 1
  sed -n 's/^"ferrokinesis \([^ ]*\) .*/\1/p' "$ROOT/.crates.toml" | head -n 1
}

do_install() {
  if [[ "$(installed_version || true)" == "$FERROKINESIS_VERSION" ]]; then
    return 0
  fi
  command -v "$CARGO" >/dev/null 2>&1 || die "cargo not found (set CARGO=/path/to/cargo)"
  mkdir -p "$ROOT"
  local log="$ROOT/ferrokinesis-install.log"
  echo "installing ferrokinesis ${FERROKINESIS_VERSION} into $ROOT (log: $log)" >&2
  if ! nice -n 10 "$CARGO" install ferrokinesis --version "$FERROKINESIS_VERSION" --locked \
       --root "$ROOT" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "cargo install ferrokinesis ${FERROKINESIS_VERSION} failed"
  fi
  [[ "$(installed_version || true)" == "$FERROKINESIS_VERSION" ]] \
    || die "ferrokinesis ${FERROKINESIS_VERSION} not found at $BIN after cargo install"
}

pid_alive() {
  local pid="$1"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# The pid in the pid file is ours only if that process is still a ferrokinesis server.
pid_is_ours() {
  local pid="$1"
  pid_alive "$pid" || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'ferrokinesis' || return 1
  fi
  return 0
}

do_start() {
  local port="$1" dir="$2" mode="${3:-memory}"
  if ! [[ "$port" =~ ^[0-9]{1,5}$ ]] || (( 10#$port < 1 || 10#$port > 65535 )); then
    die "bad port: $port"
  fi
  port=$((10#$port))
  do_install
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  local pidfile="$dir/ferrokinesis.pid" log="$dir/ferrokinesis.log"

  if [[ -f "$pidfile" ]]; then
    local old
    old="$(cat "$pidfile")"
    if pid_is_ours "$old"; then
      die "already running (pid $old, $pidfile); run: $0 stop $dir"
    fi
    rm -f "$pidfile"
  fi
  if port_open "$port"; then
    die "port $port on 127.0.0.1 is already in use"
  fi

  local args=(
    --port "$port"
    --create-stream-ms 0 --delete-stream-ms 0 --update-stream-ms 0
    --shard-limit "$SHARD_LIMIT"
    --log-level warn
  )
  if [[ "$mode" == durable ]]; then
    rm -rf "$dir/state"  # always a fresh store, as millrace's fresh data directory
    mkdir -p "$dir/state"
    args+=(--state-dir "$dir/state")
  fi

  # ferrokinesis also reads FERROKINESIS_* variables; flags given here win over them, but the
  # caller's FERROKINESIS_CONFIG, FERROKINESIS_STATE_DIR (durable where memory was asked) and
  # the like would change settings we leave at their defaults, so drop those.
  env -u FERROKINESIS_CONFIG -u FERROKINESIS_STATE_DIR -u FERROKINESIS_ENFORCE_LIMITS \
      -u FERROKINESIS_MAX_RETAINED_BYTES -u FERROKINESIS_CAPTURE -u FERROKINESIS_ACCESS_LOG \
      -u FERROKINESIS_SNAPSHOT_INTERVAL_SECS \
    nohup "$BIN" "${args[@]}" >"$log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$pidfile"

  local waited=0
  while ! port_open "$port"; do
    if ! pid_alive "$pid"; then
      rm -f "$pidfile"
      cat "$log" >&2 || true
      die "ferrokinesis exited during startup (log above, $log)"
    fi
    if (( waited >= START_TIMEOUT * 10 )); then
      kill "$pid" 2>/dev/null || true
      rm -f "$pidfile"
      cat "$log" >&2 || true
      die "ferrokinesis did not open 127.0.0.1:$port within ${START_TIMEOUT}s"
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  echo "ferrokinesis ${FERROKINESIS_VERSION} started ($mode): pid $pid, http://127.0.0.1:$port (log: $log)"
}

do_stop() {
  local dir="$1" pidfile="$1/ferrokinesis.pid"
  local pid=""
  if [[ -f "$pidfile" ]]; then
    pid="$(cat "$pidfile")"
    if pid_is_ours "$pid"; then
      kill "$pid" 2>/dev/null || true
      local i
      for ((i = 0; i < 150; i++)); do  # it shuts down gracefully (up to 10 s for open requests)
        pid_alive "$pid" || break
        sleep 0.1
      done
      if pid_alive "$pid"; then
        kill -9 "$pid" 2>/dev/null || true
      fi
      echo "ferrokinesis stopped (pid $pid)"
    else
      echo "ferrokinesis not running (stale pid file removed)"
    fi
    rm -f "$pidfile"
  else
    echo "ferrokinesis not running (no $pidfile)"
  fi
  if [[ -d "$dir/state" && "${FERROKINESIS_KEEP_STATE:-0}" != 1 ]]; then
    rm -rf "$dir/state"
  fi
}

[[ $# -ge 1 ]] || usage
case "$1" in
  start)
    [[ $# -eq 3 || $# -eq 4 ]] || usage
    mode=memory
    if [[ $# -eq 4 ]]; then
      [[ "$4" == --durable ]] || usage
      mode=durable
    fi
    do_start "$2" "$3" "$mode"
    ;;
  stop)    [[ $# -eq 2 ]] || usage; do_stop "$2" ;;
  install) [[ $# -eq 1 ]] || usage; do_install ;;
  *)       usage ;;
esac
