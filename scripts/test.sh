#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs them.
#
#   bash scripts/test.sh [extra cargo test args]
#
# Installs, only when missing (Debian packages, as root or with passwordless sudo):
#   chromium  the data-quality report test opens report.html in headless Chromium
#   chromium-driver  the console's browser flows (.ci/run) drive that Chromium with Selenium
#   strace    the durable-write tests read the binary's renames and fsyncs
# then runs `cargo test --workspace --locked`. Without root and with a package missing it says
# which one and stops, instead of failing later inside a test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
  || [ -n "${MILLRACE_CHROMIUM:-}" ] || need+=(chromium)
command -v strace >/dev/null 2>&1 || need+=(strace)
# rdkafka-sys builds librdkafka's C sources with make.
command -v make >/dev/null 2>&1 || need+=(make)
command -v chromedriver >/dev/null 2>&1 || [ -n "${MILLRACE_CHROMEDRIVER:-}" ] \
  || need+=(chromium-driver)

if [ ${#need[@]} -gt 0 ]; then
  as_root=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      as_root="sudo -n"
    else
      echo "scripts/test.sh: missing ${need[*]}; install the Debian package(s): apt-get install -y ${need[*]}" >&2
      exit 1
    fi
  fi
  command -v apt-get >/dev/null 2>&1 \
    || { echo "scripts/test.sh: missing ${need[*]} and no apt-get to install them" >&2; exit 1; }
  echo "scripts/test.sh: installing ${need[*]} (Debian packages)"
  $as_root apt-get update -qq
  $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

exec cargo test --workspace --locked "$@"
