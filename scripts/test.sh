#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite against real Redis, the real test model and Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
