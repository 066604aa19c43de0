#!/usr/bin/env bash
# Create (or reuse) a Python virtualenv with the pinned AWS clients used by the compat tests.
#
# Usage: tests/compat/setup_venv.sh VENV_DIR
#
# Afterwards: VENV_DIR/bin/aws (AWS CLI v1) and VENV_DIR/bin/python with boto3, moto's
# server mode (python -m moto.server) and pyarrow.
# Pins live in tests/compat/requirements.txt. Idempotent: if VENV_DIR already has exactly the
# pinned versions it returns immediately without touching the network. Silent on success.
#
# Env: PYTHON             interpreter used to create the venv (default: python3; needs >= 3.10)
#      SETUP_VENV_NO_APT=1 never apt-get install python3-venv (done only as root, only when the
#                          interpreter lacks the venv/ensurepip module, as on a fresh Debian)
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 VENV_DIR" >&2
  exit 2
fi
VENV_DIR="$1"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REQS="$HERE/requirements.txt"
PYTHON="${PYTHON:-python3}"

die() { echo "setup_venv.sh: $*" >&2; exit 1; }

# Exit 0 when the venv's interpreter sees every pinned distribution at its pinned version.
venv_satisfied() {
  [[ -x "$VENV_DIR/bin/python" && -x "$VENV_DIR/bin/aws" ]] || return 1
  "$VENV_DIR/bin/python" - "$REQS" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import version, PackageNotFoundError
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, want = line.split("==")
    name = name.split("[", 1)[0]  # moto[server]==X: the distribution is moto
    try:
        have = version(name)
    except PackageNotFoundError:
        sys.exit(1)
    if have != want:
        sys.exit(1)
PY
}

if venv_satisfied; then
  exit 0
fi

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (set PYTHON=...)"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
  || die "$PYTHON is older than 3.10 (awscli 1.46 needs >= 3.10)"

# Debian/Ubuntu ship the venv module (ensurepip) separately as python3-venv. When we are root
# with apt-get available, install it quietly; otherwise say what is missing.
ensure_venv_module() {
  "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 && return 0
  if [[ "${SETUP_VENV_NO_APT:-0}" != 1 && "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    local log
    log="$(mktemp)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; } \
         >"$log" 2>&1; then
      cat "$log" >&2
      rm -f "$log"
      die "apt-get install python3-venv failed"
    fi
    rm -f "$log"
    "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 && return 0
  fi
  die "$PYTHON has no venv/ensurepip module; on Debian/Ubuntu: apt-get install -y python3-venv"
}

if [[ ! -x "$VENV_DIR/bin/python" ]]; then
  ensure_venv_module
  log="$(mktemp)"
  if ! "$PYTHON" -m venv "$VENV_DIR" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    rm -rf "$VENV_DIR"
    die "'$PYTHON -m venv $VENV_DIR' failed"
  fi
  rm -f "$log"
fi

log="$(mktemp)"
if ! "$VENV_DIR/bin/python" -m pip install --disable-pip-version-check --no-input \
     --quiet -r "$REQS" >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  die "pip install -r $REQS failed"
fi
if ! "$VENV_DIR/bin/python" -m pip check >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  die "pip check reports broken requirements in $VENV_DIR"
fi
rm -f "$log"

venv_satisfied || die "venv at $VENV_DIR does not have the pinned versions after install"
