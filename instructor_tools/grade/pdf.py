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
   student_tools/notebook_pdf.py, all read-only):
   a. ``python notebook_pdf.py pages`` (the packer's sanitizer: bleach through nbconvert's
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
   c. ``python notebook_pdf.py merge`` joins the pages with pypdf (one bookmark a notebook).
   The grader parses none of it: it copies the merged file (opened O_NOFOLLOW|O_NONBLOCK, a
   regular file of at most MAX_PDF_BYTES that starts with %PDF-) to OUT/notebooks/.
3. Without Chromium or MathJax, or when printing fails, the sanitized HTML of both notebooks
   is written instead, OUT/notebooks/<submission>.html (MathJax's configuration beside it as
   OUT/notebooks/mathjax-config.js), and the result says why.

``result["pdf"]``: ``kind`` ("pdf", "html" or "none"), ``path`` (relative to OUT), ``why``
(empty for a PDF of every notebook), ``outputs_reproduce`` (the verdict, next to the PDF for
the TAs), ``notebooks`` ({name: sha256} of what was printed), ``sha256`` (the zip's), ``pages``,
``chromium_sandbox``, ``isolation`` and ``seconds``. Chromium and MathJax are found as the
packer finds them (student_tools.notebook_pdf.pdf_tools): CS231N_BROWSER / CS231N_MATHJAX,
else the usual places. ``--no-pdf`` (Options.pdf False) skips all of this.
"""
import hashlib
import os
import shutil
import stat
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from instructor_tools.grade import bounded, unpack
from instructor_tools.grade.isolation import Budget, SubmissionBox
from instructor_tools.grade.sandbox import Limits, Mount, describe
from student_tools import notebook_pdf
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
EXTRA_FLAGS = ("--disable-dev-shm-usage",)  # bubblewrap's /dev/shm is not writable
SANDBOX_KEPT = "kept: Chromium's own sandbox (a user namespace) inside the box"
SANDBOX_OFF = ("--no-sandbox: Chromium could not start its own sandbox here; the box's "
               "namespaces (no network, no host files) and its unprivileged uid stand in")


def find_tools(environ=None):
    """(browser, MathJax.js, why not): as the packer finds them (CS231N_BROWSER and
    CS231N_MATHJAX, else the usual places); why is "" when both were found."""
    environ = os.environ if environ is None else environ
    found, problems, missing = notebook_pdf.find_pdf_tools(), [], []
    tools = []
    for variable, check, what, default in (
            (notebook_pdf.BROWSER_ENV, notebook_pdf.check_browser_path, "no Chromium browser",
             found[0]),
            (notebook_pdf.MATHJAX_ENV, notebook_pdf.check_mathjax_path, "no MathJax 2.7",
             found[1])):
        tool = default
        if environ.get(variable):
            try:
                tool = check(environ[variable], variable)
            except ValueError as exc:  # a variable naming a wrong path: that tool is missing
                tool = None
                problems.append(str(exc))
        elif tool is None:
            missing.append(what)
        tools.append(tool)
    if missing:
        problems.append(f"{' and '.join(missing)} found on the grading machine (install "
                        f"with `{notebook_pdf.INSTALL_HINT}`, or set "
                        f"{notebook_pdf.BROWSER_ENV} / {notebook_pdf.MATHJAX_ENV})")
    return tools[0], tools[1], "; ".join(problems)


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
    shutil.copyfile(notebook_pdf.__file__, tool / "notebook_pdf.py")
    (tool / "notebook_pdf.py").chmod(0o644)
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
    script = f"{inside['/tool']}/notebook_pdf.py"
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
        page = bounded.read_regular(box.scratch / notebook_pdf.ALL_PAGES, MAX_HTML_BYTES)
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
            argv = [browser, *notebook_pdf.BROWSER_FLAGS, *EXTRA_FLAGS, *flags,
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
    run = box.run([opts.python, "-I", script, "merge", f"{tmp}/{notebook_pdf.NOTEBOOKS_PDF}",
                   *pairs], mounts, cwd="/tmp" if box.kind == "bwrap" else tmp, env=env,
                  limits=limits)
    try:
        data = bounded.read_regular(box.scratch / notebook_pdf.NOTEBOOKS_PDF, MAX_PDF_BYTES)
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
        _write_atomic(folder / notebook_pdf.MATHJAX_CONFIG_FILE,
                      notebook_pdf.MATHJAX_CONFIG_JS.encode("utf-8"))
    _write_atomic(folder / f"{name}.{kind}", data)
    (folder / f"{name}.{other}").unlink(missing_ok=True)
    info["kind"], info["path"] = kind, f"{FOLDER}/{name}.{kind}"


def _write_atomic(path, data):
    write_atomic(path, data)


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
