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

import jupyterlab_driver as lab  # a helper module beside the tests

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


def image_counts(nb):
    """image/png outputs of each cell (0 for markdown cells)."""
    return [sum("image/png" in o.get("data", {}) for o in c.get("outputs", []))
            if c.cell_type == "code" else 0 for c in nb.cells]


def walk_problems(walk, stored, min_long_seconds=10):
    """{check: what is wrong} for a walk of a notebook whose committed version is `stored`;
    empty when the notebook passes every check. Reporting them all at once shows the whole
    picture in one run."""
    problems = {}
    if walk.error_outputs:
        problems["errors"] = f"error outputs (cell, error): {walk.error_outputs}"

    # Math: every markdown cell rendered, typeset, nothing left raw.
    if walk.markdown_rendered != walk.markdown_cells:
        problems["markdown"] = (f"{walk.markdown_cells - walk.markdown_rendered} of "
                                f"{walk.markdown_cells} markdown cells not rendered")
    has_math = any(c.cell_type == "markdown" and "$" in c.source for c in stored.cells)
    if has_math and walk.math_typeset == 0:
        problems["math"] = "the markdown has $...$ but MathJax typeset nothing"
    if walk.math_errors:
        problems["math_errors"] = "MathJax errors: " + "; ".join(walk.math_errors)
    if walk.raw_tex:
        problems["raw_tex"] = "raw TeX in rendered markdown: " + "; ".join(
            f"cell {k}: ...{text}..." for k, text in walk.raw_tex[:10])

    # Plots: the page shows exactly the saved image outputs, each loaded, cell by cell.
    saved = walk.saved
    if len(walk.dom_cells) != len(saved.cells):
        problems["cells"] = f"{len(walk.dom_cells)} cells on the page, {len(saved.cells)} saved"
        return problems
    pngs = image_counts(saved)
    shown = [(k, d["images"], d["images_loaded"], pngs[k])
             for k, d in enumerate(walk.dom_cells)
             if (d["images"], d["images_loaded"]) != (pngs[k], pngs[k])]
    if shown:
        problems["images"] = f"(cell, images on page, loaded, image/png outputs): {shown}"
    no_plot = [k for k, c in enumerate(saved.cells)
               if c.cell_type == "code" and PLOTTING_RE.search(c.source) and pngs[k] == 0]
    if no_plot:
        problems["plots"] = f"plotting cells that showed no image: {no_plot}"
    stored_pngs = image_counts(stored)
    if any(stored_pngs) and pngs != stored_pngs:  # (a cleared release copy stores none)
        problems["stored_images"] = (f"images per cell {pngs}, the committed notebook has "
                                     f"{stored_pngs}")

    # Progress: visible in the output of the long cells while they ran.
    longest = walk.longest
    if longest is None or longest.seconds == 0:
        problems["running"] = "no cell was seen running"
        return problems
    if not longest.progress_texts:
        problems["progress"] = (f"the longest cell (index {longest.index}, "
                                f"{longest.seconds:.0f} s) showed no progress while it ran")
    blind = [(c.index, round(c.seconds)) for c in walk.cells
             if c.seconds >= max(0.5 * longest.seconds, min_long_seconds)
             and not c.progress_texts and c is not longest]
    if blind:
        problems["progress_long_cells"] = (f"(cell, seconds) that ran at least half as long "
                                           f"as the longest with no progress shown: {blind}")
    return problems


def walk(lab_session, name):
    """Run notebook `name` of the served copy; keep screenshots and summary.json."""
    import nbformat

    server, page = lab_session
    stored = nbformat.read(server.root_dir / name, as_version=4)
    out = artifacts_dir(Path(name).stem)
    try:
        result = lab.run_notebook_in_lab(page, server, name, out)
    finally:
        server.shut_down_kernels()
    summary = lab.walk_summary(result)
    (out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print(f"{name}: run all took {result.seconds:.0f} s; screenshots in {out}")
    return result, stored


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_jupyterlab(lab_session, name):
    result, stored = walk(lab_session, name)
    assert walk_problems(result, stored) == {}


# A notebook with one of each fault the walk must catch. Cell indices: 0 markdown,
# 1 progress bar (tqdm's default format on stderr), 2 the longest cell, silent,
# 3 a plot closed before it is shown, 4 an error.
FAULTY_CELLS = [
    ("markdown", "Broken: $\\frac{1}{2}$ fine, $\\notacommand{x}$ undefined, \\alpha raw, "
                 "$$\\begin{align} x \\end{foo}$$ an error."),
    ("code", "import time\nfrom tqdm import tqdm\nfor _ in tqdm(range(8)):\n    time.sleep(0.4)"),
    ("code", "time.sleep(6)"),
    ("code", "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.close()"),
    ("code", "1 / 0"),
]


def test_the_walk_catches_each_fault(lab_session):
    """The checks can fail: a notebook with an error, a TeX error, raw TeX, a plotting cell
    without a plot and a long silent cell is reported for each, and the progress bar of
    the tqdm cell is seen."""
    import nbformat

    server, _ = lab_session
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "markdown"
                else nbformat.v4.new_code_cell(src) for kind, src in FAULTY_CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nbformat.write(nb, server.root_dir / "faulty.ipynb")
    result, stored = walk(lab_session, "faulty.ipynb")
    problems = walk_problems(result, stored, min_long_seconds=1)
    assert {"errors", "math_errors", "raw_tex", "plots", "progress"} <= set(problems), problems
    assert "ZeroDivisionError" in problems["errors"]
    assert "undefined: \\notacommand" in problems["math_errors"], problems["math_errors"]
    assert "Unknown environment" in problems["math_errors"], problems["math_errors"]
    assert "\\alpha" in problems["raw_tex"]
    tqdm_cell = next(c for c in result.cells if c.index == 1)
    assert tqdm_cell.progress_texts, "the tqdm bar was not seen while its cell ran"
    assert result.longest.index == 2


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
