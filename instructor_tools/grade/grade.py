"""Grade one submission zip: unpack, build, run sandboxed, judge, report.

The flow of ``grade_one`` (every step turns a failure into a status, never an exception;
an error of the grader itself becomes the row's ``grader_error``):

1. sha256 of the zip; a result already in OUT/results/ for the same zip, rubric and
   options is reused (re-runs skip what is done).
2. ``unpack.unpack`` into a private folder (refusals: corrupt_zip, unsafe_zip, zip_bomb;
   a file of ``contract.REQUIRED`` missing: missing_files, exactly what the packer refuses).
3. ``build.build``: the course's package and notebooks with the student's answer regions
   spliced in, each region body checked against the allow-list first (a refused body is
   replaced by a ``raise`` and the row says ``forbidden_code``). Only this build enters the
   sandbox; whatever else the student changed is listed as not graded.
4. Static notebook checks on the submitted notebooks (``notebooks.check_notebook``), here,
   as data read with size and cell-count limits.
5. The worker (``worker.py``) runs in the submission's own box (``isolation``: a fresh uid,
   its own cgroup budget, scratch tmpfs and deadline) with inputs this process made
   (``hidden/tests.build_all``); it returns raw arrays through an unnamed file whose
   descriptor it inherits, read here with caps (``bounded``). This process judges them
   against the reference (``hidden/tests.judge``) and scores the rubric items.
6. Optionally the built notebooks are re-executed in the same box under nbval with the
   course's sanitizer and tags; junit XML (through another unnamed file) says which cells
   differ from the student's stored outputs.
7. OUT/results/<name>.json (written atomically) and OUT/feedback/<name>.html.
"""
import concurrent.futures
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from instructor_tools.grade import bounded, build, feedback, notebooks, unpack
from instructor_tools.grade import pdf as notebook_pdfs
from instructor_tools.grade.hidden import tests as hidden
from instructor_tools.grade.isolation import Budget, SubmissionBox
from instructor_tools.grade.sandbox import Limits, Mount, Sandbox, describe
from instructor_tools.grade.written import write_json_atomic  # pdf.py imports it from here

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parents[1]
RESULT_VERSION = 3  # 3: answers labelled by their heading (derivations too), texts kept
NOTEBOOK_NAMES = unpack.NOTEBOOKS
MAX_LOG_BYTES = 2 * 2**20
MAX_CHANNEL_BYTES = 256 * 2**20  # everything the worker returns for one submission

# The environment of every sandboxed command: the Makefile's, so notebook outputs match.
BASE_ENV = {
    "TMPDIR": "/tmp/scratch", "HOME": "/tmp/home", "MPLCONFIGDIR": "/tmp/mpl", "IPYTHONDIR": "/tmp/ipython",
    "JUPYTER_RUNTIME_DIR": "/tmp/jupyter-runtime", "JUPYTER_DATA_DIR": "/tmp/jupyter-data",
    "JUPYTER_CONFIG_DIR": "/tmp/jupyter-config", "XDG_CACHE_HOME": "/tmp/cache",
    "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline", "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
}

# Statuses, most severe first: the first that applies is the row's status.
STATUS_TEXT = {
    "grader_error": "the grader itself failed on this submission (see the detail): "
                    "grade it again or by hand",
    "corrupt_zip": "the file is not a readable zip",
    "unsafe_zip": "the zip has an unsafe member (absolute or '..' path, symlink, control "
                  "character): nothing was unpacked",
    "zip_bomb": "the zip unpacks past the size caps: nothing graded",
    "missing_files": "required files are missing",
    "forbidden_code": "an answer region uses code outside the allow-list: that region was "
                      "not run",
    "syntax_error": "an answer region does not parse: that region was not run",
    "import_error": "importing the package raised an exception",
    "timeout": "the code ran past its time limit or the submission's deadline",
    "memory_limit": "the code ran past its memory limit",
    "process_limit": "the code started too many processes",
    "output_limit": "the code wrote past the file size or disk limit (endless output?)",
    "crashed": "the sandboxed process died",
    "ok": "graded",
}
# A per-submission budget that ended a run (isolation.SubmissionBox) -> the row's status.
BUDGET_STATUS = {"memory": "memory_limit", "processes": "process_limit", "disk": "output_limit",
                 "files": "output_limit", "deadline": "timeout"}


@dataclass
class Options:
    out: Path
    rubric: object
    run_notebooks: bool = True
    sandbox: Sandbox = None  # its kind is used; each submission gets its own box and uid
    limits: Limits = field(default_factory=lambda: Limits(cpu_seconds=120, wall_seconds=180,
                                                          memory_bytes=3 * 2**30))
    notebook_limits: Limits = field(default_factory=lambda: Limits(
        cpu_seconds=900, wall_seconds=900, memory_bytes=4 * 2**30, processes=256))
    budget: Budget = field(default_factory=Budget)  # one submission, all its processes
    uids: object = None  # isolation.UidAllocator shared by a run (None: the default one)
    datasets: Path = PROJECT / "datasets" / "cifar-10-batches-py"
    course: Path = PROJECT  # the course's tree: cs231n/, tests/nbval_sanitize.cfg
    course_notebooks: Path = PROJECT
    workdir: Path | None = None
    keep_work: bool = False
    force: bool = False
    python: str = sys.executable  # the interpreter of this venv (bound read-only inside)
    op_seconds: float = 20  # per hidden test (an alarm inside the worker)
    import_seconds: float = 30  # importing the package
    pdf: bool = False  # OUT/notebooks/<name>.pdf (pdf.py); the CLI turns it on, --no-pdf off

    def fingerprint(self):
        """What a cached result must match to be reused: the rubric's code items (not its
        written questions: TA points never re-run code), options, grader code."""
        return {"rubric": self.rubric.code_digest or self.rubric.digest,
                "notebooks": self.run_notebooks,
                "version": RESULT_VERSION, "grader": grader_digest(self.course)}


def grader_digest(course=PROJECT):
    """sha256 of what decides verdicts: the grader's code, the hidden tests, the contract
    and the course's package (it is what runs around the student's regions)."""
    digest = hashlib.sha256()
    paths = [HERE / "worker.py", HERE / "nbval_guard.py", HERE / "build.py", HERE / "splice.py",
             HERE / "hidden" / "tests.py", HERE / "hidden" / "reference.py",
             PROJECT / "student_tools" / "contract.py", PROJECT / "student_tools" / "allowlist.py",
             Path(course) / "tests" / "nbval_sanitize.cfg"]
    paths += sorted((Path(course) / "cs231n").rglob("*.py"))
    for path in paths:
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def safe_name(zip_path):
    """The submission's name for files and rows: the zip's stem, safe characters only.

    A stem that had to change gets a short hash of the original, so that two zips never
    share a name ('a b.zip' and 'a_b.zip' stay apart).
    """
    stem = Path(zip_path).name
    stem = stem[:-4] if stem.lower().endswith(".zip") else stem
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", stem)[:100].lstrip(".") or "submission"
    if safe != stem:
        safe += "-" + hashlib.sha256(stem.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return safe


def sha256_file(path):
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def cached_result(path, sha, opts):
    """The result stored at path if it was graded from the same zip (sha) with the same
    fingerprint (rubric, options, grader), else None."""
    try:
        data = json.loads(bounded.read_regular(path, 64 * 2**20).decode("utf-8"))
    except (OSError, ValueError):
        return None
    fresh = data.get("sha256") == sha and data.get("fingerprint") == opts.fingerprint()
    return data if fresh else None


def _death(run):
    """How a sandboxed process ended, for the status detail."""
    if run.signal:
        try:
            name = signal.Signals(run.signal).name
        except ValueError:
            name = f"signal {run.signal}"
        why = {"SIGXFSZ": " (file size limit: endless output?)",
               "SIGSEGV": " (segmentation fault)", "SIGKILL": " (killed)"}.get(name, "")
        return f"ended by {name}{why}; {run.stderr.strip()[-200:]}"
    return f"exit {run.returncode}: {run.stderr.strip()[-300:]}"


def _classify_import(record):
    kind = str(record.get("error_type", ""))
    text = str(record.get("error", ""))
    if kind in ("SyntaxError", "IndentationError", "TabError"):
        return "syntax_error"
    if kind == "MemoryError" or "Unable to allocate" in text:
        return "memory_limit"
    if kind == "BlockingIOError" or record.get("errno") == 11 or \
            "Resource temporarily unavailable" in text:
        return "process_limit"
    if kind == "Timeout":
        return "timeout"
    if record.get("errno") == errno.EFBIG or "File too large" in text:
        return "output_limit"
    return "import_error"


def _mounts(work, datasets, build="sub"):
    """What a sandboxed command sees: a build (read-only) as /sub, the course's worker
    files (read-only), the inputs (read-only) and the data set. No writable host folder:
    the scratch /tmp is the submission's own tmpfs."""
    mounts = [Mount(work / build, "/sub"), Mount(work / "course", "/course"),
              Mount(work / "in", "/in")]
    if datasets is not None and Path(datasets).is_dir():
        mounts.append(Mount(Path(datasets), "/sub/datasets/cifar-10-batches-py"))
    return mounts


def _prepare_dirs(work, opts):
    """course/ (worker, public self-check, sanitizer) and in/, readable by the box's uid."""
    course = work / "course"
    course.mkdir()
    shutil.copy2(HERE / "worker.py", course / "worker.py")
    shutil.copy2(HERE / "nbval_guard.py", course / "nbval_guard.py")
    shutil.copy2(Path(opts.course) / "cs231n" / "check.py", course / "check.py")
    shutil.copy2(Path(opts.course) / "tests" / "nbval_sanitize.cfg",
                 course / "nbval_sanitize.cfg")
    (work / "in").mkdir()
    for sub in (work / "sub", work / "subnet"):
        # The dataset mount point inside the (read-only) build.
        (sub / "datasets" / "cifar-10-batches-py").mkdir(parents=True, exist_ok=True)
        for path in [sub, *sub.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        if opts.sandbox.kind != "bwrap":
            # The code sees host paths: link the data where the package looks for it.
            target = sub / "datasets" / "cifar-10-batches-py"
            target.rmdir()
            if opts.datasets and Path(opts.datasets).is_dir():
                target.symlink_to(Path(opts.datasets).resolve())
    for path in (work / "course", work / "in"):
        path.chmod(0o755)


def _env(box, extra=None):
    env = dict(BASE_ENV)
    if box.kind != "bwrap":
        env = box.host_env(env)
    env.update(extra or {})
    return env


def run_worker(work, box, opts, tests, build="sub", checks=()):
    """Run the named hidden tests' ops in the box on one build; return (records,
    {op: outputs}, run, arrays, problems)."""
    ops, arrays = hidden.build_all(tests)
    spec = {"ops": ops, "checks": list(checks), "seed": 0,
            "op_seconds": opts.op_seconds, "import_seconds": opts.import_seconds,
            "check_seconds": opts.op_seconds}
    (work / "in" / f"{build}.json").write_text(json.dumps(spec), encoding="utf-8")
    np.savez(work / "in" / f"{build}.npz", **arrays)
    for suffix in ("json", "npz"):
        (work / "in" / f"{build}.{suffix}").chmod(0o644)
    mounts = _mounts(work, opts.datasets, build)
    at = {m.inside: box.path(m) for m in mounts}
    env = _env(box, {"PATH": f"{Path(opts.python).parent}:/usr/bin:/bin"})
    with tempfile.TemporaryFile(dir=work) as channel:
        # An unnamed file: the worker writes through the descriptor it inherits; no path
        # to it exists inside the sandbox, and no folder there is writable.
        os.fchmod(channel.fileno(), 0o666)
        argv = [opts.python, "-I", "-B", f"{at['/course']}/worker.py",
                "--spec", f"{at['/in']}/{build}.json", "--arrays", f"{at['/in']}/{build}.npz",
                "--root", at["/sub"], "--channel", str(channel.fileno()),
                "--check", f"{at['/course']}/check.py"]
        run = box.run(argv, mounts, cwd=at["/sub"], env=env, limits=opts.limits,
                      pass_fds=(channel.fileno(),))
        data = bounded.read_channel_fd(channel.fileno(), MAX_CHANNEL_BYTES)
    decoded, problems = bounded.read_channel(data)
    records, outputs = [], {}
    for record, values in decoded:
        records.append(record)
        name = record.get("op")
        if isinstance(name, str) and record.get("ok") is True and name in hidden.TESTS:
            outputs[name] = values
    return records, outputs, run, arrays, problems


def judge_all(records, outputs, arrays, rubric):
    """{test name: (passed, message)} for every test of the rubric, decided here from the
    values the worker returned (outputs) and the inputs this process made (arrays)."""
    op_records = {r["op"]: r for r in records if isinstance(r.get("op"), str)}
    verdicts = {}
    for name in rubric.tests:
        record = op_records.get(name)
        if record is None:
            verdicts[name] = (False, "not run (the worker stopped before this test)")
        elif record.get("ok") is not True:
            verdicts[name] = (False, f"raised {str(record.get('error', ''))[:500]}")
        elif outputs.get(name) is None:
            verdicts[name] = (False, "its returned values could not be read")
        else:
            prefix = f"{name}/"
            inputs = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            verdicts[name] = hidden.judge(name, outputs[name], inputs)
    return verdicts


def score_items(verdicts, rubric, checks):
    """(items, score): each rubric item with its tests' verdicts and the self-check's hint
    (checks: {check name: {"passed", "hint"}}), and the sum of the points earned."""
    items, score = [], 0.0
    for item in rubric.items:
        passed = all(verdicts.get(t, (False, ""))[0] for t in item.tests)
        earned = item.points if passed else 0
        score += earned
        check = checks.get(item.check, {})
        items.append({
            "id": item.id, "title": item.title, "points": item.points, "earned": earned,
            "passed": passed,
            "tests": [{"name": t, "function": hidden.TESTS[t].function,
                       "description": hidden.TESTS[t].description,
                       "passed": verdicts.get(t, (False, ""))[0],
                       "message": verdicts.get(t, (False, "not run"))[1]} for t in item.tests],
            "check": item.check, "check_passed": check.get("passed"),
            "hint": check.get("hint", ""),
        })
    return items, score


def run_notebook(work, box, name, labels, opts):
    """Re-execute one built notebook under nbval in the box; a dict for the result.

    The notebook is the course's (its cells, tags and nbval markers; the student's tags
    never reach it) with the student's regions and stored outputs. nbval's junit report is
    written to a file descriptor the grader passes in (an unnamed file, never visible in
    the sandbox's file system); the pytest process is made non-dumpable (nbval_guard.py),
    so a kernel cannot rewrite the report.
    """
    mounts = _mounts(work, opts.datasets)
    at = {m.inside: box.path(m) for m in mounts}
    env = _env(box, {"PATH": f"{Path(opts.python).parent}:/usr/bin:/bin",
                     "PYTHONPATH": f"{at['/course']}:{at['/sub']}"})
    result = {"name": name, "seconds": 0.0, "cells_run": 0, "differ": []}
    wall = min(opts.notebook_limits.wall_seconds, max(box.remaining(), 1))
    with tempfile.TemporaryFile(dir=work) as junit:
        os.fchmod(junit.fileno(), 0o666)  # reopened through /proc/self/fd by the sandbox uid
        argv = [opts.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--noconftest",
                "-p", "nbval_guard", "--color=no", "--nbval", "--nbval-current-env",
                "--nbval-cell-timeout", str(int(wall)),
                f"--junitxml=/proc/self/fd/{junit.fileno()}", "-o", "junit_logging=no",
                "--rootdir", at["/sub"],
                "--nbval-sanitize-with", f"{at['/course']}/nbval_sanitize.cfg",
                f"{at['/sub']}/{name}"]
        run = box.run(argv, mounts, cwd=at["/sub"], env=env, limits=opts.notebook_limits,
                      pass_fds=(junit.fileno(),))
        xml = bounded.read_channel_fd(junit.fileno(), MAX_LOG_BYTES)
    result["seconds"] = round(run.seconds, 1)
    result["budget_exceeded"] = getattr(run, "budget_exceeded", None)
    if run.timed_out:
        result["status"] = f"timeout after {run.seconds:.0f} s"
    try:
        cells_run, differ = notebooks.parse_junit(xml, labels)
    except Exception as exc:  # missing, truncated or forged XML
        result.setdefault("status", f"no nbval report ({type(exc).__name__}); "
                                    f"{run.stderr.strip()[-300:] or run.stdout.strip()[-300:]}")
        return result
    result["cells_run"] = cells_run
    result["differ"] = differ
    result.setdefault("status", "reproduces" if not differ and cells_run else
                      ("differs" if differ else "no cells run"))
    return result


def _status_of_run(result, run, what, seconds):
    """The status a sandboxed run that did not finish gives the row."""
    if run.budget_exceeded == "deadline" or run.timed_out:
        _set_status(result, "timeout", f"{what}: killed at the submission's deadline "
                                       f"or after {seconds:g} s wall time")
    elif run.budget_exceeded:
        _set_status(result, BUDGET_STATUS[run.budget_exceeded],
                    f"{what}: the submission's {run.budget_exceeded} budget")
    elif run.cpu_limit:
        _set_status(result, "timeout", f"{what}: CPU time limit")
    elif run.signal == signal.SIGXFSZ:
        _set_status(result, "output_limit", f"{what}: {_death(run)}")
    elif run.signal == signal.SIGKILL:
        _set_status(result, "memory_limit", f"{what}: killed (out of memory?)")
    else:
        _set_status(result, "crashed", f"{what}: {_death(run)}")


def _read_worker_report(result, records, run, opts):
    """Self-check hints and the status from the worker's records and how its process
    ended; returns the import record (None if it never got there)."""
    imported = next((r for r in records if r.get("event") == "import"), None)
    done = any(r.get("event") == "done" for r in records)
    result["checks"].update({str(r["check"]): {"passed": bool(r.get("passed")),
                                               "hint": str(r.get("hint", ""))[:1000]}
                             for r in records if isinstance(r.get("check"), str)})
    if imported is not None and imported.get("ok") is not True:
        _set_status(result, _classify_import(imported), str(imported.get("error", ""))[:500])
    elif not done:
        _status_of_run(result, run, "hidden tests (tests not finished score 0)",
                       opts.limits.wall_seconds)
    op_errors = [r for r in records if isinstance(r.get("op"), str) and r.get("ok") is False]
    if any(r.get("errno") == errno.EFBIG for r in op_errors):
        _set_status(result, "output_limit", "a test wrote past the file size limit "
                                            "(endless output?)")
    for kind, status, detail in (("Timeout", "timeout", "a test ran past its time limit"),
                                 ("MemoryError", "memory_limit", "a test ran out of memory"),
                                 ("BlockingIOError", "process_limit",
                                  "a test hit the process limit")):
        if any(r.get("error_type") == kind for r in op_errors):
            _set_status(result, status, detail)
    return imported


def _reexecute_notebooks(result, work, box, built, opts):
    """Both built notebooks under nbval at once; sets each notebook's reexec and
    outputs_reproduce."""
    runnable = [n for n in NOTEBOOK_NAMES if built.notebooks.get(n) is True]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {n: pool.submit(run_notebook, work, box, n, built.labels[n], opts)
                   for n in runnable}
        for entry in result["notebooks"]:
            if entry["name"] in futures:
                entry["reexec"] = futures[entry["name"]].result()
    for entry in result["notebooks"]:
        rx = entry["reexec"]
        if rx is not None and rx["status"].startswith("timeout"):
            _set_status(result, "timeout", f"{entry['name']}: {rx['status']}")
        elif rx is not None and rx.get("budget_exceeded"):
            _set_status(result, BUDGET_STATUS[rx["budget_exceeded"]],
                        f"{entry['name']}: the submission's {rx['budget_exceeded']} budget")
    parts = []  # why not, per notebook; none: every notebook reproduces
    for entry in result["notebooks"]:
        rx = entry["reexec"]
        if rx is None:
            parts.append(f"{entry['name']}: not run "
                         f"({built.notebooks.get(entry['name'], 'not built')})"[:120])
        elif rx["differ"]:
            parts.append(f"{entry['name']}: {len(rx['differ'])} cell(s) differ")
        elif rx["status"] != "reproduces":
            parts.append(f"{entry['name']}: {rx['status'][:80]}")
        if entry["never_run"]:
            parts.append(f"{entry['name']}: never run")
    result["outputs_reproduce"] = "no (" + "; ".join(parts) + ")" if parts else "yes"


def _base_result(zip_path, name, sha, opts):
    return {
        "submission": name, "zip": Path(zip_path).name, "sha256": sha,
        "fingerprint": opts.fingerprint(), "status": "ok", "status_detail": "",
        "score": 0, "max_score": opts.rubric.max_score, "outputs_reproduce": "not checked",
        "sandbox": describe(opts.sandbox.kind), "sandbox_kind": opts.sandbox.kind,
        "isolation": [], "items": [], "checks": {}, "notebooks": [], "manifest": [],
        "regions": [], "outside": [], "skipped_members": [], "missing": [], "seconds": 0.0,
    }


def _set_status(result, status, detail=""):
    """Keep the most severe status (STATUS_TEXT order); details accumulate."""
    order = list(STATUS_TEXT)
    if order.index(status) < order.index(result["status"]):
        result["status"] = status
    if detail:
        result["status_detail"] = "; ".join(filter(None, [result["status_detail"], detail]))


def grade_one(zip_path, opts):
    """Grade one zip; returns the result dict (also written to OUT/results/<name>.json).

    Whatever happens, the submission gets a result: an exception of the grader itself is
    the row's ``grader_error``, and the run goes on.
    """
    start = time.monotonic()
    zip_path = Path(zip_path)
    name = safe_name(zip_path)
    results_path = Path(opts.out) / "results" / f"{name}.json"
    result = _base_result(zip_path, name, "", opts)
    try:
        result["sha256"] = sha256_file(zip_path)
    except OSError as exc:
        _set_status(result, "grader_error", f"cannot read the zip: {exc}")
    else:
        cached = None if opts.force else cached_result(results_path, result["sha256"], opts)
        if cached is not None:
            cached["cached"] = True
            return notebook_pdfs.attach(cached, zip_path, opts, results_path)
        work = Path(tempfile.mkdtemp(prefix=f"grade-{name}-", dir=opts.workdir))
        try:
            _grade_into(result, zip_path, work, opts)
        except Exception as exc:  # a grader bug must not stop the run: the row says so
            _set_status(result, "grader_error", f"{type(exc).__name__}: {exc}")
        finally:
            if not opts.keep_work:
                shutil.rmtree(work, ignore_errors=True)
    if not result["items"]:
        # Nothing ran: every item is still listed, with 0 points and the reason.
        why = f"not run: {STATUS_TEXT[result['status']]}"
        verdicts = {t: (False, why) for t in opts.rubric.tests}
        result["items"], result["score"] = score_items(verdicts, opts.rubric, {})
    result["seconds"] = round(time.monotonic() - start, 2)
    result["status_text"] = STATUS_TEXT[result["status"]]
    write_json_atomic(results_path, result)
    feedback.write_feedback(Path(opts.out) / "feedback" / f"{name}.html", result)
    return notebook_pdfs.attach(result, zip_path, opts, results_path)  # OUT/notebooks/


def _relate_network_items(result):
    """A failed network item was run on the course's own layers: say so, and name the
    student's layer items of the same kind that fail too (the notebooks use those)."""
    failed = {i["id"] for i in result["items"] if not i["passed"]}
    for item in result["items"]:
        if item["passed"] or not item["id"].startswith("network"):
            continue
        kind = item["id"].split("_", 1)[1] if "_" in item["id"] else ""
        layers = sorted(f for f in failed if not f.startswith("network") and
                        kind and f.startswith(kind))
        item["related"] = ("run with the course's own layers, so the difference is in "
                           "FullyConnectedNet (how it wires, initializes or regularizes them)"
                           + (f"; your layer items {', '.join(layers)} fail too: fix those "
                              f"first, your notebooks use them" if layers else ""))


def _regions_report(result, built):
    """Region states into the result; forbidden or unparsable regions set the status."""
    for region in built.regions:
        result["regions"].append({
            "path": region.path, "function": region.function, "section": region.section,
            "line": region.line, "state": region.state,
            "refusals": [{"line": r.line, "text": r.text[:200], "why": r.why[:200]}
                         for r in region.refusals[:5]],
            "description": region.describe()})
        if region.state == "forbidden":
            _set_status(result, "forbidden_code", region.describe())
        elif region.state == "syntax_error":
            _set_status(result, "syntax_error", region.describe())
    result["outside"] = (built.problems + built.outside)[:100]


def _grade_into(result, zip_path, work, opts):
    work.chmod(0o755)
    student = work / "student"
    student.mkdir()
    unpacked = unpack.unpack(zip_path, student)
    result["skipped_members"] = unpacked.skipped[:50]
    result["manifest"] = unpacked.manifest
    if unpacked.status != "ok":
        _set_status(result, unpacked.status, unpacked.message)
        return
    result["missing"] = unpacked.missing
    if unpacked.missing:
        _set_status(result, "missing_files", "missing: " + ", ".join(unpacked.missing))

    for nb_name in NOTEBOOK_NAMES:
        course_nb = Path(opts.course_notebooks) / nb_name
        questions = notebooks.course_questions(course_nb) if course_nb.is_file() else []
        report = notebooks.check_notebook(student / nb_name, questions)
        result["notebooks"].append({"name": nb_name, "problems": report.problems,
                                    "answers": report.answers, "answer_texts": report.texts,
                                    "never_run": report.never_run, "reexec": None})
    if any(m.endswith(".py") for m in unpacked.missing):
        return  # the packer refuses this too: nothing runs

    (work / "sub").mkdir()
    built = build.build(opts.course, opts.course_notebooks, student, work / "sub")
    _regions_report(result, built)
    build.build_network(opts.course, student, work / "subnet")
    _prepare_dirs(work, opts)
    with SubmissionBox(opts.sandbox.kind, opts.budget, work, uids=opts.uids) as box:
        result["isolation"] = list(box.report)
        # The layers' tests on the student's package; the network's on the course's layers
        # with the student's network code, so one bug costs one place.
        network = [t for t in opts.rubric.tests if hidden.TESTS[t].function.startswith(
            "FullyConnectedNet")]
        layers = [t for t in opts.rubric.tests if t not in network]
        records, outputs, run, arrays, problems = run_worker(
            work, box, opts, layers, "sub", opts.rubric.checks)
        result["worker_seconds"] = round(run.seconds, 2)
        imported = _read_worker_report(result, records, run, opts)
        if network:
            net = run_worker(work, box, opts, network, "subnet")
            result["worker_seconds"] = round(run.seconds + net[2].seconds, 2)
            _read_worker_report(result, net[0], net[2], opts)
            records, problems = records + net[0], problems + net[4]
            outputs, arrays = {**outputs, **net[1]}, {**arrays, **net[3]}
        if problems:
            result["channel_problems"] = problems[:10]
        verdicts = judge_all(records, outputs, arrays, opts.rubric)
        result["items"], result["score"] = score_items(verdicts, opts.rubric, result["checks"])
        _relate_network_items(result)
        if not opts.run_notebooks:
            result["outputs_reproduce"] = "not checked (--no-notebooks)"
            return
        if imported is None or imported.get("ok") is not True:
            result["outputs_reproduce"] = "not checked (the package does not import)"
            return
        if box.remaining() <= 1:
            _set_status(result, "timeout", "no time left before the submission's deadline "
                                           "for the notebooks")
            result["outputs_reproduce"] = "not checked (deadline)"
            return
        _reexecute_notebooks(result, work, box, built, opts)
