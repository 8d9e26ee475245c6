"""OUT/notebooks/<submission>.pdf: the notebooks a submission was graded on, printed by the
grader from the SUBMITTED notebooks, with the outputs the student saved.

``grade.grade_one`` calls ``attach`` once the result and the feedback are written (and on a
cached result whose PDF is missing). For one submission:

1. The zip is unpacked again (``unpack.unpack``: the same caps and refusals); only the two
   notebooks are used, each read as a regular file under the unpack caps and hashed.
2. Everything that touches their content runs in a box of its own
   (``isolation.SubmissionBox``: a fresh uid never used before, a cgroup budget of at most
   4 GiB and never more than the submission's, a tmpfs as /tmp and a deadline of
   PDF_SECONDS; with bubblewrap also no network, and of the host only
   /usr, the Python environment, the fonts' and Chromium's configuration, the notebooks and
   grade/pdf_page.py, all read-only):
   a. ``python pdf_page.py pages`` (the sanitizer: bleach through nbconvert's
      ``sanitize_html``, a pass over the whole page, a Content-Security-Policy; the only
      scripts are MathJax and its configuration, from local files) writes one page per
      notebook, with a banner naming the submission, the notebook's sha256 and the verdict
      "outputs reproduce", and one page of both notebooks (the HTML fallback). The grader
      reads that page at once, before any browser runs in the box.
   b. Headless Chromium prints each page (``--print-to-pdf``), not as root, with no network,
      its profile and $HOME in the box's /tmp, at most PAGE_SECONDS a page. It keeps its own
      sandbox (a user namespace) where it can start one there; where it cannot, it runs with
      ``--no-sandbox`` only inside bubblewrap or ``unshare -n`` as the box's own uid, whose
      namespaces stand in for it (``result["pdf"]["chromium_sandbox"]`` says which).
   c. ``python pdf_page.py merge`` joins the pages with pypdf (one bookmark a notebook).
   The grader parses none of it: it copies the merged file (opened O_NOFOLLOW|O_NONBLOCK, a
   regular file of at most MAX_PDF_BYTES that starts with %PDF-) to OUT/notebooks/.
3. Without Chromium or MathJax, or when printing fails, the sanitized HTML of both notebooks
   is written instead, OUT/notebooks/<submission>.html (MathJax's configuration beside it as
   OUT/notebooks/mathjax-config.js), and the result says why.

``result["pdf"]``: ``kind`` ("pdf", "html" or "none"), ``path`` (relative to OUT), ``why``
(empty for a PDF of every notebook), ``outputs_reproduce`` (the verdict, next to the PDF for
the TAs), ``notebooks`` ({name: sha256} of what was printed), ``sha256`` (the zip's), ``pages``,
``chromium_sandbox``, ``isolation`` and ``seconds``. Chromium and MathJax: ``find_tools``.
``--no-pdf`` (Options.pdf False) skips all of this.
"""
import hashlib
import importlib.util
import os
import shutil
import stat
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from instructor_tools.grade import bounded, pdf_page, unpack
from instructor_tools.grade.isolation import Budget, SubmissionBox
from instructor_tools.grade.sandbox import Limits, Mount, describe
from student_tools.atomic import write_atomic

FOLDER = "notebooks"  # OUT/notebooks/
PDF_SECONDS = 240.0  # everything of one submission's PDF (the box's deadline)
PAGE_SECONDS = 90.0  # one notebook in Chromium (nbconvert of both: the same)
MAX_PDF_BYTES = 64 * 2**20
MAX_HTML_BYTES = 64 * 2**20
# Chromium reserves far more address space than it uses (V8's cage, PartitionAlloc): an
# RLIMIT_AS of a few GiB kills it at start. Its memory is bounded by the box's cgroup.
CHROMIUM_ADDRESS_SPACE = 2**44
BUDGET = Budget(memory_bytes=4 * 2**30, processes=256, disk_bytes=512 * 2**20, files=20_000,
                deadline_seconds=PDF_SECONDS)
# Read-only host folders Chromium needs inside bubblewrap (where they exist): the fonts'
# configuration, and Debian's launcher script's settings.
ETC_MOUNTS = ("/etc/fonts", "/etc/chromium.d", "/etc/chromium")
# The tools, named by these variables or found where they are usually installed: any
# Chromium (Chromium, Google Chrome, Microsoft Edge) on PATH under BROWSER_NAMES; MathJax 2.7
# (not 3: it has no MathJax.js), read from files, never from the web: Debian's libjs-mathjax
# (Fedora's mathjax too), Arch's mathjax2, or the PyPI package jupyter-server-mathjax.
BROWSER_ENV = "CS231N_BROWSER"
MATHJAX_ENV = "CS231N_MATHJAX"
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
                 "chrome", "microsoft-edge", "microsoft-edge-stable", "msedge")
MATHJAX_SYSTEM_PATHS = tuple(Path(f"/usr/share/{folder}/MathJax.js")
                             for folder in ("javascript/mathjax", "mathjax2", "mathjax"))
MATHJAX_PIP_PACKAGE = "jupyter_server_mathjax"
INSTALL_HINT = "sudo apt-get install chromium libjs-mathjax"
# Headless print with no first-run or network chatter, and time for MathJax to typeset
# before the page is printed. Deliberately absent: --allow-file-access-from-files and
# --disable-web-security; --no-sandbox only where _print_pages says.
BROWSER_FLAGS = (
    "--headless", "--disable-gpu", "--no-pdf-header-footer",
    "--virtual-time-budget=10000", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-extensions", "--block-new-web-contents",
    "--disable-dev-shm-usage",  # bubblewrap's /dev/shm is not writable
)
SANDBOX_KEPT = "kept: Chromium's own sandbox (a user namespace) inside the box"
SANDBOX_OFF = ("--no-sandbox: Chromium could not start its own sandbox here; the box's "
               "namespaces (no network, no host files) and its unprivileged uid stand in")


def find_tools(environ=None):
    """(browser, MathJax.js, why not); why is "" when both were found. Each is the path that
    BROWSER_ENV / MATHJAX_ENV names where set (a wrong path: that tool is missing, and why
    says what was expected), else Chromium on PATH (BROWSER_NAMES) and MathJax 2.7 in the
    usual places (MATHJAX_SYSTEM_PATHS, then the pip package)."""
    environ = os.environ if environ is None else environ
    tools, problems, missing = [], [], []
    for variable, check, usual, what in (
            (BROWSER_ENV, check_browser_path, _usual_browser, "no Chromium browser"),
            (MATHJAX_ENV, check_mathjax_path, _usual_mathjax, "no MathJax 2.7")):
        tool = None
        if environ.get(variable):
            try:
                tool = check(environ[variable], variable)
            except ValueError as exc:
                problems.append(str(exc))
        else:
            tool = usual()
            if tool is None:
                missing.append(what)
        tools.append(tool)
    if missing:
        problems.append(f"{' and '.join(missing)} found on the grading machine (install "
                        f"with `{INSTALL_HINT}`, or set {BROWSER_ENV} / {MATHJAX_ENV})")
    return tools[0], tools[1], "; ".join(problems)


def _usual_browser():
    return next(filter(None, map(shutil.which, BROWSER_NAMES)), None)


def _usual_mathjax():
    candidates = [*MATHJAX_SYSTEM_PATHS, _pip_mathjax()]
    return next((p for p in candidates if p is not None and pdf_page.mathjax_config(p)), None)


def _pip_mathjax():
    """MathJax.js of the pip package jupyter-server-mathjax, if installed (not imported)."""
    try:
        spec = importlib.util.find_spec(MATHJAX_PIP_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "static" / "MathJax.js"


def _bad_path(variable, value, expected, why):
    return ValueError(f"{variable} {value!r}: expected {expected}, but {why}")


def check_browser_path(value, variable=BROWSER_ENV):
    """The browser executable that value names (a path, or a command name on PATH), as a
    string; ValueError naming variable if it is not one."""
    expected = "the path of a Chrome, Chromium or Edge executable"
    path = Path(value).expanduser()
    if not path.exists():
        found = shutil.which(str(value)) if os.sep not in str(value) else None
        if found:
            return found
        raise _bad_path(variable, str(value), expected, "there is no such file")
    if path.is_dir():
        raise _bad_path(variable, str(value), expected, "it is a folder")
    if not os.access(path, os.X_OK):
        raise _bad_path(variable, str(value), expected, "it is not executable")
    return str(path.resolve())


def check_mathjax_path(value, variable=MATHJAX_ENV):
    """The MathJax.js that value names (the file or the folder holding it), as a Path;
    ValueError naming variable if it is not MathJax 2.7 with a usable configuration."""
    expected = "MathJax 2.7's MathJax.js, or the folder holding it and its config/ folder"
    path = Path(value).expanduser()
    if path.is_dir():
        if not (path / "MathJax.js").is_file():
            raise _bad_path(variable, str(value), expected,
                            "that folder has no MathJax.js (MathJax 3 has none: it must be "
                            "MathJax 2.7)")
        path = path / "MathJax.js"
    if not path.exists():
        raise _bad_path(variable, str(value), expected, "there is no such file")
    if path.name != "MathJax.js" or not path.is_file():
        raise _bad_path(variable, str(value), expected, f"it is {path.name!r}")
    if pdf_page.mathjax_config(path) is None:
        wanted = " nor ".join(f"config/{name}.js" for name in pdf_page.MATHJAX_CONFIGS)
        raise _bad_path(variable, str(value), expected, f"its folder has neither {wanted}")
    return path.resolve()


def attach(result, zip_path, opts, results_path):
    """Make the submission's PDF (or HTML) when opts.pdf asks for it and it is not there
    yet; record it as result["pdf"] and write the result JSON again. Returns result."""
    if not getattr(opts, "pdf", False):
        return result
    known = result.get("pdf") or {}
    if known.get("kind") == "pdf" and known.get("sha256") == result.get("sha256") and \
            (Path(opts.out) / known.get("path", "")).is_file():
        return result
    result["pdf"] = make(zip_path, result, opts)
    from instructor_tools.grade.grade import write_json_atomic  # grade imports this module

    write_json_atomic(Path(results_path), {k: v for k, v in result.items() if k != "cached"})
    return result


def make(zip_path, result, opts, tools=None):
    """The PDF of one graded submission: result["pdf"] as documented above. Never raises
    for what the submission holds: a failure is the record's ``why``."""
    start = time.monotonic()
    name = result["submission"]
    info = {"kind": "none", "path": "", "why": "", "pages": 0, "notebooks": {},
            "outputs_reproduce": result.get("outputs_reproduce", ""),
            "sha256": result.get("sha256", ""), "chromium_sandbox": "", "isolation": []}
    work = Path(tempfile.mkdtemp(prefix=f"pdf-{name}-", dir=opts.workdir))
    try:
        _make_into(info, work, Path(zip_path), result, opts,
                   find_tools() if tools is None else tools)
    except Exception as exc:  # the grade stands; the record says what went wrong
        info["why"] = f"the grader failed while printing: {type(exc).__name__}: {exc}"[:500]
    finally:
        if not getattr(opts, "keep_work", False):
            shutil.rmtree(work, ignore_errors=True)
    info["seconds"] = round(time.monotonic() - start, 2)
    return info


def _banner(name, result, digest):
    return "\n".join([
        f"{name} of submission {result['submission']}, printed by the grader from the "
        f"notebook in the zip, with the outputs the student saved.",
        f"Notebook sha256 {digest}; zip sha256 {result.get('sha256', '')}.",
        f"Outputs reproduce: {result.get('outputs_reproduce', 'not checked')}.",
    ])


def _make_into(info, work, zip_path, result, opts, tools):
    browser, mathjax, why_no_tools = tools
    work.chmod(0o755)  # the box's uid reads in/ and tool/ (host paths outside bubblewrap)
    unpacked = unpack.unpack(zip_path, work / "student")
    if unpacked.status != "ok":
        info["why"] = f"nothing to print: the zip was refused ({unpacked.status})"
        return
    inbox, tool = work / "in", work / "tool"
    inbox.mkdir(mode=0o755)
    tool.mkdir(mode=0o755)
    names = []
    for nb_name in unpack.NOTEBOOKS:
        if nb_name not in unpacked.files:
            continue
        data = bounded.read_regular(work / "student" / nb_name, unpack.MAX_FILE_BYTES)
        (inbox / nb_name).write_bytes(data)
        (inbox / nb_name).chmod(0o644)
        info["notebooks"][nb_name] = hashlib.sha256(data).hexdigest()
        names.append(nb_name)
    if not names:
        info["why"] = "nothing to print: no notebook in the zip"
        return
    shutil.copyfile(pdf_page.__file__, tool / "pdf_page.py")
    (tool / "pdf_page.py").chmod(0o644)
    mounts = [Mount(inbox, "/in"), Mount(tool, "/tool")]
    if opts.sandbox.kind == "bwrap":
        mounts += [Mount(Path(p), p) for p in ETC_MOUNTS if Path(p).is_dir()]
        for path in (browser, mathjax):
            if path is not None:  # where it lives (bwrap skips what is under /usr)
                folder = Path(os.path.realpath(path)).parent
                mounts.append(Mount(folder, str(folder)))
    # Never more than the submission's own budget (--submission-memory).
    budget = replace(BUDGET, memory_bytes=min(BUDGET.memory_bytes, opts.budget.memory_bytes))
    with SubmissionBox(opts.sandbox.kind, budget, work, uids=opts.uids) as box:
        info["isolation"] = [describe(opts.sandbox.kind), *box.report]
        _print_in_box(info, box, mounts, names, result, opts, browser, mathjax, why_no_tools)


def _print_in_box(info, box, mounts, names, result, opts, browser, mathjax, why_no_tools):
    inside = {m.inside: box.path(m) for m in mounts}
    tmp = "/tmp" if box.kind == "bwrap" else str(box.scratch)
    home = box.scratch / "home"
    home.mkdir()
    if box.uid is not None:
        os.chown(home, box.uid, box.uid)
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TMPDIR": "/tmp", "HOME": "/tmp/home",
           "XDG_CONFIG_HOME": "/tmp/home/.config", "XDG_CACHE_HOME": "/tmp/home/.cache",
           "JUPYTER_CONFIG_DIR": "/tmp/home/.jupyter", "JUPYTER_DATA_DIR": "/tmp/home/.jdata",
           "JUPYTER_RUNTIME_DIR": "/tmp/home/.jrun", "PYTHONDONTWRITEBYTECODE": "1"}
    env = env if box.kind == "bwrap" else box.host_env(env)
    script = f"{inside['/tool']}/pdf_page.py"
    banners = [a for nb in names for a in
               ("--banner", _banner(nb, result, info["notebooks"][nb]))]
    python_limits = Limits(cpu_seconds=int(PAGE_SECONDS), wall_seconds=PAGE_SECONDS,
                           memory_bytes=3 * 2**30, processes=64,
                           file_bytes=max(MAX_PDF_BYTES, MAX_HTML_BYTES))
    run = box.run([opts.python, "-I", script, "pages", tmp,
                   *[f"{inside['/in']}/{nb}" for nb in names],
                   *(["--mathjax", str(mathjax)] if mathjax is not None else []), *banners],
                  mounts, cwd="/tmp" if box.kind == "bwrap" else tmp, env=env,
                  limits=python_limits)
    left_out = [line[:200] for line in run.stdout.splitlines()
                if line.startswith(tuple(f"{nb}: " for nb in names))][:len(names)]
    try:  # read now: nothing that runs later in the box can change what the TAs open
        page = bounded.read_regular(box.scratch / pdf_page.ALL_PAGES, MAX_HTML_BYTES)
    except bounded.Unreadable:
        info["why"] = ("no notebook could be converted to HTML: "
                       + ("; ".join(left_out) or _tail(run)))[:600]
        return
    printable = [nb for nb in names if not any(line.startswith(f"{nb}:") for line in left_out)]
    why = why_no_tools or _print_pages(info, box, mounts, printable, tmp, env, browser)
    if not why:
        why = _merge(info, box, mounts, printable, tmp, env, script, python_limits, opts,
                     result["submission"])
    if left_out:
        info["why"] = "not printed: " + "; ".join(left_out)
    if why:
        _publish(info, opts, result["submission"], "html", page)
        info["why"] = "; ".join(filter(None, [f"HTML instead of a PDF: {why}", info["why"]]))


def _tail(run):
    return (run.stderr.strip() or run.stdout.strip())[-300:] or f"exit {run.returncode}"


def _print_pages(info, box, mounts, printable, tmp, env, browser):
    """Chromium prints each page to /tmp/<stem>.pdf; "" or why it could not."""
    if box.uid is None and os.geteuid() == 0:
        return ("Chromium is never run as root, and this box could not give it an "
                "unprivileged uid (see isolation: a FALLBACK kind with an interpreter out of "
                "other uids' reach)")
    flags = []
    for nb in printable:
        stem = Path(nb).stem
        while True:
            argv = [browser, *BROWSER_FLAGS, *flags,
                    f"--user-data-dir={tmp}/profile-{stem}", f"--print-to-pdf={tmp}/{stem}.pdf",
                    Path(f"{tmp}/{stem}.html").as_uri()]
            run = box.run(argv, mounts, cwd="/tmp" if box.kind == "bwrap" else tmp, env=env,
                          limits=Limits(cpu_seconds=int(PAGE_SECONDS), wall_seconds=PAGE_SECONDS,
                                        memory_bytes=CHROMIUM_ADDRESS_SPACE, processes=256,
                                        file_bytes=MAX_PDF_BYTES))
            made = _is_file(box.scratch / f"{stem}.pdf")
            if run.returncode == 0 and made:
                info["chromium_sandbox"] = SANDBOX_OFF if flags else SANDBOX_KEPT
                break
            if not flags and "sandbox" in run.stderr.lower() and box.uid is not None and \
                    box.kind in ("bwrap", "unshare"):
                flags = ["--no-sandbox"]  # for this page and the next ones
                continue
            state = "timed out" if run.timed_out else \
                f"over the {run.budget_exceeded} budget" if run.budget_exceeded else \
                f"exit {run.returncode}"
            return f"Chromium could not print {nb} ({state}): {_tail(run)}"
    return ""


def _merge(info, box, mounts, printable, tmp, env, script, limits, opts, name):
    """pypdf joins the pages in the box; the grader copies the result. "" or why not."""
    pairs = [a for nb in printable for a in (nb, f"{tmp}/{Path(nb).stem}.pdf")]
    run = box.run([opts.python, "-I", script, "merge", f"{tmp}/{pdf_page.NOTEBOOKS_PDF}",
                   *pairs], mounts, cwd="/tmp" if box.kind == "bwrap" else tmp, env=env,
                  limits=limits)
    try:
        data = bounded.read_regular(box.scratch / pdf_page.NOTEBOOKS_PDF, MAX_PDF_BYTES)
    except bounded.Unreadable as exc:
        return f"the pages could not be merged ({exc}): {_tail(run)}"
    if not data.startswith(b"%PDF-"):
        return "the merged file is not a PDF"
    lines = run.stdout.strip().splitlines()
    info["pages"] = int(lines[-1]) if lines and lines[-1].isdigit() else 0
    _publish(info, opts, name, "pdf", data)
    return ""


def _is_file(path):
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size > 0


def _publish(info, opts, name, kind, data):
    """Write OUT/notebooks/<name>.<kind> atomically; remove the other kind's stale file."""
    folder = Path(opts.out) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    other = "html" if kind == "pdf" else "pdf"
    if kind == "html":
        write_atomic(folder / pdf_page.MATHJAX_CONFIG_FILE,
                     pdf_page.MATHJAX_CONFIG_JS.encode("utf-8"))
    write_atomic(folder / f"{name}.{kind}", data)
    (folder / f"{name}.{other}").unlink(missing_ok=True)
    info["kind"], info["path"] = kind, f"{FOLDER}/{name}.{kind}"



def summary(results):
    """One line for the end of a grading run ("" when no PDF was asked for)."""
    records = [r["pdf"] for r in results if r.get("pdf")]
    if not records:
        return ""
    kinds = Counter(r["kind"] for r in records)
    line = (f"Notebook PDFs ({FOLDER}/): {kinds['pdf']} printed"
            + (f"; {kinds['html']} as sanitized HTML only" if kinds["html"] else "")
            + (f"; {kinds['none']} with nothing to print" if kinds["none"] else ""))
    whys = Counter(r["why"].split(": ", 1)[-1][:160] for r in records if r["kind"] != "pdf")
    if whys:
        why, count = whys.most_common(1)[0]
        line += f" (e.g. {count}x: {why})"
    return line
