#!/usr/bin/env bash
# Benchmark / compatibility peer: kinesalite, an in-memory Kinesis emulator (Node.js).
#
# Usage:
#   bench/peers/kinesalite.sh start PORT DIR   install (if needed) into DIR, start on 127.0.0.1:PORT
#   bench/peers/kinesalite.sh stop DIR         stop the instance whose pid is in DIR/kinesalite.pid
#   bench/peers/kinesalite.sh install DIR      only install into DIR
#
# Needs: node (>= 18; tested with Node 20) and npm on PATH (or NODE / NPM env vars).
#
# Environment knobs:
#   KINESALITE_SHARD_LIMIT   shard limit kinesalite enforces across all streams (default 50;
#                            kinesalite's own default is 10, too low for benchmarks)
#   KINESALITE_START_TIMEOUT seconds to wait for the port to answer (default 30)
#
# Install notes:
#   * Pinned to kinesalite 3.3.3 (latest release). Its transitive deps use ^ ranges; we do not
#     ship a lockfile, so those float within their semver ranges.
#   * kinesalite lists `leveldown` (native LevelDB binding) as an *optional* dependency; it is
#     only used with `--path` (on-disk store). We run in-memory (memdown), so we install with
#     --omit=optional --ignore-scripts: no native build, no node-gyp/python/make needed, and it
#     installs cleanly on Node 20.
#   * kinesalite's own cli.js listens on all interfaces (it has no host option). We start the
#     server through its library entry point instead, with the same options the CLI would
#     pass, and bind to 127.0.0.1 only.
#   * Stream state transitions (CREATING/DELETING/UPDATING) are set to 0 ms, equivalent to
#     `kinesalite --createStreamMs 0 --deleteStreamMs 0 --updateStreamMs 0`.
#
# kinesalite 3.3.3 deviations from real Kinesis seen while validating tests/compat (the compat
# scripts tolerate them without expecting them; millrace should behave like real Kinesis):
#   * GetRecords always returns MillisBehindLatest = 0 on an open shard, even when records
#     remain past the returned page (seen with Limit=1). Real Kinesis reports the lag.
#   * Increase/DecreaseStreamRetentionPeriod take effect at once and the stream stays ACTIVE
#     (no UPDATING phase); retention above 168 h is rejected with a ValidationException
#     (real Kinesis allows up to 8760 h).
#   * ListShards ignores MaxResults (returns every shard, no NextToken), and a ListShards call
#     carrying a NextToken crashes the whole kinesalite process ("key cannot be `null` or
#     `undefined`"). Never send it one when benchmarking against this peer.
#   * Default shard limit is 10 across the account (raised here via KINESALITE_SHARD_LIMIT).
set -euo pipefail

KINESALITE_VERSION="3.3.3"
NODE="${NODE:-node}"
NPM="${NPM:-npm}"
SHARD_LIMIT="${KINESALITE_SHARD_LIMIT:-50}"
START_TIMEOUT="${KINESALITE_START_TIMEOUT:-30}"

die() { echo "kinesalite.sh: $*" >&2; exit 1; }

usage() {
  cat >&2 <<'EOF'
usage: kinesalite.sh start PORT DIR
       kinesalite.sh stop DIR
       kinesalite.sh install DIR
EOF
  exit 2
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

installed_version() {
  local pkg="$1/node_modules/kinesalite/package.json"
  [[ -f "$pkg" ]] || return 1
  "$NODE" -e 'process.stdout.write(require(process.argv[1]).version)' "$pkg"
}

do_install() {
  local dir="$1"
  command -v "$NODE" >/dev/null 2>&1 || die "node not found (set NODE=/path/to/node)"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"  # node's require() needs an absolute path
  if [[ "$(installed_version "$dir" 2>/dev/null || true)" == "$KINESALITE_VERSION" ]] \
     && [[ -d "$dir/node_modules/memdown" ]]; then
    return 0
  fi
  command -v "$NPM" >/dev/null 2>&1 || die "npm not found (set NPM=/path/to/npm)"
  local log="$dir/npm-install.log"
  if ! "$NPM" install --prefix "$dir" --omit=optional --ignore-scripts --no-audit --no-fund \
       --loglevel=error "kinesalite@${KINESALITE_VERSION}" >"$log" 2>&1; then
    cat "$log" >&2
    die "npm install kinesalite@${KINESALITE_VERSION} failed"
  fi
  [[ "$(installed_version "$dir" || true)" == "$KINESALITE_VERSION" ]] \
    || die "kinesalite ${KINESALITE_VERSION} not found in $dir after npm install"
}

pid_alive() {
  local pid="$1"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# The pid in the pid file is ours only if that process is still our node server.
pid_is_ours() {
  local pid="$1"
  pid_alive "$pid" || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'kinesalite' || return 1
  fi
  return 0
}

do_start() {
  local port="$1" dir="$2"
  if ! [[ "$port" =~ ^[0-9]{1,5}$ ]] || (( 10#$port < 1 || 10#$port > 65535 )); then
    die "bad port: $port"
  fi
  port=$((10#$port))
  do_install "$dir"
  dir="$(cd "$dir" && pwd)"
  local pidfile="$dir/kinesalite.pid" log="$dir/kinesalite.log"

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

  # Marker argument "kinesalite-peer" makes the process recognisable in /proc/PID/cmdline.
  KL_MODULE="$dir/node_modules/kinesalite" KL_PORT="$port" KL_SHARD_LIMIT="$SHARD_LIMIT" \
    nohup "$NODE" -e '
      const kinesalite = require(process.env.KL_MODULE);
      const server = kinesalite({
        createStreamMs: 0,
        deleteStreamMs: 0,
        updateStreamMs: 0,
        shardLimit: Number(process.env.KL_SHARD_LIMIT),
      });
      server.listen(Number(process.env.KL_PORT), "127.0.0.1", () => {
        const a = server.address();
        console.log("kinesalite listening on http://" + a.address + ":" + a.port);
      });
      for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(0));
    ' kinesalite-peer >"$log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$pidfile"

  local waited=0
  while ! port_open "$port"; do
    if ! pid_alive "$pid"; then
      rm -f "$pidfile"
      cat "$log" >&2 || true
      die "kinesalite exited during startup (log above, $log)"
    fi
    if (( waited >= START_TIMEOUT * 10 )); then
      kill "$pid" 2>/dev/null || true
      rm -f "$pidfile"
      cat "$log" >&2 || true
      die "kinesalite did not open 127.0.0.1:$port within ${START_TIMEOUT}s"
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  echo "kinesalite ${KINESALITE_VERSION} started: pid $pid, http://127.0.0.1:$port (log: $log)"
}

do_stop() {
  local dir="$1" pidfile="$1/kinesalite.pid"
  if [[ ! -f "$pidfile" ]]; then
    echo "kinesalite not running (no $pidfile)"
    return 0
  fi
  local pid
  pid="$(cat "$pidfile")"
  if ! pid_is_ours "$pid"; then
    rm -f "$pidfile"
    echo "kinesalite not running (stale pid file removed)"
    return 0
  fi
  kill "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < 100; i++)); do
    pid_alive "$pid" || break
    sleep 0.1
  done
  if pid_alive "$pid"; then
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  echo "kinesalite stopped (pid $pid)"
}

[[ $# -ge 1 ]] || usage
case "$1" in
  start)   [[ $# -eq 3 ]] || usage; do_start "$2" "$3" ;;
  stop)    [[ $# -eq 2 ]] || usage; do_stop "$2" ;;
  install) [[ $# -eq 2 ]] || usage; do_install "$2" ;;
  *)       usage ;;
esac
