#!/usr/bin/env bash
# Create .venv (if needed) and install everything the project needs. Safe to run again.
#   PYTHON      interpreter to build the venv from (default: python3.11, else python3)
#   TORCH_SPEC  torch/torchvision requirement (default: the pinned pair below)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
if ! command -v bwrap >/dev/null 2>&1; then
    # the grader runs every submission inside a bubblewrap sandbox (autograder/sandbox/view.py)
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "[setup] installing bubblewrap"
        (apt-get install -y -qq bubblewrap >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq bubblewrap; })
    else
        echo "[setup] WARNING: bubblewrap (bwrap) is missing; the grader needs it: sudo apt-get install bubblewrap" >&2
    fi
fi
if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $PYTHON"
    "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import torch, torchvision" 2>/dev/null; then
    echo "[setup] installing $TORCH_SPEC (large; takes a few minutes)"
    # shellcheck disable=SC2086
    .venv/bin/pip install --quiet --disable-pip-version-check $TORCH_SPEC
fi
echo "[setup] installing the project and its tools"
.venv/bin/pip install --quiet --disable-pip-version-check -e ".[dev]"
.venv/bin/python -c "import torch, torchvision, nbgrader; print(f'[setup] ready: torch {torch.__version__}, torchvision {torchvision.__version__}, nbgrader {nbgrader.__version__}')"
