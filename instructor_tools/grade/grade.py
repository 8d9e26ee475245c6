"""Grade one submission zip: unpack, run the student's code sandboxed, judge, report.

The flow of ``grade_one`` (every step turns a failure into a status, never an exception):

1. sha256 of the zip; a result already in OUT/results/ for the same zip, rubric and
   options is reused (re-runs skip what is done).
2. ``unpack.unpack`` into a private folder (refusals: corrupt_zip, unsafe_zip, zip_bomb;
   missing required files: missing_files).
3. Static notebook checks (``notebooks.check_notebook``), in this process, as data.
4. The worker (``worker.py``) runs in the sandbox on the student's package with inputs this
   process made (``hidden/tests.build_all``); it returns raw arrays (.npz, no pickles) and
   a JSON log. This process judges them against the reference (``hidden/tests.judge``)
   and scores the rubric items.
5. Optionally the notebooks are re-executed in the sandbox under nbval with the project's
   sanitizer; junit XML says which cells differ.
6. OUT/results/<name>.json (written atomically) and OUT/feedback/<name>.html.
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

from instructor_tools.grade import feedback, notebooks, unpack
from instructor_tools.grade.hidden import tests as hidden
from instructor_tools.grade.sandbox import Limits, Mount, Sandbox, describe

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parents[1]
RESULT_VERSION = 1
NOTEBOOK_NAMES = unpack.NOTEBOOKS
SELF_CHECK = PROJECT / "cs231n" / "check.py"
SANITIZER = PROJECT / "tests" / "nbval_sanitize.cfg"
MAX_LOG_BYTES = 2 * 2**20

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
    "corrupt_zip": "the file is not a readable zip",
    "unsafe_zip": "the zip has an unsafe member (absolute or '..' path, symlink, control "
                  "character): nothing was unpacked",
    "zip_bomb": "the zip unpacks past the size caps: nothing graded",
    "missing_files": "required files are missing",
    "syntax_error": "the package does not compile (syntax error)",
    "import_error": "importing the package raised an exception",
    "timeout": "the code ran past its time limit (infinite loop?)",
    "memory_limit": "the code ran past its memory limit",
    "process_limit": "the code started too many processes (fork bomb?)",
    "output_limit": "the code wrote past the file size limit (endless output?)",
    "crashed": "the sandboxed process died",
    "network_attempt": "the code tried to open a network connection (blocked)",
    "forbidden_read": "the code tried to read files outside its folder (hidden tests?)",
    "write_outside": "the code tried to write outside its folder (blocked)",
    "monkeypatch": "the code replaced numpy or grader functions",
    "ok": "graded",
}


@dataclass
class Options:
    out: Path
    rubric: object
    run_notebooks: bool = True
    sandbox: Sandbox = None
    limits: Limits = field(default_factory=lambda: Limits(cpu_seconds=120, wall_seconds=180,
                                                          memory_bytes=3 * 2**30))
    notebook_limits: Limits = field(default_factory=lambda: Limits(
        cpu_seconds=900, wall_seconds=900, memory_bytes=4 * 2**30, processes=256))
    datasets: Path = PROJECT / "datasets" / "cifar-10-batches-py"
    course_notebooks: Path = PROJECT
    workdir: Path | None = None
    keep_work: bool = False
    force: bool = False
    python: str = sys.executable  # the interpreter of this venv (bound read-only inside)
    op_seconds: float = 20  # per hidden test (an alarm inside the worker)
    import_seconds: float = 30  # importing the student's package

    def fingerprint(self):
        """What a cached result must match to be reused: rubric, options, grader code."""
        return {"rubric": self.rubric.digest, "notebooks": self.run_notebooks,
                "version": RESULT_VERSION, "grader": grader_digest()}


def grader_digest():
    """sha256 of the files that decide verdicts: a changed test re-grades everything."""
    digest = hashlib.sha256()
    for path in (HERE / "worker.py", HERE / "nbval_guard.py", HERE / "hidden" / "tests.py",
                 HERE / "hidden" / "reference.py", SELF_CHECK, SANITIZER):
        if path.is_file():
            digest.update(path.read_bytes())
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
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_json_atomic(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached_result(path, sha, opts):
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("sha256") == sha and data.get("fingerprint") == opts.fingerprint():
        return data
    return None


# ---------------------------------------------------------------------------
# Running the worker and reading what it returned
# ---------------------------------------------------------------------------


def _read_log(path):
    """JSON records of the worker's log; malformed lines are dropped (untrusted bytes)."""
    if not path.is_file():
        return []
    records = []
    with open(path, "rb") as handle:
        raw = handle.read(MAX_LOG_BYTES)
    for line in raw.decode("utf-8", "replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _load_outputs(path):
    """The arrays of one op's .npz, loaded without pickles; {} when unreadable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: np.asarray(data[key]) for key in data.files[:1000]}
    except Exception:  # a forged or truncated file is the submission's problem
        return None


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


def _mounts(work, sub, datasets):
    mounts = [Mount(sub, "/sub"), Mount(work / "course", "/course"), Mount(work / "in", "/in"),
              Mount(work / "out", "/out", writable=True)]
    if datasets is not None and Path(datasets).is_dir():
        mounts.append(Mount(Path(datasets), "/sub/datasets/cifar-10-batches-py"))
    return mounts


def _prepare_dirs(work, sub, opts, uid):
    """course/ (worker, public self-check, sanitizer), in/, out/ writable by the uid."""
    course = work / "course"
    course.mkdir()
    shutil.copy2(HERE / "worker.py", course / "worker.py")
    shutil.copy2(HERE / "nbval_guard.py", course / "nbval_guard.py")
    if SELF_CHECK.is_file():
        shutil.copy2(SELF_CHECK, course / "check.py")
    if SANITIZER.is_file():
        shutil.copy2(SANITIZER, course / "nbval_sanitize.cfg")
    (work / "in").mkdir()
    out = work / "out"
    out.mkdir()
    if uid is not None:
        os.chown(out, uid, uid)
    # The dataset mount point inside the (read-only) submission copy.
    (sub / "datasets" / "cifar-10-batches-py").mkdir(parents=True, exist_ok=True)
    for path in [work, *work.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755 if path != out else 0o770)
        else:
            path.chmod(0o644)
    if opts.sandbox.kind != "bwrap":
        # The code sees host paths: link the data where the package looks for it.
        target = sub / "datasets" / "cifar-10-batches-py"
        target.rmdir()
        if opts.datasets and Path(opts.datasets).is_dir():
            target.symlink_to(Path(opts.datasets).resolve())


def run_worker(work, sub, opts):
    """Run the hidden tests' ops in the sandbox; return (records, {op: outputs}, run)."""
    ops, arrays = hidden.build_all(opts.rubric.tests)
    spec = {"ops": ops, "checks": opts.rubric.checks, "seed": 0,
            "op_seconds": opts.op_seconds, "import_seconds": opts.import_seconds,
            "check_seconds": opts.op_seconds}
    (work / "in" / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    np.savez(work / "in" / "arrays.npz", **arrays)
    (work / "in" / "spec.json").chmod(0o644)
    (work / "in" / "arrays.npz").chmod(0o644)
    mounts = _mounts(work, sub, opts.datasets)
    sb = opts.sandbox
    at = {m.inside: sb.path(m) for m in mounts}
    argv = [opts.python, "-I", "-B", f"{at['/course']}/worker.py",
            "--spec", f"{at['/in']}/spec.json", "--arrays", f"{at['/in']}/arrays.npz",
            "--root", at["/sub"], "--out", at["/out"]]
    if (work / "course" / "check.py").is_file():
        argv += ["--check", f"{at['/course']}/check.py"]
    env = dict(BASE_ENV)
    if sb.kind != "bwrap":
        env = {k: (v.replace("/tmp", str(work / "tmp")) if v.startswith("/tmp") else v)
               for k, v in env.items()}
        (work / "tmp").mkdir(exist_ok=True)
        (work / "tmp").chmod(0o1777)
    env["PATH"] = f"{Path(opts.python).parent}:/usr/bin:/bin"
    run = sb.run(argv, mounts, cwd=at["/sub"], env=env, limits=opts.limits)
    records = _read_log(work / "out" / "log.jsonl")
    outputs = {}
    for record in records:
        name = record.get("op")
        if isinstance(name, str) and record.get("ok") is True and name in hidden.TESTS:
            outputs[name] = _load_outputs(work / "out" / f"{name}.npz")
    return records, outputs, run, arrays


def _test_arrays(arrays, name):
    prefix = f"{name}/"
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def judge_all(records, outputs, arrays, rubric):
    """Per-test verdicts and per-item points, decided here from the returned values."""
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
            verdicts[name] = hidden.judge(name, outputs[name], _test_arrays(arrays, name))
    return verdicts


def score_items(verdicts, rubric, checks):
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


# ---------------------------------------------------------------------------
# Notebooks
# ---------------------------------------------------------------------------


def run_notebook(work, sub, name, report, opts):
    """Re-execute one notebook under nbval in the sandbox; a dict for the result.

    nbval's junit report is written to a file descriptor the grader passes in (an unnamed
    file, never visible in the sandbox's file system); the pytest process is made
    non-dumpable (nbval_guard.py), so the student's kernel cannot rewrite the report.
    """
    # No writable /out here: the report travels through the passed descriptor only.
    mounts = [m for m in _mounts(work, sub, opts.datasets) if m.inside != "/out"]
    sb = opts.sandbox
    at = {m.inside: sb.path(m) for m in mounts}
    env = dict(BASE_ENV)
    if sb.kind != "bwrap":
        tmp = work / f"tmp-{Path(name).stem}"
        tmp.mkdir(exist_ok=True)
        tmp.chmod(0o1777)
        env = {k: (v.replace("/tmp", str(tmp)) if v.startswith("/tmp") else v)
               for k, v in env.items()}
    env["PATH"] = f"{Path(opts.python).parent}:/usr/bin:/bin"
    env["PYTHONPATH"] = f"{at['/course']}:{at['/sub']}"
    result = {"name": name, "seconds": 0.0, "cells_run": 0, "differ": []}
    with tempfile.TemporaryFile(dir=work) as junit:
        os.fchmod(junit.fileno(), 0o666)  # reopened through /proc/self/fd by the sandbox uid
        argv = [opts.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--noconftest",
                "-p", "nbval_guard", "--color=no", "--nbval", "--nbval-current-env",
                "--nbval-cell-timeout", str(int(opts.notebook_limits.wall_seconds)),
                f"--junitxml=/proc/self/fd/{junit.fileno()}", "-o", "junit_logging=no",
                "--rootdir", at["/sub"]]
        if (work / "course" / "nbval_sanitize.cfg").is_file():
            argv += ["--nbval-sanitize-with", f"{at['/course']}/nbval_sanitize.cfg"]
        argv.append(f"{at['/sub']}/{name}")
        run = sb.run(argv, mounts, cwd=at["/sub"], env=env, limits=opts.notebook_limits,
                     pass_fds=(junit.fileno(),))
        junit.seek(0)
        xml = junit.read(MAX_LOG_BYTES)
    result["seconds"] = round(run.seconds, 1)
    if run.timed_out:
        result["status"] = f"timeout after {opts.notebook_limits.wall_seconds:g} s"
    try:
        cells_run, differ = notebooks.parse_junit(xml, report)
    except Exception as exc:  # missing, truncated or forged XML
        result.setdefault("status", f"no nbval report ({type(exc).__name__}); "
                                    f"{run.stderr.strip()[-300:] or run.stdout.strip()[-300:]}")
        return result
    result["cells_run"] = cells_run
    result["differ"] = differ
    result.setdefault("status", "reproduces" if not differ and cells_run else
                      ("differs" if differ else "no cells run"))
    return result


# ---------------------------------------------------------------------------
# One submission
# ---------------------------------------------------------------------------


def _read_worker_report(result, records, run, opts):
    """Fill attempts, monkeypatches, self-check hints and the status from the worker's log
    and how its process ended; returns the import record (None if it never got there)."""
    imported = next((r for r in records if r.get("event") == "import"), None)
    report = next((r for r in records if r.get("event") == "report"), {})
    done = any(r.get("event") == "done" for r in records)
    attempts = [a for a in report.get("attempts", []) if isinstance(a, dict)][:50]
    result["attempts"] = [{"kind": str(a.get("kind", ""))[:40],
                           "detail": str(a.get("detail", ""))[:300]} for a in attempts]
    result["monkeypatched"] = [str(m)[:100] for m in report.get("monkeypatched", [])][:30]
    result["checks"] = {str(r["check"]): {"passed": bool(r.get("passed")),
                                          "hint": str(r.get("hint", ""))[:1000]}
                        for r in records if isinstance(r.get("check"), str)}

    kinds = {a["kind"] for a in result["attempts"]}
    if imported is None:
        if run.timed_out:
            _set_status(result, "timeout", f"killed after {opts.limits.wall_seconds:g} s "
                                           f"wall time")
        elif run.cpu_limit:
            _set_status(result, "timeout", f"CPU time limit {opts.limits.cpu_seconds} s")
        else:
            _set_status(result, "output_limit" if run.signal == signal.SIGXFSZ else "crashed",
                        _death(run))
    elif imported.get("ok") is not True:
        status = _classify_import(imported)
        if "network" in kinds:
            status = "network_attempt"
        elif "read_outside" in kinds and status == "import_error":
            status = "forbidden_read"
        elif "write_outside" in kinds and status == "import_error":
            status = "write_outside"
        _set_status(result, status, str(imported.get("error", ""))[:500])
    elif not done:
        if run.timed_out:
            _set_status(result, "timeout", f"killed after {opts.limits.wall_seconds:g} s "
                                           f"wall time; tests not finished score 0")
        elif run.cpu_limit:
            _set_status(result, "timeout", f"CPU time limit {opts.limits.cpu_seconds} s")
        elif run.signal == 9:
            _set_status(result, "memory_limit", "killed (out of memory?)")
        else:
            _set_status(result, "output_limit" if run.signal == signal.SIGXFSZ else "crashed",
                        _death(run))
    op_errors = [r for r in records if isinstance(r.get("op"), str) and r.get("ok") is False]
    if any(r.get("error_type") == "Timeout" for r in op_errors):
        _set_status(result, "timeout", "a test ran past its time limit")
    if any(r.get("error_type") == "MemoryError" for r in op_errors):
        _set_status(result, "memory_limit", "a test ran out of memory")
    if any(r.get("error_type") == "BlockingIOError" for r in op_errors):
        _set_status(result, "process_limit", "a test hit the process limit")
    for kind, status in (("network", "network_attempt"), ("read_outside", "forbidden_read"),
                         ("write_outside", "write_outside")):
        if kind in kinds:
            first = next(a["detail"] for a in result["attempts"] if a["kind"] == kind)
            _set_status(result, status, first)
    if result["monkeypatched"]:
        _set_status(result, "monkeypatch", "replaced: " + ", ".join(result["monkeypatched"][:5]))

    return imported


def _reexecute_notebooks(result, work, sub, reports, opts):
    """Both notebooks under nbval at once; sets each notebook's reexec and
    outputs_reproduce."""
    runnable = [n for n in NOTEBOOK_NAMES if reports[n].readable]
    for nb_name in runnable:
        notebooks.runnable_copy(sub / nb_name, sub / nb_name)
        (sub / nb_name).chmod(0o644)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {n: pool.submit(run_notebook, work, sub, n, reports[n], opts)
                   for n in runnable}
        for entry in result["notebooks"]:
            if entry["name"] in futures:
                entry["reexec"] = futures[entry["name"]].result()
    states = [e["reexec"]["status"] if e["reexec"] else "missing" for e in result["notebooks"]]
    never = [e["name"] for e in result["notebooks"] if e["never_run"]]
    if all(s == "reproduces" for s in states) and not never:
        result["outputs_reproduce"] = "yes"
    else:
        parts = []
        for entry in result["notebooks"]:
            rx = entry["reexec"]
            if rx is None:
                parts.append(f"{entry['name']}: not run")
            elif rx["differ"]:
                parts.append(f"{entry['name']}: {len(rx['differ'])} cell(s) differ")
            elif rx["status"] != "reproduces":
                parts.append(f"{entry['name']}: {rx['status'][:80]}")
            if entry["never_run"]:
                parts.append(f"{entry['name']}: never run")
        result["outputs_reproduce"] = "no (" + "; ".join(parts) + ")"


def _base_result(zip_path, name, sha, opts):
    return {
        "submission": name, "zip": Path(zip_path).name, "sha256": sha,
        "fingerprint": opts.fingerprint(), "status": "ok", "status_detail": "",
        "score": 0, "max_score": opts.rubric.max_score, "outputs_reproduce": "not checked",
        "sandbox": describe(opts.sandbox.kind), "sandbox_kind": opts.sandbox.kind,
        "items": [], "checks": {}, "notebooks": [], "manifest": [], "attempts": [],
        "monkeypatched": [], "skipped_members": [], "missing": [], "seconds": 0.0,
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

    The sandboxed commands run as opts.sandbox.uid (None: this process's uid).
    """
    start = time.monotonic()
    uid = opts.sandbox.uid
    zip_path = Path(zip_path)
    name = safe_name(zip_path)
    results_path = Path(opts.out) / "results" / f"{name}.json"
    sha = sha256_file(zip_path)
    if not opts.force:
        cached = cached_result(results_path, sha, opts)
        if cached is not None:
            cached["cached"] = True
            return cached
    result = _base_result(zip_path, name, sha, opts)
    work = Path(tempfile.mkdtemp(prefix=f"grade-{name}-", dir=opts.workdir))
    try:
        _grade_into(result, zip_path, work, opts, uid)
    except Exception as exc:  # a grader bug must not stop the run: the row says so
        _set_status(result, "crashed", f"grader error: {type(exc).__name__}: {exc}")
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
    return result


def _grade_into(result, zip_path, work, opts, uid):
    work.chmod(0o755)
    sub = work / "sub"
    sub.mkdir()
    unpacked = unpack.unpack(zip_path, sub)
    result["skipped_members"] = unpacked.skipped[:50]
    result["manifest"] = unpacked.manifest
    if unpacked.status != "ok":
        _set_status(result, unpacked.status, unpacked.message)
        return
    result["missing"] = unpacked.missing
    if unpacked.missing:
        _set_status(result, "missing_files", "missing: " + ", ".join(unpacked.missing))

    reports = {}
    for nb_name in NOTEBOOK_NAMES:
        questions = notebooks.course_questions(opts.course_notebooks / nb_name) if (
            opts.course_notebooks / nb_name).is_file() else []
        reports[nb_name] = notebooks.check_notebook(sub / nb_name, questions)
        result["notebooks"].append({"name": nb_name, "problems": reports[nb_name].problems,
                                    "answers": reports[nb_name].answers,
                                    "never_run": reports[nb_name].never_run, "reexec": None})

    code_missing = [m for m in unpacked.missing if m.endswith(".py")]
    if code_missing:
        return
    _prepare_dirs(work, sub, opts, uid)
    records, outputs, run, arrays = run_worker(work, sub, opts)
    result["worker_seconds"] = round(run.seconds, 2)
    imported = _read_worker_report(result, records, run, opts)
    verdicts = judge_all(records, outputs, arrays, opts.rubric)
    result["items"], result["score"] = score_items(verdicts, opts.rubric, result["checks"])

    if not opts.run_notebooks:
        result["outputs_reproduce"] = "not checked (--no-notebooks)"
        return
    if imported is None or imported.get("ok") is not True:
        result["outputs_reproduce"] = "not checked (the package does not import)"
        return
    _reexecute_notebooks(result, work, sub, reports, opts)
