#!/usr/bin/env bash
# Check the notebooks, the answers and the files (no links, no control characters in names,
# size limits), then zip the notebooks + cs231n/**/*.py + a MANIFEST. No browser and no PDF:
# the course makes the PDF from the zip. Everything happens in python -m student_tools.submission
# (run with --help for the options); its exit status is passed on: 0 done, 1 refused (reasons
# listed). Windows (no bash, and the venv's python is .venv\Scripts\python.exe) and Google
# Colab: run `python -m student_tools.submission` from the project folder instead.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=.venv/bin/python
[ -x "$PYTHON" ] || PYTHON=python3
exec "$PYTHON" -m student_tools.submission "$@"
