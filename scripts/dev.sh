#!/usr/bin/env bash
# tongge developer entry point; each command installs what it needs first.
#
#   bash scripts/dev.sh serve [--port 8000]   # API on the embedded SpatiaLite DB + sample city
#   bash scripts/dev.sh test  [pytest args]   # lint, import contracts, full test suite (SpatiaLite
#                                             # and PostGIS) on every core (`-n auto` unless you pass -n)
#   bash scripts/dev.sh setup                 # only install (system packages, venv, test DB)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
# Where the database, the secret key and the logs live: the same default as
# gis/settings.py (a checkout's var/), so that `tongge` and `serve` share them.
DATA_DIR=${TONGGE_DATA_DIR:-$ROOT/var}
LOG_DIR="$DATA_DIR/logs"
export SPATIALITE_LIBRARY_PATH=${SPATIALITE_LIBRARY_PATH:-mod_spatialite}
export TONGGE_TEST_POSTGRES_URL=${TONGGE_TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/tongge_test}

say() { printf '\033[1;34m[tongge]\033[0m %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

private_dir() {  # a folder of the owner only (the database holds households and password hashes)
  mkdir -p "$1"
  chmod 700 "$1"
}

setup_python() {
  if ! python3 -m venv --help >/dev/null 2>&1; then apt_install python3-venv python3-pip; fi
  [ -x "$VENV/bin/python" ] || { say "creating $VENV"; python3 -m venv "$VENV"; }
  local stamp="$VENV/.tongge-installed" want
  want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    local log="$LOG_DIR/install.log"
    private_dir "$LOG_DIR"
    say "installing Python dependencies (first run takes a few minutes; log: $log)"
    # pip's notes (the "editable installation" block and the like) go to the log only.
    if ! { "$VENV/bin/pip" install -q --upgrade pip && "$VENV/bin/pip" install -q -e ".[dev]"; } \
        >"$log" 2>&1; then
      tail -n 30 "$log" >&2
      say "installing failed; the whole log is $log"
      exit 1
    fi
    echo "$want" > "$stamp"
  fi
}

setup_postgis() {
  apt_install postgresql-15-postgis-3 postgresql-client
  if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    say "starting PostgreSQL"
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    for _ in $(seq 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
  fi
  local db=${TONGGE_TEST_POSTGRES_URL##*/}
  if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1; then
    say "creating test database $db"
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db"
  fi
  psql -h 127.0.0.1 -U postgres -d "$db" -qc "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null
}

case "${1:-}" in
  setup)
    apt_install libsqlite3-mod-spatialite
    setup_python
    setup_postgis
    ;;
  serve)
    shift
    apt_install libsqlite3-mod-spatialite
    setup_python
    umask 077  # the database holds households and password hashes: owner only
    private_dir "$DATA_DIR"
    export TONGGE_DATA_DIR="$DATA_DIR"
    if [ -z "${TONGGE_SECRET_KEY:-}" ]; then
      # A signing key of this data directory's own, readable by its owner only.
      key="$DATA_DIR/secret_key"
      [ -s "$key" ] || ("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(48))' > "$key")
      chmod 600 "$key"
      TONGGE_SECRET_KEY=$(cat "$key")
      export TONGGE_SECRET_KEY
    fi
    exec "$VENV/bin/tongge" serve "$@"
    ;;
  test)
    shift
    # Chromium and a CJK font for the browser tests of the web map and the docs.
    apt_install libsqlite3-mod-spatialite chromium fonts-wqy-microhei
    setup_python
    setup_postgis
    say "web bundle (api/static must match web/)"
    (cd web && npm ci --no-audit --no-fund --loglevel=error >/dev/null && node build.mjs --check)
    say "ruff"
    "$VENV/bin/ruff" check .
    say "mypy"
    "$VENV/bin/mypy"
    say "import contracts"
    "$VENV/bin/lint-imports" --no-logo
    # One xdist worker per core unless the caller chose (-n 0: serial); each
    # worker gets its own PostGIS database (tests/conftest.py).
    parallel=(-n auto)
    for arg in "$@"; do
      case "$arg" in -n|-n*|--numprocesses|--numprocesses=*) parallel=() ;; esac
    done
    say "pytest"
    exec "$VENV/bin/python" -m pytest "${parallel[@]}" "$@"
    ;;
  *)
    echo "usage: bash scripts/dev.sh serve|test|setup" >&2
    exit 2
    ;;
esac
