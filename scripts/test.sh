#!/usr/bin/env bash
# Set up and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup-env.sh
export PATH="$PWD/.venv/bin:$PATH"
python -m pytest -n 2 --durations=15 "$@"
