#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (the network is available then).
# It installs the pinned stack, then (autograder.package.gradescope_runtime prepare) makes the grader's files
# readable by root only, except the worker code the sandbox shows student code, and checks that this machine can
# grade: the sandbox starts and the horse images the training checks use are there (downloaded from the official
# address, checksum verified).
#
# Settings, for testing the package away from Gradescope:
#   AUTOGRADER_ROOT  the folder standing for /autograder
#   A2_PYTHON        an interpreter that already has the stack: nothing is installed
#   A2_DATA_DIR      a local copy of the data (cifar-10-horse/, palette/) instead of the download
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
GRADER="$SOURCE/grader"

if [ -z "${A2_PYTHON:-}" ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends bubblewrap python3-venv python3-pip
    python3 -m venv "$ROOT/venv"
    "$ROOT/venv/bin/pip" install --upgrade pip
    # the CPU builds of torch and torchvision (a fraction of the CUDA builds' size)
    "$ROOT/venv/bin/pip" install --index-url https://download.pytorch.org/whl/cpu -r "$GRADER/requirements-torch.txt"
    "$ROOT/venv/bin/pip" install -r "$GRADER/requirements.txt"
    A2_PYTHON="$ROOT/venv/bin/python"
fi

{
    echo "A2_PYTHON=$A2_PYTHON"
    if [ -n "${A2_DATA_DIR:-}" ]; then echo "A2_DATA_DIR=$A2_DATA_DIR"; fi
} > "$SOURCE/grader.env"

cd "$GRADER"
"$A2_PYTHON" -m autograder.package.gradescope_runtime prepare
