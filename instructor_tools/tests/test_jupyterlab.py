"""The notebooks as a student sees them: JupyterLab in a real browser.

For every notebook of the Makefile's NOTEBOOKS, in a copy of the project (the committed
notebooks are never touched), JupyterLab is served on 127.0.0.1 and driven by Playwright
with the system's Chromium: "Restart Kernel and Run All Cells", then

- no error output (tracebacks; cells tagged raises-exception excepted),
- every markdown cell rendered, math typeset by MathJax, no raw TeX left, no TeX errors,
- every plot displayed: the images on the page are the image/png outputs of the saved
  notebook, cell by cell, each loaded; every plotting cell shows at least one; as many as
  the committed notebook stores,
- progress visible while the long cells run: the longest cell, and every cell that ran at
  least half as long, showed a progress bar in its output while its prompt read [*].

`make lab` is started too (non-interactively, through LAB_ARGS) and must open both
notebooks. Screenshots and a summary (summary.json: run time, per-cell seconds, progress
states seen) are kept under $ARTIFACTS_DIR/jupyterlab/ (default
instructor_tools/tests/artifacts/jupyterlab/, git-ignored).

Skipped when Chromium or playwright is missing, unless REQUIRE_BROWSER=1 (CI), where that
is a failure. Slow: each notebook takes as long as it takes to execute (1-2 minutes).
"""
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from instructor_tools.browser import jupyterlab as lab

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR") or ROOT / "instructor_tools" / "tests" / "artifacts")
DATA = ROOT / "datasets" / "cifar-10-batches-py"

# A cell that draws: it calls one of these matplotlib functions itself.
PLOTTING_RE = re.compile(r"\bplt\.(plot|show|imshow|bar|barh|hist|errorbar|scatter|semilogx|"
                         r"semilogy|loglog|subplots?)\(")


def makefile_notebooks():
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    m = re.search(r"^NOTEBOOKS\s*:?=\s*(.+)$", text, re.M)
    assert m, "the Makefile has no NOTEBOOKS line"
    return m.group(1).split()


NOTEBOOKS = makefile_notebooks()

pytestmark = pytest.mark.slow


def require_browser():
    missing = lab.missing_browser_tools()
    if missing:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)


def artifacts_dir(name):
    """ARTIFACTS/jupyterlab/name, with the files an earlier run wrote there removed."""
    out = ARTIFACTS / "jupyterlab" / name
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("*.png"), *out.glob("summary.json")]:
        old.unlink()
    return out


def copy_project(dest):
    """The project's files without environment, caches, git or installed data; the data
    set is linked (read only by the notebooks)."""
    shutil.copytree(ROOT, dest, symlinks=True, ignore=shutil.ignore_patterns(
        ".venv", ".git", "release", "__pycache__", ".pytest_cache", ".hypothesis",
        ".ipynb_checkpoints", "*.egg-info", "cifar-10-batches-py", "artifacts",
        "*.zip", "*.tar.gz", "*.pdf"))
    (dest / "datasets").mkdir(exist_ok=True)
    (dest / "datasets" / "cifar-10-batches-py").symlink_to(DATA)
    return dest


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (Playwright's sync API allows one at a time)."""
    require_browser()
    with lab.chromium_browser() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def lab_session(browser, tmp_path_factory):
    """(server, page): JupyterLab on a copy of the project, and a Chromium page."""
    if not DATA.is_dir():
        pytest.fail(f"CIFAR-10 is not installed in {DATA} (make data)")
    work = tmp_path_factory.mktemp("jupyterlab")
    project = copy_project(work / "project")
    env = lab.makefile_exports(ROOT / "Makefile")
    # The kernel imports the copy's package, which finds the data set next to it.
    env["PYTHONPATH"] = str(project)
    with lab.LabServer(project, work / "state", env=env) as server:
        page = lab.new_page(browser)
        yield server, page
        page.context.close()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_jupyterlab(lab_session, name):
    import nbformat

    server, page = lab_session
    stored = nbformat.read(server.root_dir / name, as_version=4)
    out = artifacts_dir(Path(name).stem)
    try:
        walk = lab.run_notebook_in_lab(page, server, name, out)
    finally:
        server.shut_down_kernels()
    summary = lab.walk_summary(walk)
    (out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print(f"{name}: run all took {walk.seconds:.0f} s; screenshots in {out}")

    # No errors.
    assert not walk.error_outputs, f"{name}: error outputs (cell index, error): {walk.error_outputs}"

    # Math: every markdown cell rendered, typeset, nothing left raw.
    assert walk.markdown_rendered == walk.markdown_cells, (
        f"{name}: {walk.markdown_cells - walk.markdown_rendered} markdown cells not rendered")
    has_math = any(c.cell_type == "markdown" and "$" in c.source for c in stored.cells)
    if has_math:
        assert walk.math_typeset > 0, f"{name}: its markdown has $...$ but nothing was typeset"
    assert not walk.math_errors, f"{name}: MathJax errors: {walk.math_errors}"
    assert not walk.raw_tex, f"{name}: raw TeX left in rendered markdown: {walk.raw_tex[:10]}"

    # Plots: the page shows exactly the saved image outputs, each loaded, cell by cell.
    saved = walk.saved
    assert len(walk.dom_cells) == len(saved.cells), "page cells do not match the notebook's"
    pngs = [sum("image/png" in o.get("data", {}) for o in c.get("outputs", []))
            if c.cell_type == "code" else 0 for c in saved.cells]
    shown = [(k, d["images"], d["images_loaded"], pngs[k])
             for k, d in enumerate(walk.dom_cells)
             if (d["images"], d["images_loaded"]) != (pngs[k], pngs[k])]
    assert not shown, f"{name}: (cell, images on page, loaded, image/png outputs) differ: {shown}"
    no_plot = [k for k, c in enumerate(saved.cells)
               if c.cell_type == "code" and PLOTTING_RE.search(c.source) and pngs[k] == 0]
    assert not no_plot, f"{name}: plotting cells that showed no image: {no_plot}"
    stored_pngs = [sum("image/png" in o.get("data", {}) for o in c.get("outputs", []))
                   if c.cell_type == "code" else 0 for c in stored.cells]
    if any(stored_pngs):  # a notebook with stored outputs (not a cleared release copy)
        assert pngs == stored_pngs, (
            f"{name}: images per cell {pngs} where the committed notebook has {stored_pngs}")
    assert sum(pngs) > 0 or not any(PLOTTING_RE.search(c.source) for c in saved.cells)

    # Progress: visible in the output of the long cells while they ran.
    longest = walk.longest
    assert longest is not None and longest.seconds > 0, f"{name}: no cell was seen running"
    assert longest.progress_texts, (
        f"{name}: the longest cell (index {longest.index}, {longest.seconds:.0f} s) showed no "
        f"progress while it ran")
    threshold = 0.5 * longest.seconds
    blind = [(c.index, round(c.seconds)) for c in walk.cells
             if c.seconds >= max(threshold, 10) and not c.progress_texts]
    assert not blind, f"{name}: (cell, seconds) that ran long with no progress shown: {blind}"


def test_make_lab_opens_both_notebooks(browser, tmp_path):
    """`make lab` with LAB_ARGS, in the background: it serves (as root too), and the page
    opens with one tab per notebook. Run in a copy of the project that links the real
    .venv, so that nothing JupyterLab writes (checkpoints) lands in the checkout."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    if not (ROOT / ".venv" / "bin" / "jupyter").exists() or not DATA.is_dir():
        pytest.skip("no .venv with jupyter or no CIFAR-10 here (make data)")
    project = copy_project(tmp_path / "project")
    (project / ".venv").symlink_to(ROOT / ".venv")
    env = lab.isolated_jupyter_env(tmp_path / "state")
    if subprocess.run(["make", "-q", "venv"], cwd=project, env=env).returncode != 0:
        pytest.skip("the environment is not up to date (make venv would install first)")
    port, token = lab.free_port(), "t" + os.urandom(12).hex()
    args = (f"--no-browser --port {port} --ServerApp.ip=127.0.0.1 --ServerApp.port_retries=0 "
            f"--IdentityProvider.token={token}")
    log_path = tmp_path / "make-lab.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(["make", "--no-print-directory", "lab", f"LAB_ARGS={args}"],
                                cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    out = artifacts_dir("make-lab")
    try:
        url = f"http://127.0.0.1:{port}"
        lab.wait_until_serving(url, token, proc, log_path)
        page = lab.new_page(browser)
        try:
            tabs, panels, cells = look_at_lab(page, url, token, out)
        finally:
            page.context.close()
    finally:
        lab.stop_process_group(proc)
    assert sorted(t for t in tabs if t.endswith(".ipynb")) == sorted(NOTEBOOKS), tabs
    assert panels == len(NOTEBOOKS)
    assert sorted(cells) == sorted(NOTEBOOKS) and all(n > 1 for n in cells.values()), cells
    log = log_path.read_text(errors="replace")
    assert ("--allow-root" in log) == (os.geteuid() == 0)


def look_at_lab(page, url, token, out):
    """Open the server's start page; return (tab labels, notebook panels, {notebook: cells
    shown when its tab is selected}), with a screenshot per notebook tab."""
    page.goto(f"{url}/?token={token}", timeout=120_000)
    page.wait_for_selector(lab.VISIBLE_PANEL, timeout=120_000)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        tabs = lab.main_area_tabs(page)
        if len([t for t in tabs if t.endswith(".ipynb")]) >= len(NOTEBOOKS):
            break
        time.sleep(0.5)
    panels = page.locator(".jp-NotebookPanel").count()
    cells = {}
    for name in NOTEBOOKS:
        tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=name)
        if tab.count() == 0:
            continue
        tab.first.click()
        visible_cells = page.locator(f"{lab.VISIBLE_PANEL} .jp-Notebook .jp-Cell")
        deadline = time.monotonic() + 120
        while visible_cells.count() < 2 and time.monotonic() < deadline:
            time.sleep(0.5)  # the cells come in after the panel
        cells[name] = visible_cells.count()
        page.screenshot(path=str(out / f"make-lab-{Path(name).stem}.png"))
    return tabs, panels, cells
