#!/usr/bin/env bash
# Installs facade with its test tools into ./.venv, sets up the US Core validator from
# ../shared, and runs every gate: format, lint, types, then the whole test suite.
# Needs Node >= 20.19 (for the validator), Debian's chromium (/usr/bin/chromium, for the SMART
# launch test) and a PostgreSQL server (FACADE_TEST_POSTGRES_URL, default
# postgresql+psycopg://postgres@127.0.0.1:5432/postgres).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
SHARED="${FACADE_SHARED_DIR:-$(cd .. && pwd)/shared}"
export FACADE_SHARED_DIR="$SHARED"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
if [ ! -f "$SHARED/tools/validator/validate.sh" ]; then
  echo "test: the shared folder (with tools/validator) is not at $SHARED; set FACADE_SHARED_DIR" >&2
  exit 1
fi
bash "$SHARED/tools/validator/setup.sh" >/dev/null
.venv/bin/ruff format --check facade mappings capability tests benchmarks
.venv/bin/ruff check facade mappings capability tests benchmarks
.venv/bin/mypy
exec .venv/bin/pytest "$@"
