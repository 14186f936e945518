#!/usr/bin/env bash
# The whole test run, as CI runs it: set-up, lint, the full suite on PostgreSQL,
# and the smoke subset on SQLite. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy digitizer storage workers signing
# pyHanko's source distribution holds real signed PDFs with anomalies: every one must get
# a verdict. Fetched from PyPI once (tests themselves never download anything).
sdist=.cache/pyhanko-sdist
if [ ! -d "$sdist/pyhanko-0.38.0" ]; then
  mkdir -p "$sdist"
  if .venv/bin/python -m pip download -q --no-binary :all: --no-deps -d "$sdist" pyhanko==0.38.0 \
      >/dev/null 2>&1; then
    tar -xzf "$sdist"/pyhanko-0.38.0.tar.gz -C "$sdist"
  fi
fi
[ -d "$sdist/pyhanko-0.38.0" ] && export SOHOA_PYHANKO_SDIST="$PWD/$sdist/pyhanko-0.38.0"

# setup.sh --test installs the PaddleOCR extra: its tests must run, not skip.
export SOHOA_REQUIRE_PADDLE=1
# setup.sh --test installs Debian's chromium: the browser tests must run, not skip.
export SOHOA_REQUIRE_BROWSER=1

echo "== full suite on PostgreSQL"
SOHOA_TEST_DB=postgresql .venv/bin/python -m pytest -q "$@"
echo "== smoke subset on SQLite"
SOHOA_TEST_DB=sqlite .venv/bin/python -m pytest -q -m smoke "$@"
