"""The Gradescope autograder (instructor_tools/gradescope): the zip follows Gradescope's
specification (setup.sh and run_autograder at its root, executable) and carries the course;
run_autograder, run in a temporary /autograder layout (AUTOGRADER_ROOT), grades a
submission with the same grader, hidden tests and rubric and writes a results.json of
Gradescope's format: the solution scores the rubric's code maximum, a planted dropout bug
loses its item, one test per rubric item, every field present and typed.

The course inside the zip is the committed one (HEAD), like the submissions built here
(grade_fixtures.solution_files), so that edits in progress elsewhere cannot make them
differ. No notebook is re-executed (the zip's default); the three graded runs (solution,
dropout bug, setup.sh's self-test) run at once, each mostly Python start-up.
"""
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from grade_fixtures import PROJECT, committed, plant, solution_files, write_zip
from instructor_tools.gradescope import CONFIG_NAME, DATASETS, VISIBILITIES
from instructor_tools.gradescope import build as gs_build
from instructor_tools.gradescope import run_autograder as gs_run
from instructor_tools.grade.rubric import load_rubric

RUBRIC = load_rubric()
DROPOUT_LINE = ".astype(x.dtype) / p"
DROPOUT_BUG = ".astype(x.dtype)"
TIMINGS = {}


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def course_overrides():
    """The course files as committed: package, notebooks, sanitizer."""
    files = dict(solution_files())
    files["tests/nbval_sanitize.cfg"] = committed("tests/nbval_sanitize.cfg")
    return files


def unpack_like_gradescope(zip_path, source):
    """Extract into source/, with the modes the zip records (as Gradescope's unpacking)."""
    source.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            path = archive.extract(info, source)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(path, mode)


@pytest.fixture(scope="module")
def autograder(tmp_path_factory):
    out = tmp_path_factory.mktemp("gradescope") / "autograder.zip"
    start = time.monotonic()
    gs_build.build_zip(out, overrides=course_overrides())
    TIMINGS["build"] = time.monotonic() - start
    return out


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.pop("CS231N_GRADESCOPE_PYTHON", None)  # the wrapper's default, then PATH's python3
    env.update(PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin", **extra)
    return env


def start_autograder(zip_path, root, submission_files=None, submission_zip=None):
    """A fresh /autograder layout under root, the submission in it, and run_autograder
    started there with the project's venv on PATH (a Popen)."""
    unpack_like_gradescope(zip_path, root / "source")
    (root / "submission").mkdir()
    (root / "results").mkdir()
    if submission_zip is not None:
        write_zip(root / "submission" / "cs231n_submission.zip", submission_zip)
    for rel, data in (submission_files or {}).items():
        (root / "submission" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "submission" / rel).write_bytes(data)
    return subprocess.Popen([str(root / "source" / "run_autograder")], cwd=root,
                            env=_env(AUTOGRADER_ROOT=str(root)), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def runs(autograder, tmp_path_factory):
    """The three runs at once (each is mostly start-up): the solution uploaded as the
    packer's zip; the dropout bug uploaded as files (Gradescope unpacks an uploaded zip,
    run_autograder zips them in the packer's layout); setup.sh's self-test."""
    buggy = plant(solution_files(), "cs231n/layers.py", DROPOUT_LINE, DROPOUT_BUG)
    roots = {name: tmp_path_factory.mktemp(name) for name in ("solution", "buggy", "self")}
    start = time.monotonic()
    procs = {
        "solution": start_autograder(autograder, roots["solution"],
                                     submission_zip=solution_files()),
        "buggy": start_autograder(autograder, roots["buggy"], submission_files=buggy),
    }
    unpack_like_gradescope(autograder, roots["self"] / "source")
    procs["self"] = subprocess.Popen(
        [sys.executable, "-B", "-m", "instructor_tools.gradescope.run_autograder",
         "--self-test"], cwd=roots["self"] / "source", env=_env(), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    found = {}
    for name, proc in procs.items():
        stdout, _ = proc.communicate(timeout=900)
        TIMINGS[name] = time.monotonic() - start
        results = roots[name] / "results" / "results.json"
        data = json.loads(results.read_text(encoding="utf-8")) if results.is_file() else None
        found[name] = (data, proc.returncode, stdout)
    TIMINGS["all three at once"] = time.monotonic() - start
    return found


@pytest.fixture(scope="module")
def solution_run(runs):
    data, code, stdout = runs["solution"]
    assert data is not None and code == 0, stdout[-4000:]
    return data, stdout


@pytest.fixture(scope="module")
def buggy_run(runs):
    data, code, stdout = runs["buggy"]
    assert data is not None and code == 0, stdout[-4000:]
    return data, stdout


# ---------------------------------------------------------------------------
# The zip
# ---------------------------------------------------------------------------


def test_zip_has_the_scripts_at_its_root_and_carries_the_course(autograder):
    with zipfile.ZipFile(autograder) as archive:
        infos = {i.filename: i for i in archive.infolist()}
        config = json.loads(archive.read(CONFIG_NAME))
        setup = archive.read("setup.sh").decode()
        requirements = archive.read("requirements.txt")
    for script in ("setup.sh", "run_autograder"):
        assert script in infos, "Gradescope needs it at the zip's root"
        assert (infos[script].external_attr >> 16) & 0o111, f"{script} is not executable"
    for rel in ("instructor_tools/grade/grade.py", "instructor_tools/grade/hidden/tests.py",
                "instructor_tools/grade/hidden/reference.py",
                "instructor_tools/grade/rubric.toml", "instructor_tools/grade/worker.py",
                "instructor_tools/gradescope/run_autograder.py", "student_tools/contract.py",
                "student_tools/allowlist.py", "student_tools/cifar10_setup.py",
                "cs231n/layers.py", "cs231n/classifiers/fc_net.py", "cs231n/check.py",
                "BatchNormalization.ipynb", "Dropout.ipynb", "tests/nbval_sanitize.cfg",
                "requirements.txt", "pyproject.toml", "datasets/get_datasets.sh"):
        assert rel in infos, rel
    assert not [n for n in infos if n.startswith(("instructor_tools/tests/", ".venv/",
                                                  "datasets/cifar-10")) or
                "__pycache__" in n or n.endswith("/")]
    # Files the grader copies into the sandbox keep a mode the sandbox's uid can read.
    for rel in ("instructor_tools/grade/worker.py", "instructor_tools/grade/nbval_guard.py",
                "cs231n/check.py", "tests/nbval_sanitize.cfg"):
        assert (infos[rel].external_attr >> 16) & 0o004, rel
    assert requirements == (PROJECT / "requirements.txt").read_bytes()
    assert config["run_notebooks"] is False and config["datasets"] is None
    assert config["items"] == [item.id for item in RUBRIC.items]
    assert config["max_score"] == RUBRIC.max_score
    # setup.sh: filled in, CIFAR-10 off by default, the official md5 ready for --notebooks.
    assert "@" not in "".join(l for l in setup.splitlines() if not l.lstrip().startswith("#"))
    assert "INSTALL_CIFAR10=0" in setup and "c58f30108f718f92721af3b95e74349a" in setup
    assert "requirements.txt" in setup and "bubblewrap" in setup


def test_scripts_are_valid_bash(autograder, tmp_path):
    unpack_like_gradescope(autograder, tmp_path / "source")
    for script in ("setup.sh", "run_autograder"):
        done = subprocess.run(["bash", "-n", str(tmp_path / "source" / script)],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr


def test_notebooks_option_installs_cifar10(tmp_path):
    out = gs_build.build_zip(tmp_path / "nb.zip", run_notebooks=True, deadline=900,
                             visibility="after_due_date", grade_args=["--memory", "2"],
                             overrides=course_overrides())
    with zipfile.ZipFile(out) as archive:
        config = json.loads(archive.read(CONFIG_NAME))
        setup = archive.read("setup.sh").decode()
    assert config["run_notebooks"] is True and config["datasets"] == DATASETS
    assert config["visibility"] == "after_due_date"
    assert config["deadline"] == 900 and config["grade_args"] == ["--memory", "2"]
    assert "INSTALL_CIFAR10=1" in setup and "get_datasets.sh" in setup
    with pytest.raises(gs_build.BuildError):
        gs_build.build_zip(tmp_path / "bad.zip", visibility="sometimes")


def test_zip_is_deterministic(autograder, tmp_path):
    again = gs_build.build_zip(tmp_path / "again.zip", overrides=course_overrides())
    assert again.read_bytes() == autograder.read_bytes()


def test_written_questions_outline_is_beside_the_zip(autograder):
    outline = (autograder.parent / "written_questions.md").read_text(encoding="utf-8")
    for entry in getattr(RUBRIC, "written", ()):
        assert entry.id in outline and entry.heading in outline
    # Students print the executed notebooks from the browser; the packer makes no PDF.
    flat = " ".join(outline.split())
    assert "(JupyterLab: File > Print; Colab: File > Print) and upload that PDF" in flat
    assert "notebooks.pdf" not in outline and "collectSubmission" not in outline


def test_make_target_builds_the_zip():
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    done = subprocess.run(["make", "-n", "gradescope"], cwd=PROJECT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "-m instructor_tools.gradescope" in done.stdout


# ---------------------------------------------------------------------------
# run_autograder: results.json
# ---------------------------------------------------------------------------


def check_format(data):
    """Every field Gradescope reads, present and typed; one test per rubric item."""
    assert _number(data["score"])
    assert isinstance(data["output"], str) and data["output"]
    assert isinstance(data["execution_time"], int)
    assert data["stdout_visibility"] in VISIBILITIES
    assert isinstance(data["extra_data"], dict)
    tests = data["tests"]
    assert isinstance(tests, list) and len(tests) == len(RUBRIC.items)
    for test, item in zip(tests, RUBRIC.items):
        assert set(test) >= {"name", "score", "max_score", "output", "visibility"}
        assert isinstance(test["name"], str) and test["name"].startswith(f"{item.id}: ")
        assert _number(test["score"]) and _number(test["max_score"])
        assert test["max_score"] == item.points and 0 <= test["score"] <= item.points
        assert isinstance(test["output"], str) and test["output"]
        assert test["visibility"] in VISIBILITIES
        assert test["status"] in ("passed", "failed")
    assert data["score"] == sum(t["score"] for t in tests)
    text = json.dumps(data)
    for entry in getattr(RUBRIC, "written", ()):  # the TAs' guide never reaches students
        assert entry.guide[:60] not in text
    json.dumps(data, allow_nan=False)  # plain JSON


def test_solution_scores_the_code_maximum(solution_run):
    """The packer's zip, which holds no notebooks.pdf (students print from the browser)."""
    data, stdout = solution_run
    assert "notebooks.pdf" not in solution_files()
    check_format(data)
    assert RUBRIC.max_score == 34
    assert data["score"] == RUBRIC.max_score, data["output"]
    assert all(t["status"] == "passed" for t in data["tests"])
    output = data["output"]
    assert "Status: ok" in output
    assert "Isolation: " in output and data["extra_data"]["sandbox_kind"] in (
        "bwrap", "unshare", "none")
    for line in data["extra_data"]["isolation"]:
        assert line in output
    assert "Not graded: nothing" in output
    assert "notebook re-execution is off" in output
    assert "the uploaded zip cs231n_submission.zip" in output
    if getattr(RUBRIC, "written", ()):
        assert "Written questions: graded by the course staff" in output
    assert "results.json: score 34" in stdout


def test_dropout_bug_loses_its_item(buggy_run):
    data, _ = buggy_run
    check_format(data)
    assert data["score"] < RUBRIC.max_score
    by_id = {item.id: test for item, test in zip(RUBRIC.items, data["tests"])}
    assert by_id["dropout_forward"]["score"] == 0
    assert by_id["dropout_forward"]["status"] == "failed"
    assert "FAIL" in by_id["dropout_forward"]["output"]
    assert "x / p" in by_id["dropout_forward"]["output"]
    for item_id in ("batchnorm_forward_train", "layernorm_backward", "dropout_backward"):
        assert by_id[item_id]["score"] == by_id[item_id]["max_score"]
    assert "uploaded files zipped in the packer's layout" in data["output"]


def test_self_test_grades_the_course_solution(runs):
    """What setup.sh runs when the image is built: the course's own files score 34."""
    _, code, stdout = runs["self"]
    assert code == 0, stdout[-4000:]
    assert f"self-test passed: the course's solution scores {RUBRIC.max_score:g}" in stdout


def test_timings_are_short(runs, solution_run, buggy_run):
    """No notebook re-execution: each run is a few seconds of grading plus start-up."""
    print("gradescope test timings (s): " +
          ", ".join(f"{k} {v:.1f}" for k, v in TIMINGS.items()))
    assert solution_run[0]["execution_time"] < 120 and buggy_run[0]["execution_time"] < 120


# ---------------------------------------------------------------------------
# Finding the submission, and results without a grade (no grading here: fast)
# ---------------------------------------------------------------------------


def _names(zip_path):
    with zipfile.ZipFile(zip_path) as archive:
        return sorted(archive.namelist())


def test_files_in_one_folder_are_found_and_links_left_out(tmp_path):
    sub = tmp_path / "submission"
    (sub / "my work" / "cs231n").mkdir(parents=True)
    (sub / "my work" / "Dropout.ipynb").write_text("{}")
    (sub / "my work" / "cs231n" / "layers.py").write_text("x = 1\n")
    (sub / "my work" / "cs231n" / "notes.txt").write_text("not a submission file")
    # The PDF printed from the browser, for the written part, uploaded here too: skipped.
    (sub / "my work" / "notebooks.pdf").write_bytes(b"%PDF-1.4\n")
    (sub / "my work" / "cs231n" / "evil.py").symlink_to("/etc/passwd")
    (sub / "__MACOSX").mkdir()
    work = tmp_path / "work"
    work.mkdir()
    zip_path, notes = gs_run.find_submission(sub, work)
    assert _names(zip_path) == ["Dropout.ipynb", "cs231n/layers.py"]
    assert any("my work/" in n for n in notes)
    assert any("cs231n/evil.py" in n and "left out" in n for n in notes)


def test_several_zips_are_refused_unless_one_is_the_packers(tmp_path):
    sub = tmp_path / "submission"
    sub.mkdir()
    write_zip(sub / "a.zip", {"Dropout.ipynb": b"{}"})
    write_zip(sub / "b.zip", {"Dropout.ipynb": b"{}"})
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(gs_run.NotGraded, match="several zips"):
        gs_run.find_submission(sub, work)
    write_zip(sub / "cs231n_submission.zip", {"BatchNormalization.ipynb": b"{}"})
    zip_path, notes = gs_run.find_submission(sub, work)
    assert "BatchNormalization.ipynb" in _names(zip_path)
    assert any("ignored" in n for n in notes)


def test_not_graded_still_lists_every_item(tmp_path):
    config = dict(gs_run.DEFAULTS)
    data = gs_run.results_json(None, RUBRIC, config, ["two zips"], 1.2,
                               error="several zips were uploaded")
    check_format(data)
    assert data["score"] == 0
    assert all("Not graded: several zips" in t["output"] for t in data["tests"])
    assert "Status: not graded: several zips" in data["output"]
    path = gs_run.write_results(tmp_path / "results", data)
    assert json.loads(path.read_text()) == data
