# Helpers the process-level bench scripts share (sourced from the repository root).

# The millrace binary to time, as an absolute path: $BIN, else target/release/millrace (built
# when missing).
bench_bin() {
  local bin="${BIN:-target/release/millrace}"
  if [[ ! -x "$bin" ]]; then
    cargo build --release -p millrace >&2
  fi
  echo "$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
}

# A count argument that must be a positive integer, or exit naming it.
bench_count() {
  [[ "$2" =~ ^[1-9][0-9]*$ ]] || { echo "bad $1: $2" >&2; exit 1; }
}

# A TCP port nothing listens on now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
