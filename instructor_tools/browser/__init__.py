"""Driving JupyterLab in a real browser (Debian's Chromium through Playwright).

`jupyterlab.py` starts a JupyterLab server on 127.0.0.1 with its own throw-away settings,
opens notebooks in headless Chromium, runs them the way a student does ("Restart Kernel and
Run All Cells") and reports what the page showed: errors, rendered math, plots, progress.
instructor_tools/tests/test_jupyterlab.py uses it.
"""
