"""A JupyterLab server and a headless Chromium page on it, for tests of what students see.

    server = LabServer(root_dir, state_dir, env=makefile_exports(ROOT / "Makefile"))
    with server, chromium_browser() as browser:
        walk = run_notebook_in_lab(new_page(browser), server, "Dropout.ipynb", screenshots_dir)
    walk.error_outputs, walk.math_errors, walk.raw_tex, walk.dom_cells (images per cell),
    walk.cells (seconds and progress seen per executed cell), walk_summary(walk)

Everything JupyterLab would read or write outside root_dir (config, settings, workspaces,
runtime files, IPython profile) is redirected into state_dir, so a run neither depends on
nor changes the user's own Jupyter set-up. The settings turn off autosave (nothing is
written unless the walk saves), the news pop-up, and windowing (every cell is attached to
the page, so cells can be counted and checked without scrolling).

Facts about JupyterLab 4.6 this relies on (checked against it):
- the visible notebook is `.jp-NotebookPanel:not(.lm-mod-hidden)`; its cells are
  `.jp-Notebook .jp-Cell` in notebook order; a code cell's prompt reads `[*]:` while it is
  queued or running, so during "run all" the first `[*]` cell is the one executing;
- the notebook toolbar holds `[data-command="notebook:restart-run-all"]` and
  `[data-command="docmanager:save"]`; the restart asks for confirmation in a `.jp-Dialog`;
- tracebacks are rendered as `application/vnd.jupyter.stderr` outputs, like any stderr text
  (tqdm's default bars write there too), so an error is recognised by its traceback;
- math is typeset by MathJax 3 into `mjx-container` elements; a TeX error becomes an
  `mjx-merror` element, an undefined macro red text (`<mtext mathcolor="red">` in the
  container's assistive MathML).
"""
import contextlib
import dataclasses
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser")
INSTALL_HINT = ("JupyterLab browser tests need Debian's chromium (apt-get install chromium) "
                "and the playwright package (pip install -r requirements-ci.txt)")

# A progress bar or counter as tqdm draws it: "40%|####      |" (default format) or
# "|#####     | 4/10" (a bar_format with the bar before the count).
PROGRESS_RE = re.compile(r"\d{1,3}%\|[^|\n]{0,120}\||\|[^|\n]{0,120}\|\s*\d+/\d+")
TRACEBACK_RE = re.compile(r"Traceback \(most recent call last\)|^\w*(Error|Exception)\b.*", re.M)
# TeX that MathJax should have typeset: a dollar sign or a backslash command left in the text.
RAW_TEX_RE = re.compile(r"\$|\\[A-Za-z]+|\\[\[\](){}]")

# JupyterLab settings for a walk (settings dir: <plugin id path>.jupyterlab-settings).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false",
                                                    "checkForUpdates": False},
}

VISIBLE_PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"


def find_chromium():
    """Path of the system's Chromium, or None."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def have_playwright():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


def missing_browser_tools():
    """A sentence naming what is missing for a browser walk, or None when nothing is."""
    missing = []
    if find_chromium() is None:
        missing.append("chromium is not installed")
    if not have_playwright():
        missing.append("the playwright package is not installed")
    return f"{' and '.join(missing)} ({INSTALL_HINT})" if missing else None


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def makefile_exports(makefile):
    """{NAME: value} of the `export NAME := value` lines of a Makefile.

    The notebooks' outputs depend on these (BLAS threads, matplotlib backend), so a
    browser run gets exactly what `make notebooks` and `make lab` give the kernel.
    """
    exports = {}
    for line in Path(makefile).read_text(encoding="utf-8").splitlines():
        m = re.match(r"export\s+([A-Za-z_][A-Za-z0-9_]*)\s*:?=\s*(.*?)\s*$", line)
        if m:
            exports[m.group(1)] = m.group(2)
    return exports


def isolated_jupyter_env(state_dir, base_env=None):
    """Environment for a Jupyter process whose config, settings and state live in state_dir.

    Writes the walk's JupyterLab settings (LAB_SETTINGS) into state_dir/settings.
    """
    state_dir = Path(state_dir)
    env = dict(os.environ if base_env is None else base_env)
    dirs = {
        "JUPYTER_CONFIG_DIR": "config",
        "JUPYTER_DATA_DIR": "data",
        "JUPYTER_RUNTIME_DIR": "runtime",
        "JUPYTERLAB_SETTINGS_DIR": "settings",
        "JUPYTERLAB_WORKSPACES_DIR": "workspaces",
        "IPYTHONDIR": "ipython",
    }
    for var, sub in dirs.items():
        (state_dir / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(state_dir / sub)
    for plugin, values in LAB_SETTINGS.items():
        path = state_dir / "settings" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")
    # An outer make's flags (jobserver descriptors, -n) must not reach a make we start.
    for var in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL"):
        env.pop(var, None)
    return env


def wait_until_serving(url, token, proc, log_path, timeout=180.0):
    """Poll url/api/status until the server answers; fail early if proc exits."""
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(f"{url}/api/status",
                                     headers={"Authorization": f"token {token}"})
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with status {proc.returncode}:\n"
                               f"{Path(log_path).read_text(errors='replace')[-4000:]}")
        try:
            with urllib.request.urlopen(request, timeout=5) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer at {url} within {timeout:.0f} s:\n"
                       f"{Path(log_path).read_text(errors='replace')[-4000:]}")


def stop_process_group(proc, timeout=30.0):
    """SIGTERM the process group led by proc (started with start_new_session=True), then
    SIGKILL it if it is still there after timeout. Jupyter shuts its kernels down on SIGTERM."""
    import signal

    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    # The group may outlive its leader (a kernel); take it down too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


class LabServer:
    """`python -m jupyterlab` on 127.0.0.1 at a free port with a random token, serving
    root_dir, started as a context manager and stopped (with its kernels) on exit."""

    def __init__(self, root_dir, state_dir, env=None):
        self.root_dir = Path(root_dir)
        self.state_dir = Path(state_dir)
        self.extra_env = dict(env or {})
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.state_dir / "jupyterlab.log"
        self.proc = None

    def command(self):
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
               f"--ServerApp.root_dir={self.root_dir}"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        return cmd

    def __enter__(self):
        self.state_dir.mkdir(parents=True, exist_ok=True)
        env = isolated_jupyter_env(self.state_dir)
        env.update(self.extra_env)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command(), cwd=self.root_dir, env=env,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_until_serving(self.url, self.token, self.proc, self.log_path)
        except BaseException:
            stop_process_group(self.proc)
            raise
        return self

    def __exit__(self, *exc):
        stop_process_group(self.proc)

    def api(self, method, path):
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as reply:
            body = reply.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self):
        """Stop every kernel (one notebook's kernel need not sit in memory during the next)."""
        for kernel in self.api("GET", "/api/kernels"):
            with contextlib.suppress(urllib.error.HTTPError):
                self.api("DELETE", f"/api/kernels/{kernel['id']}")


@contextlib.contextmanager
def chromium_browser():
    """Headless Debian Chromium driven by Playwright (closed on exit).

    Playwright's sync API allows one of these at a time per thread: share it, and open a
    page per use with new_page().
    """
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    if chromium is None:
        raise RuntimeError(INSTALL_HINT)
    args = ["--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to start as root otherwise
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=args)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser, width=1400, height=900):
    """A page in a fresh context (no cookies or storage shared with other pages)."""
    context = browser.new_context(viewport={"width": width, "height": height})
    return context.new_page()


def open_in_lab(page, server, url_path, timeout_ms=120_000):
    """Go to url_path (e.g. "/lab/tree/X.ipynb") with the token; wait for a notebook panel."""
    sep = "&" if "?" in url_path else "?"
    page.goto(f"{server.url}{url_path}{sep}token={server.token}", timeout=timeout_ms)
    page.wait_for_selector(VISIBLE_PANEL, timeout=timeout_ms)


def main_area_tabs(page):
    """Labels of the tabs in the main dock area (a notebook's label is its file name)."""
    return page.eval_on_selector_all(
        ".lm-DockPanel-tabBar .lm-TabBar-tab .lm-TabBar-tabLabel",
        "els => els.map(e => e.textContent.trim())")


# One poll of the visible notebook: every cell's kind and prompt, and for the executing
# cell (the first one showing [*]) its index and output text.
_POLL_JS = """
panel => {
  const cells = [...panel.querySelectorAll('.jp-Notebook .jp-Cell')];
  const state = cells.map(c => ({
    code: c.classList.contains('jp-CodeCell'),
    prompt: c.classList.contains('jp-CodeCell')
      ? ((c.querySelector('.jp-InputArea-prompt') || {}).textContent || '').trim() : '',
  }));
  const running = state.findIndex(s => s.code && s.prompt.includes('*'));
  let output = '';
  if (running >= 0) {
    const area = cells[running].querySelector('.jp-OutputArea');
    output = area ? area.innerText : '';
  }
  const indicator = panel.querySelector('.jp-Notebook-ExecutionIndicator');
  return {cells: state, running, output: output.slice(-4000),
          status: indicator ? indicator.getAttribute('data-status') : null};
}
"""

# Rendered markdown: every markdown cell rendered, its text outside typeset math and code,
# MathJax's containers and error boxes counted.
_MATH_JS = """
panel => {
  const all = [...panel.querySelectorAll('.jp-Notebook .jp-Cell')];
  const md = all.filter(c => c.classList.contains('jp-MarkdownCell'));
  const texts = all.map(c => {  // by notebook cell index; null for code cells
    if (!c.classList.contains('jp-MarkdownCell')) return null;
    const out = c.querySelector('.jp-MarkdownOutput');
    if (!out) return null;
    const copy = out.cloneNode(true);
    copy.querySelectorAll('mjx-container, code, pre, script').forEach(e => e.remove());
    return copy.textContent;
  });
  return {
    cells: md.length,
    rendered: md.filter(c => c.classList.contains('jp-mod-rendered')).length,
    texts,
    math: panel.querySelectorAll('.jp-MarkdownOutput mjx-container').length,
    errors: [
      ...[...panel.querySelectorAll('mjx-container mjx-merror')]
        .map(e => (e.getAttribute('data-mjx-error') || 'error') + ': ' + e.textContent),
      ...[...panel.querySelectorAll('mjx-assistive-mml mtext[mathcolor="red"]')]
        .map(e => 'undefined: ' + e.textContent),
    ].slice(0, 10),
  };
}
"""

# Per cell: images shown in its output area (and whether each finished loading), and
# outputs that read like a traceback.
_OUTPUTS_JS = """
panel => [...panel.querySelectorAll('.jp-Notebook .jp-Cell')].map(c => {
  const imgs = [...c.querySelectorAll('.jp-OutputArea-output img')];
  const outs = [...c.querySelectorAll('.jp-OutputArea-output')];
  return {
    images: imgs.length,
    images_loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
    stderr: outs.filter(o => o.getAttribute('data-mime-type') === 'application/vnd.jupyter.stderr')
                .map(o => o.innerText.slice(0, 2000)),
  };
})
"""


@dataclasses.dataclass
class CellRun:
    """What was seen of one code cell while "run all" executed it."""
    index: int
    first_seen: float = None        # monotonic seconds
    last_seen: float = None
    progress_texts: list = dataclasses.field(default_factory=list)  # distinct, in order
    screenshot: str = None

    @property
    def seconds(self):
        return 0.0 if self.first_seen is None else self.last_seen - self.first_seen


@dataclasses.dataclass
class NotebookWalk:
    """The result of run_notebook_in_lab."""
    name: str
    seconds: float                  # from the restart to the last cell done
    cells: list                     # CellRun of every code cell seen executing
    saved: object                   # the notebook as saved by JupyterLab after the run
    markdown_cells: int
    markdown_rendered: int
    math_typeset: int
    math_errors: list
    raw_tex: list                   # (cell index, snippet of the rendered text)
    dom_cells: list                 # _OUTPUTS_JS per cell
    error_outputs: list             # (cell index, ename or first line) of unexpected errors
    screenshots: list

    @property
    def longest(self):
        return max(self.cells, key=lambda c: c.seconds) if self.cells else None


def _visible_panel(page):
    return page.locator(VISIBLE_PANEL)


def _wait_kernel_idle(page, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = _visible_panel(page).evaluate(_POLL_JS)["status"]
        if status == "idle":
            return
        time.sleep(0.5)
    raise TimeoutError(f"the kernel did not become idle within {timeout_s:.0f} s")


def _wait_math_settled(page, timeout_s=90):
    """Markdown rendered and MathJax done: the counts stop changing for 2 s."""
    deadline = time.monotonic() + timeout_s
    last, stable_since = None, time.monotonic()
    while time.monotonic() < deadline:
        info = _visible_panel(page).evaluate(_MATH_JS)
        key = (info["rendered"], info["math"])
        if key != last:
            last, stable_since = key, time.monotonic()
        elif info["rendered"] == info["cells"] and time.monotonic() - stable_since >= 2:
            return info
        time.sleep(0.5)
    return info


def _screenshot_pages(page, out_dir, stem, max_pages=120):
    """Scroll the visible notebook from top to bottom, one screenshot per screenful."""
    paths = []
    scroller = ("p => p.querySelector('.jp-WindowedPanel-outer') || "
                "p.querySelector('.jp-Notebook')")
    panel = _visible_panel(page)
    height = panel.evaluate(f"p => ({scroller})(p).clientHeight")
    total = panel.evaluate(f"p => ({scroller})(p).scrollHeight")
    step = max(200, int(height * 0.9))
    for k, top in enumerate(range(0, max(total, 1), step)):
        if k >= max_pages:
            break
        panel.evaluate(f"(p, top) => {{ ({scroller})(p).scrollTop = top; }}", top)
        time.sleep(0.15)
        path = Path(out_dir) / f"{stem}-page{k + 1:03d}.png"
        page.screenshot(path=str(path))
        paths.append(str(path))
    panel.evaluate(f"p => {{ ({scroller})(p).scrollTop = 0; }}")
    return paths


def _errors_in_saved(nb):
    """(cell index, 'Ename: value') of error outputs, except cells tagged raises-exception."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or "raises-exception" in cell.metadata.get("tags", []):
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found.append((i, f"{out.get('ename')}: {out.get('evalue')}"[:300]))
    return found


def run_notebook_in_lab(page, server, name, out_dir, run_timeout_s=1800, poll_s=0.5):
    """Open notebook `name` (relative to the server's root) in its own workspace, check its
    rendered markdown, "Restart Kernel and Run All Cells", watch every cell while it runs
    (output text of the executing one, screenshots when progress first shows), save it
    and collect what the page shows afterwards. Returns a NotebookWalk.

    run_timeout_s only guards against a hang; nothing about speed is asserted here.
    """
    import nbformat

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(name).stem
    screenshots = []
    # A workspace of its own: nothing restored from an earlier notebook's session.
    open_in_lab(page, server, f"/lab/workspaces/walk-{stem.lower()}/tree/{name}")
    _wait_kernel_idle(page, 180)

    math = _wait_math_settled(page)
    raw_tex = []
    for k, text in enumerate(math["texts"]):
        for m in RAW_TEX_RE.finditer(text or ""):
            raw_tex.append((k, text[max(0, m.start() - 40):m.end() + 40].replace("\n", " ")))
    shot = out_dir / f"{stem}-opened.png"
    page.screenshot(path=str(shot))
    screenshots.append(str(shot))

    # "Restart Kernel and Run All Cells" from the notebook's toolbar, then confirm.
    panel = _visible_panel(page)
    panel.locator('.jp-Toolbar [data-command="notebook:restart-run-all"]').first.click()
    page.locator(".jp-Dialog .jp-mod-accept").click()
    start = time.monotonic()

    runs = {}
    started = False
    quiet_polls = 0
    while True:
        now = time.monotonic()
        if now - start > run_timeout_s:
            raise TimeoutError(f"{name}: run all did not finish within {run_timeout_s} s")
        state = panel.evaluate(_POLL_JS)
        i = state["running"]
        if i >= 0:
            started, quiet_polls = True, 0
            run = runs.setdefault(i, CellRun(index=i))
            run.first_seen = now if run.first_seen is None else run.first_seen
            run.last_seen = now
            bars = PROGRESS_RE.findall(state["output"])
            if bars:
                text = bars[-1]  # the newest bar in the output area
                if not run.progress_texts or run.progress_texts[-1] != text:
                    run.progress_texts.append(text)
                if run.screenshot is None:
                    path = out_dir / f"{stem}-cell{i:03d}-progress.png"
                    cell = panel.locator(".jp-Notebook .jp-Cell").nth(i)
                    with contextlib.suppress(Exception):  # the cell may finish meanwhile
                        cell.scroll_into_view_if_needed(timeout=2000)
                        page.screenshot(path=str(path))
                        run.screenshot = str(path)
                        screenshots.append(str(path))
        elif started or now - start > 60:
            # Done when no cell has shown [*] for 3 polls in a row and the kernel is idle
            # (a run that never shows [*] within 60 s is treated the same way).
            quiet_polls += 1
            if quiet_polls >= 3 and state["status"] == "idle":
                break
        time.sleep(poll_s)
    seconds = time.monotonic() - start

    # Save through the UI and read what JupyterLab wrote (outputs as the kernel sent them).
    saved_path = server.root_dir / name
    before = saved_path.stat().st_mtime_ns
    panel.locator('.jp-Toolbar [data-command="docmanager:save"]').first.click()
    deadline = time.monotonic() + 60
    while saved_path.stat().st_mtime_ns == before:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: saving from JupyterLab did not change the file in 60 s")
        time.sleep(0.2)
    time.sleep(0.5)  # the write may still be in progress when the mtime first moves
    saved = nbformat.read(saved_path, as_version=4)

    dom_cells = panel.evaluate(_OUTPUTS_JS)
    errors = _errors_in_saved(saved)
    for k, cell in enumerate(dom_cells):
        tagged = (k < len(saved.cells)
                  and "raises-exception" in saved.cells[k].metadata.get("tags", []))
        for text in cell["stderr"]:
            if not tagged and TRACEBACK_RE.search(text) and not any(e[0] == k for e in errors):
                errors.append((k, text.strip().splitlines()[0][:300]))
    for k, _ in errors[:5]:
        path = out_dir / f"{stem}-cell{k:03d}-error.png"
        with contextlib.suppress(Exception):
            panel.locator(".jp-Notebook .jp-Cell").nth(k).screenshot(path=str(path))
            screenshots.append(str(path))
    screenshots += _screenshot_pages(page, out_dir, stem)

    return NotebookWalk(
        name=name, seconds=seconds, cells=sorted(runs.values(), key=lambda r: r.index),
        saved=saved, markdown_cells=math["cells"], markdown_rendered=math["rendered"],
        math_typeset=math["math"], math_errors=math["errors"], raw_tex=raw_tex,
        dom_cells=dom_cells, error_outputs=errors, screenshots=screenshots)


def walk_summary(walk):
    """A JSON-able summary of a walk (kept next to the screenshots)."""
    return {
        "notebook": walk.name,
        "run_all_seconds": round(walk.seconds, 1),
        "errors": walk.error_outputs,
        "math_typeset": walk.math_typeset,
        "math_errors": walk.math_errors,
        "raw_tex": walk.raw_tex[:20],
        "images_shown": sum(c["images"] for c in walk.dom_cells),
        # stderr that is neither a progress bar nor an error (warnings, for a reader to judge)
        "other_stderr": [(k, text[:300]) for k, c in enumerate(walk.dom_cells)
                         for text in c["stderr"]
                         if not PROGRESS_RE.search(text) and not TRACEBACK_RE.search(text)],
        "cells": [{"index": c.index, "seconds": round(c.seconds, 1),
                   "progress_states_seen": len(c.progress_texts),
                   "last_progress": c.progress_texts[-1] if c.progress_texts else None}
                  for c in walk.cells],
    }
