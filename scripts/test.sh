#!/usr/bin/env bash
# The whole test run, as CI runs it: set-up, lint, the full suite on PostgreSQL,
# and the smoke subset on SQLite. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy digitizer storage workers signing
echo "== full suite on PostgreSQL"
SOHOA_TEST_DB=postgresql .venv/bin/python -m pytest -q "$@"
echo "== smoke subset on SQLite"
SOHOA_TEST_DB=sqlite .venv/bin/python -m pytest -q -m smoke "$@"
