#!/usr/bin/env bash
# The main job: set up, regenerate the student release, run the solution notebook in fast mode.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup-env.sh
export PATH="$PWD/.venv/bin:$PATH"
python -m coursetools release
python -m coursetools solve --mode fast
echo
echo "student release:          release/a2-cnn/"
echo "executed solution (fast): runs/fast/a2-cnn.ipynb (details in runs/fast/run-info.json)"
