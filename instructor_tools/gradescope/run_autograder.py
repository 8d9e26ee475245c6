"""Grade the one Gradescope submission: /autograder/submission -> /autograder/results/results.json.

Run by the zip's ``run_autograder`` as ``python -m instructor_tools.gradescope.run_autograder``
from /autograder/source (``AUTOGRADER_ROOT`` replaces /autograder). ``--self-test`` grades
the course's own solution (setup.sh runs it when the image is built) and fails unless it
scores the rubric's maximum.

1. The submission. Gradescope puts the student's upload in /autograder/submission: the zip
   from collectSubmission.sh as it is, or its files (Gradescope unpacks an uploaded zip;
   students may also upload the files themselves, or a zip of a folder holding them). A
   zip alone is graded as it is; files are zipped first in the packer's layout (the
   notebooks, ``cs231n/**/*.py`` and MANIFEST at the root; links, special files and hidden
   folders left out and listed; any other file, a PDF too, skipped), from the folder
   holding them.
2. Grading: the grader's own command line (``instructor_tools.grade.cli.main``) on a folder
   holding that one zip, so the options, the preflight and the isolation rules (bubblewrap
   where the container allows it, else the grader's reported fallbacks) are exactly those
   of ``make grade``; ``--no-notebooks`` unless the zip was built with ``--notebooks``.
3. results.json (Gradescope's format): ``score``; one test per rubric item (``name``,
   ``score``, ``max_score``, ``status``, ``output``: what was checked and, for a failed
   item, the grader's finding and the self-check's hint, ``visibility``); the top-level
   ``output``: the status, the isolation used (the result's ``sandbox`` and ``isolation``
   lines), what was not graded (the result's ``outside`` lines, regions not run, missing
   or skipped files), the notebooks' state and the written answers found;
   ``execution_time``; ``extra_data``. ``stdout_visibility`` is hidden: the grader's own
   summary printed here is for the course staff.

Whatever fails, a results.json is written, with every rubric item at 0 points and the
reason.
"""
import argparse
import contextlib
import io
import json
import os
import shutil
import stat
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path, PurePosixPath

from instructor_tools.grade import cli, unpack
from instructor_tools.grade import grade as grading
from instructor_tools.grade.rubric import DEFAULT_RUBRIC, load_rubric
from instructor_tools.gradescope import CONFIG_NAME, VISIBILITIES
from student_tools import contract
from student_tools.atomic import write_atomic

SOURCE = Path(__file__).resolve().parents[2]  # /autograder/source on Gradescope
SUBMISSION_NAME = "submission"  # the zip graded, so the result's name
PACKER_ZIP = "cs231n_submission.zip"  # collectSubmission.sh's default name
IGNORED_NAMES = ("__MACOSX",)
DEFAULTS = {"run_notebooks": False, "visibility": "visible", "datasets": None,
            "deadline": None, "grade_args": []}

# Written questions (rubric.written: id, notebook, heading, points, guide) are NOT
# autograder tests. Decision: they are graded by people in Gradescope's manual grading, a
# separate Online/PDF assignment (students print their executed notebooks to PDF from the
# browser, JupyterLab's or Colab's File > Print, and upload that PDF) with one rubric
# question per entry. Why: an autograder test can only carry points computed here, so a
# written question as a test would be a 0-point line ("0/0") that says nothing about its
# grade and whose points would still have to be entered elsewhere by hand; a PDF assignment
# gives graders the rendered answer, page matching, a rubric per question and regrade
# requests; and the guide (the expected answer) stays with the graders, never in a
# student's results.
# Here the top-level output only says, per written question, whether an answer was found.


class NotGraded(RuntimeError):
    """The submission could not be handed to the grader (the reason is for the student)."""


# ---------------------------------------------------------------------------
# The submission
# ---------------------------------------------------------------------------


def _kind(path):
    """'file', 'dir' or None (anything else, links included), without following links."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    return "file" if stat.S_ISREG(mode) else "dir" if stat.S_ISDIR(mode) else None


def _visible(name):
    return not name.startswith(".") and name not in IGNORED_NAMES


def _wanted(rel):
    """A member of a submission zip (what the grader unpacks; the rest it skips)."""
    if rel in contract.NOTEBOOKS or rel == unpack.MANIFEST:
        return True
    parts = PurePosixPath(rel).parts
    return len(parts) > 1 and parts[0] == contract.PACKAGE and rel.endswith(".py")


def _holds_submission(folder):
    return any(_kind(folder / name) == "file" for name in contract.NOTEBOOKS) or \
        _kind(folder / contract.PACKAGE) == "dir"


def _read_regular(path, limit):
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(limit + 1)
    finally:
        os.close(fd)


def pack(root, out):
    """Zip the submission files under root in the packer's layout; returns notes (what was
    left out and why). Links and special files are never followed or read."""
    root, notes, total, count = Path(root), [], 0, 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for dirpath, dirnames, filenames in os.walk(root):  # does not follow links
            dirnames[:] = sorted(d for d in dirnames if _visible(d))
            for name in sorted(filenames):
                path = Path(dirpath) / name
                rel = path.relative_to(root).as_posix()
                if not _wanted(rel):
                    continue
                if _kind(path) != "file":
                    notes.append(f"{rel}: not a regular file (a link?): left out")
                    continue
                size = os.lstat(path).st_size
                if (size > unpack.MAX_FILE_BYTES or total + size > unpack.MAX_TOTAL_BYTES
                        or count >= unpack.MAX_MEMBERS):
                    notes.append(f"{rel}: past the submission's size caps: left out")
                    continue
                try:
                    data = _read_regular(path, unpack.MAX_FILE_BYTES)
                except OSError as exc:
                    notes.append(f"{rel}: unreadable ({exc}): left out")
                    continue
                archive.writestr(rel, data)
                total, count = total + len(data), count + 1
    return notes


def find_submission(folder, work):
    """(the zip to grade, notes): the uploaded zip itself, or the uploaded files zipped."""
    folder, work = Path(folder), Path(work)
    out = work / f"{SUBMISSION_NAME}.zip"
    if _kind(folder) != "dir":
        (work / "empty").mkdir()
        return out, [f"no submission folder ({folder})"] + pack(work / "empty", out)
    entries = sorted(p for p in folder.iterdir() if _visible(p.name))
    zips = [p for p in entries if p.suffix.lower() == ".zip" and _kind(p) == "file"]
    if _holds_submission(folder):
        notes = ["uploaded files zipped in the packer's layout"]
        if zips:
            notes.append("ignored (the unpacked files were graded): " +
                         ", ".join(p.name for p in zips))
        return out, notes + pack(folder, out)
    if zips:
        chosen = zips[0] if len(zips) == 1 else next(
            (p for p in zips if p.name == PACKER_ZIP), None)
        if chosen is None:
            raise NotGraded("several zips were uploaded (" + ", ".join(p.name for p in zips)
                            + f"): upload one, {PACKER_ZIP} from collectSubmission.sh")
        shutil.copyfile(chosen, out)
        notes = [f"the uploaded zip {chosen.name}"]
        if len(zips) > 1:
            notes.append("ignored: " + ", ".join(p.name for p in zips if p != chosen))
        return out, notes
    folders = [p for p in entries if _kind(p) == "dir" and _holds_submission(p)]
    if len(folders) == 1:
        return out, [f"the files in the uploaded folder {folders[0].name}/, zipped in the "
                     f"packer's layout"] + pack(folders[0], out)
    # Nothing recognisable: grade what there is (the grader names the missing files).
    return out, ["no notebook, no cs231n/ folder and no zip found in the upload"] + \
        pack(folder, out)


# ---------------------------------------------------------------------------
# Grading
# ---------------------------------------------------------------------------


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self):
        for stream in self.streams:
            stream.flush()


def read_config(source=SOURCE):
    config = dict(DEFAULTS)
    path = Path(source) / CONFIG_NAME
    if path.is_file():
        config.update(json.loads(path.read_text(encoding="utf-8")))
    if config["visibility"] not in VISIBILITIES:
        config["visibility"] = "visible"
    return config


def grade_zip(zip_path, work, config):
    """The grader's result dict for one zip, through the grader's own command line."""
    if Path(grading.PROJECT) != SOURCE:
        raise RuntimeError(f"the grader was imported from {grading.PROJECT}, not from the "
                           f"autograder's source {SOURCE}")
    folder = Path(work) / "in"
    folder.mkdir()
    shutil.move(str(zip_path), folder / f"{SUBMISSION_NAME}.zip")
    out = Path(work) / "out"
    argv = [str(folder), "--out", str(out), "--quiet", "--force"]
    if not config["run_notebooks"]:
        argv.append("--no-notebooks")
    if config.get("datasets"):
        argv += ["--datasets", str(config["datasets"])]
    if config.get("deadline"):
        argv += ["--deadline", str(config["deadline"])]
    argv += [str(arg) for arg in config.get("grade_args") or []]
    captured = io.StringIO()
    print("python -m instructor_tools.grade " + " ".join(argv), flush=True)
    with contextlib.redirect_stderr(_Tee(sys.stderr, captured)):
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
    found = sorted((out / "results").glob("*.json")) if (out / "results").is_dir() else []
    if code != 0 or len(found) != 1:
        reason = [line[2:] for line in captured.getvalue().splitlines() if line.startswith("- ")]
        raise RuntimeError("the grader did not grade the submission (exit "
                           f"{code}): " + ("; ".join(reason) or captured.getvalue()[-500:]))
    return json.loads(found[0].read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------
# results.json
# ---------------------------------------------------------------------------


def _num(value):
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def _item_output(item, graded, why_not):
    """The text of one rubric item's test: what was checked, and why it failed."""
    if graded is None:
        return f"Not graded: {why_not}"
    lines = [f"{'Passed' if graded['passed'] else 'Failed'}: "
             f"{_num(graded['earned'])} / {_num(graded['points'])} points."]
    for test in graded.get("tests", []):
        lines.append(f"[{'pass' if test['passed'] else 'FAIL'}] {test['function']}: "
                     f"{test['description']}")
        if not test["passed"] and test.get("message"):
            lines.append(f"    {test['message']}")
    if not graded["passed"] and graded.get("related"):
        lines.append(graded["related"])
    if not graded["passed"] and graded.get("hint"):
        state = "passes" if graded.get("check_passed") else "fails"
        lines.append(f"Self-check {graded.get('check', '')} ({state} on your code): "
                     f"{graded['hint']}")
    return "\n".join(lines)


def _field(entry, name):
    return entry.get(name) if isinstance(entry, dict) else getattr(entry, name, None)


def _answer_state(result, notebook, heading):
    """The grader's verdict on the answer under heading in notebook (its first part)."""
    heading = str(heading or "").strip().lower()
    for nb in result.get("notebooks", []) if result else []:
        if notebook and nb.get("name") not in (notebook, f"{notebook}.ipynb"):
            continue
        for question, state, detail in nb.get("answers", []):
            if str(question).strip().lower() == heading:
                return f"{state} ({detail})" if detail else state
    return "not found in the submitted notebook"


def written_lines(rubric, result):
    written = tuple(getattr(rubric, "written", ()) or ())
    lines = []
    if written:
        lines.append("Written questions: graded by the course staff in Gradescope (a "
                     "separate assignment), not by this autograder. Answers found:")
        for entry in written:
            notebook, heading = _field(entry, "notebook"), _field(entry, "heading")
            lines.append(f"- {notebook}: {heading} ({_num(_field(entry, 'points'))} points): "
                         f"{_answer_state(result, notebook, heading)}")
    elif result and any(nb.get("answers") for nb in result.get("notebooks", [])):
        lines.append("Written answers (graded by the course staff, not by this autograder):")
        for nb in result["notebooks"]:
            for question, state, detail in nb.get("answers", []):
                lines.append(f"- {nb['name']}: {question}: {state}"
                             + (f" ({detail})" if detail else ""))
    return lines


def _overview(result, rubric, config, notes, error):
    lines = []
    if error:
        lines.append(f"Status: not graded: {error}")
    else:
        lines.append(f"Status: {result['status']} ({result.get('status_text', '')})")
        if result.get("status_detail"):
            lines.append(f"Details: {result['status_detail']}")
    score = result["score"] if result and not error else 0
    lines.append(f"Score: {_num(score)} / {_num(rubric.max_score)} for the code (the "
                 f"autograded part).")
    lines.append("Submission: " + "; ".join(notes) if notes else "Submission: -")
    if result and not error:
        lines.append(f"Isolation: {result.get('sandbox', '')}")
        lines += [f"  {line}" for line in result.get("isolation", [])]
    lines.append("Only the code between the solution markers (### BEGIN SOLUTION ... ### END "
                 "SOLUTION) is graded; it runs inside the course's own files.")
    not_graded = []
    if result and not error:
        not_graded += [r["description"] for r in result.get("regions", [])
                       if r.get("state") != "ok"]
        not_graded += [f"missing: {m}" for m in result.get("missing", [])]
        not_graded += list(result.get("outside", []))
        if result.get("skipped_members"):
            not_graded.append("not part of a submission, ignored: "
                              + ", ".join(result["skipped_members"]))
        not_graded += [f"MANIFEST: {m}" for m in result.get("manifest", [])]
    if not_graded:
        lines.append("Not graded:")
        lines += [f"- {line}" for line in not_graded]
    elif result and not error:
        lines.append("Not graded: nothing (no change outside the answer regions).")
    if result and not error:
        reproduce = result.get("outputs_reproduce", "not checked")
        if not config["run_notebooks"]:
            reproduce += ("; notebook re-execution is off in this autograder (no CIFAR-10 "
                          "on the image): the stored outputs were not compared")
        lines.append(f"Notebook outputs reproduce: {reproduce}")
        for nb in result.get("notebooks", []):
            lines += [f"- {nb['name']}: {p}" for p in nb.get("problems", [])]
    lines += written_lines(rubric, result if not error else None)
    return "\n".join(lines)


def results_json(result, rubric, config, notes, seconds, error=None):
    """Gradescope's results.json for one grader result (None, with error, when the grader
    could not run): one test per rubric item, in rubric order."""
    graded = {} if error or not result else {i["id"]: i for i in result.get("items", [])}
    why_not = error or (result or {}).get("status_text", "not run")
    tests = []
    for item in rubric.items:
        got = graded.get(item.id)
        earned = float(got["earned"]) if got else 0.0
        tests.append({
            "name": f"{item.id}: {item.title}",
            "score": earned,
            "max_score": float(item.points),
            "status": "passed" if got and got["passed"] else "failed",
            "output": _item_output(item, got, why_not),
            "visibility": config["visibility"],
        })
    extra = {"status": "not_graded" if error else result["status"], "notes": notes}
    if result and not error:
        extra.update({k: result.get(k) for k in ("status_detail", "outputs_reproduce",
                                                 "sandbox_kind", "isolation", "seconds")})
    return {
        "score": sum(t["score"] for t in tests),
        "execution_time": int(round(seconds)),
        "output": _overview(result, rubric, config, notes, error),
        "stdout_visibility": "hidden",
        "extra_data": extra,
        "tests": tests,
    }


def write_results(results_dir, data):
    results_dir = Path(results_dir)
    write_atomic(results_dir / "results.json", json.dumps(data, indent=1))
    return results_dir / "results.json"


def run(submission, results_dir, config=None):
    """Grade the submission folder, write results_dir/results.json; returns its data."""
    start = time.monotonic()
    config = config or read_config()
    rubric = load_rubric(DEFAULT_RUBRIC)
    result, notes, error = None, [], None
    work = Path(tempfile.mkdtemp(prefix="gradescope-"))
    try:
        zip_path, notes = find_submission(submission, work)
        result = grade_zip(zip_path, work, config)
    except NotGraded as exc:
        error = str(exc)
    except Exception as exc:  # a failure of the autograder itself: still a results.json
        traceback.print_exc(file=sys.stdout)
        error = (f"the autograder failed ({type(exc).__name__}); the course staff can see "
                 f"why in the autograder's log")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    data = results_json(result, rubric, config, notes, time.monotonic() - start, error)
    write_results(results_dir, data)
    print(data["output"])
    print(f"results.json: score {data['score']:g} / {rubric.max_score:g}", flush=True)
    return data


def self_test(source=SOURCE):
    """Grade the course's own files (the solution): 0 when they score the maximum."""
    source = Path(source)
    with tempfile.TemporaryDirectory(prefix="gradescope-self-test-") as tmp:
        submission = Path(tmp) / "submission"
        for rel in contract.NOTEBOOKS:
            (submission / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / rel, submission / rel)
        for path in sorted((source / contract.PACKAGE).rglob("*.py")):
            rel = path.relative_to(source)
            if "__pycache__" not in rel.parts:
                (submission / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, submission / rel)
        data = run(submission, Path(tmp) / "results")
    expected = load_rubric(DEFAULT_RUBRIC).max_score
    if data["score"] != expected:
        print(f"self-test FAILED: the course's solution scores {data['score']:g}, not "
              f"{expected:g}", file=sys.stderr)
        return 1
    print(f"self-test passed: the course's solution scores {expected:g} / {expected:g}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m instructor_tools.gradescope.run_autograder",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--self-test", action="store_true",
                        help="grade the course's own solution; fail unless it scores the "
                        "maximum (setup.sh runs it)")
    args = parser.parse_args(argv)
    if args.self_test:
        return self_test()
    root = Path(os.environ.get("AUTOGRADER_ROOT") or "/autograder")
    if (root / "source").resolve() != SOURCE:
        print(f"note: grading with the course in {SOURCE} (not {root / 'source'})")
    run(root / "submission", root / "results")
    return 0


if __name__ == "__main__":
    sys.exit(main())
