#!/usr/bin/env bash
# Installs facade into ./.venv and serves FHIR on the embedded DrChrono sandbox.
# Extra arguments go to `facade serve` (e.g. --port 8081 --patients 200).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
exec .venv/bin/facade serve "$@"
