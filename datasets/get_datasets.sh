#!/usr/bin/env bash
# Install CIFAR-10 into datasets/cifar-10-batches-py/ (the CS231N entry point).
#
#   bash datasets/get_datasets.sh                       # download the official archive
#   bash datasets/get_datasets.sh --archive PATH        # offline, from a local copy
#   CIFAR10_ARCHIVE=PATH bash datasets/get_datasets.sh  # the same, as `make data` passes it
#   bash datasets/get_datasets.sh --help                # all options
#
# All the logic (checksums, safe unpacking, validation) is in student_tools/cifar10_setup.py.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$root/.venv/bin/python" ]; then PYTHON="$root/.venv/bin/python"; else PYTHON=python3; fi
fi

# The caller's directory is kept, so relative paths in arguments and CIFAR10_ARCHIVE mean
# what the caller meant. The project root goes first on the import path, so this works
# before `pip install -e .`; PYTHONSAFEPATH (Python >= 3.11) keeps a cs231n/ folder in
# the caller's directory (another assignment's) from shadowing this project's.
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONSAFEPATH=1
exec "$PYTHON" -m student_tools.cifar10_setup "$@"
