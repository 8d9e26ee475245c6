#!/usr/bin/env bash
# Check the notebooks, the answers and the files (no links, no control characters in names,
# size limits), then zip the notebooks + cs231n/**/*.py + one PDF of the notebooks.
# Everything happens in python -m student_tools.submission (run with --help for the options);
# its exit status is passed on: 0 done, 1 refused (reasons listed), 2 zip without PDF.
# The PDF needs Chrome, Chromium or Edge and MathJax 2.7; where they are not found, name
# them: --browser PATH --mathjax PATH (or export CS231N_BROWSER=... CS231N_MATHJAX=...).
# Windows (no bash, and the venv's python is .venv\Scripts\python.exe): with the venv
# activated, run `python -m student_tools.submission` from the project folder instead.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=.venv/bin/python
[ -x "$PYTHON" ] || PYTHON=python3
exec "$PYTHON" -m student_tools.submission "$@"
