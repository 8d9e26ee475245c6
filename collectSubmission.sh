#!/usr/bin/env bash
# Check the notebooks, the answers and the files (no links, no control characters in names,
# size limits), then zip the notebooks + cs231n/**/*.py + a MANIFEST. No browser needed: the
# grader prints the notebooks it grades. Everything happens in python -m student_tools.submission
# (run with --help for the options); its exit status is passed on: 0 done, 1 refused (reasons
# listed), 2 zip written without the PDF that --pdf asked for.
# --pdf also puts notebooks.pdf in the zip, for a course that collects one: it needs Chrome,
# Chromium or Edge and MathJax 2.7 (name them with --browser PATH --mathjax PATH, or export
# CS231N_BROWSER=... CS231N_MATHJAX=...). --no-pdf is accepted and does nothing (the default).
# Windows (no bash, and the venv's python is .venv\Scripts\python.exe) and Google Colab: run
# `python -m student_tools.submission` from the project folder instead.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=.venv/bin/python
[ -x "$PYTHON" ] || PYTHON=python3
exec "$PYTHON" -m student_tools.submission "$@"
