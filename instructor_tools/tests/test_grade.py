"""The grader: the solution scores the maximum, planted bugs lose exactly their items,
every bad submission gets a row and a clear status, nothing the student computes is trusted,
and only the answer regions run (checked against the allow-list before they do).

Each submission here is built from this repository's solution tree (grade_fixtures.py);
no student is needed. Limits are short so that the hostile cases stay fast.
"""
import csv
import json
import re
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest
from markupsafe import escape

from instructor_tools.grade import cli, isolation, notebooks, unpack, written
from instructor_tools.grade import grade as grading
from instructor_tools.grade.hidden import reference
from instructor_tools.grade.hidden import tests as hidden_tests
from instructor_tools.grade import sandbox as sandbox_module
from instructor_tools.grade.rubric import load_rubric
from instructor_tools.grade.sandbox import Limits, Sandbox, detect
from grade_fixtures import (
    PROJECT,
    append,
    plant_in,
    region_body,
    release_form,
    solution_files,
    symlink_info,
    tiny_notebooks,
    write_course,
    write_zip,
)

RUBRIC = load_rubric()
KIND = detect()
ITEM_POINTS = {item.id: item.points for item in RUBRIC.items}
HIDDEN_TESTS_FILE = PROJECT / "instructor_tools" / "grade" / "hidden" / "tests.py"
needs_bwrap = pytest.mark.skipif(KIND != "bwrap", reason="needs bubblewrap as root")


_COURSE = {}


@pytest.fixture(scope="module", autouse=True)
def _course_folder(tmp_path_factory):
    """The course as committed (HEAD): its package, notebooks and sanitizer. The
    submissions here are built from the same commit, so they match it exactly while
    someone edits the working tree."""
    _COURSE["dir"] = write_course(tmp_path_factory.mktemp("course"))


def course_notebooks():
    return _COURSE["dir"]


def options(out, **overrides):
    base = dict(out=Path(out), rubric=RUBRIC, run_notebooks=False,
                course=course_notebooks(), course_notebooks=course_notebooks(),
                sandbox=Sandbox(KIND),
                budget=isolation.Budget(memory_bytes=4 * 2**30, deadline_seconds=240),
                limits=Limits(cpu_seconds=20, wall_seconds=30, memory_bytes=2 * 2**30,
                              processes=48),
                notebook_limits=Limits(cpu_seconds=120, wall_seconds=120,
                                       memory_bytes=3 * 2**30, processes=128),
                op_seconds=5, import_seconds=5)
    base.update(overrides)
    return grading.Options(**base)


def grade_files(tmp_path, files, name="student", **overrides):
    zip_path = write_zip(tmp_path / f"{name}.zip", files)
    opts = options(tmp_path / "out", **overrides)
    return grading.grade_one(zip_path, opts)


def failed_items(result):
    return {item["id"] for item in result["items"] if not item["passed"]}


@pytest.fixture(scope="module")
def solution():
    return solution_files()


# ---------------------------------------------------------------------------
# The rubric against the solution and six planted bugs
# ---------------------------------------------------------------------------


def test_solution_scores_the_maximum(tmp_path, solution):
    result = grade_files(tmp_path, solution)
    assert result["status"] == "ok", result["status_detail"]
    assert result["score"] == RUBRIC.max_score > 0
    assert failed_items(result) == set()
    assert all(check["passed"] for check in result["checks"].values())
    assert {r["state"] for r in result["regions"]} == {"ok"} and result["outside"] == []
    assert result["manifest"] == []
    answers = [state for nb in result["notebooks"] for _, state, _ in nb["answers"]]
    assert answers and set(answers) == {"answered"}


LAYERS = "cs231n/layers.py"
# (path, function whose region is changed, old, new)
PLANTED = {
    "dropout_without_1_over_p": (
        [(LAYERS, "dropout_forward", ".astype(x.dtype) / p",
          ".astype(x.dtype)")],
        {"dropout_forward"}),
    "dgamma_from_x": (
        [(LAYERS, "batchnorm_backward", "dgamma = (dout * x_hat).sum(axis=0)",
          "dgamma = (dout * (x_hat / inv_std)).sum(axis=0)")],
        {"batchnorm_backward"}),
    "unbiased_variance": (
        [(LAYERS, "batchnorm_forward", "var = ((x - mu) ** 2).mean(axis=0)",
          "var = ((x - mu) ** 2).sum(axis=0) / (len(x) - 1)")],
        {"batchnorm_forward_train", "batchnorm_running_averages"}),
    "inverted_momentum": (
        [(LAYERS, "batchnorm_forward",
          "running_mean = momentum * running_mean + (1 - momentum) * mu",
          "running_mean = (1 - momentum) * running_mean + momentum * mu"),
         (LAYERS, "batchnorm_forward",
          "running_var = momentum * running_var + (1 - momentum) * var",
          "running_var = (1 - momentum) * running_var + momentum * var")],
        {"batchnorm_running_averages"}),
    "layernorm_wrong_axis": (
        [(LAYERS, "layernorm_forward", "mu = x.mean(axis=1, keepdims=True)",
          "mu = x.mean(axis=0, keepdims=True)"),
         (LAYERS, "layernorm_forward", "var = ((x - mu) ** 2).mean(axis=1, keepdims=True)",
          "var = ((x - mu) ** 2).mean(axis=0, keepdims=True)")],
        {"layernorm_forward"}),
    "network_skips_dropout": (
        [("cs231n/classifiers/fc_net.py", "FullyConnectedNet.loss",
          "out, dropout_cache = dropout_forward(out, self.dropout_param)",
          "dropout_cache = None")],
        {"network_dropout"}),
    "network_gamma_zeros": (
        [("cs231n/classifiers/fc_net.py", "FullyConnectedNet.__init__",
          'self.params[f"gamma{i}"] = np.ones(dim)',
          'self.params[f"gamma{i}"] = np.zeros(dim) + 0.5')],
        {"network_init"}),
    "alt_delegates_to_staged": (
        [(LAYERS, "batchnorm_backward_alt",
          "dx = (gamma * inv_std / N) * (N * dout - dbeta - x_hat * dgamma)",
          "dx, dgamma, dbeta = batchnorm_backward(dout, cache)")],
        {"batchnorm_backward_alt_closed_form"}),
}


@pytest.mark.parametrize("bug", sorted(PLANTED))
def test_planted_bug_loses_exactly_its_items(tmp_path, solution, bug):
    changes, broken = PLANTED[bug]
    files = solution
    for path, function, old, new in changes:
        files = plant_in(files, path, function, old, new)
    result = grade_files(tmp_path, files)
    assert result["status"] == "ok", result["status_detail"]
    assert failed_items(result) == broken
    assert result["score"] == RUBRIC.max_score - sum(ITEM_POINTS[i] for i in broken)
    # Every failed item says why, from the grader's comparison, and carries a hint; a
    # network item says it ran on the course's layers.
    for item in result["items"]:
        if not item["passed"]:
            assert any(t["message"] for t in item["tests"] if not t["passed"])
            assert item["hint"]
            if item["id"].startswith("network"):
                assert "FullyConnectedNet" in item["related"]


def test_feedback_lists_every_item_and_escapes_student_text(tmp_path, solution):
    files = region_body(solution, LAYERS, "dropout_backward",
                        'raise ValueError("<script>alert(1)</script>")')
    result = grade_files(tmp_path, files, name="evil")
    assert "dropout_backward" in failed_items(result)
    page = (tmp_path / "out" / "feedback" / "evil.html").read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;" in page
    ok = grade_files(tmp_path, solution, name="good")
    page = (tmp_path / "out" / "feedback" / "good.html").read_text(encoding="utf-8")
    for item in ok["items"]:
        assert str(escape(item["title"])) in page
    # Instructor-only details stay off the student's page.
    assert ok["sha256"] not in page and "bubblewrap" not in page and "uid" not in page


# ---------------------------------------------------------------------------
# Bad zips: refused before anything runs
# ---------------------------------------------------------------------------


def test_corrupt_zip(tmp_path):
    path = tmp_path / "junk.zip"
    path.write_bytes(b"PK\x03\x04 this is not a zip" * 10)
    result = grading.grade_one(path, options(tmp_path / "out"))
    assert result["status"] == "corrupt_zip" and result["score"] == 0
    # The feedback still lists every graded item, with 0 points and why.
    assert [i["id"] for i in result["items"]] == [i.id for i in RUBRIC.items]
    assert all(i["earned"] == 0 and "not run" in i["tests"][0]["message"]
               for i in result["items"])
    page = (tmp_path / "out" / "feedback" / "junk.html").read_text(encoding="utf-8")
    assert all(i.title.replace("'", "&#x27;") in page for i in RUBRIC.items)


def test_truncated_zip(tmp_path, solution):
    whole = write_zip(tmp_path / "whole.zip", solution).read_bytes()
    path = tmp_path / "cut.zip"
    path.write_bytes(whole[: len(whole) // 2])
    assert grading.grade_one(path, options(tmp_path / "out"))["status"] == "corrupt_zip"


@pytest.mark.parametrize("name", ["/etc/cs231n/layers.py", "cs231n/../../evil.py",
                                  "cs231n/a\nb.py", "..\\evil.py"])
def test_unsafe_member_names(tmp_path, solution, name):
    zip_path = write_zip(tmp_path / "s.zip", solution,
                         infos=[(zipfile.ZipInfo(name), b"print('x')")])
    result = grading.grade_one(zip_path, options(tmp_path / "out"))
    assert result["status"] == "unsafe_zip"
    assert not list((tmp_path.parent).glob("evil.py"))


def test_symlink_member(tmp_path, solution):
    files = dict(solution)
    del files["cs231n/optim.py"]
    zip_path = write_zip(tmp_path / "s.zip", files,
                         infos=[(symlink_info("cs231n/optim.py"), b"/etc/shadow")])
    result = grading.grade_one(zip_path, options(tmp_path / "out"))
    assert result["status"] == "unsafe_zip" and "symbolic link" in result["status_detail"]


def test_zip_bomb_declared_size(tmp_path, solution, monkeypatch):
    monkeypatch.setattr(unpack, "MAX_FILE_BYTES", 4 * 2**20)
    files = dict(solution, **{"cs231n/big.py": b"#" * (6 * 2**20)})
    result = grading.grade_one(write_zip(tmp_path / "s.zip", files), options(tmp_path / "out"))
    assert result["status"] == "zip_bomb"


def test_zip_bomb_forged_header(tmp_path, solution):
    """A member whose headers declare fewer bytes than it holds is stopped while reading."""
    files = dict(solution, **{"cs231n/big.py": b"#" * 200_000})
    path = write_zip(tmp_path / "s.zip", files)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("cs231n/big.py")
    # Patch the uncompressed size (local header at offset 22, central directory at 24).
    forged = (1000).to_bytes(4, "little")
    data[info.header_offset + 22: info.header_offset + 26] = forged
    central = data.find(b"PK\x01\x02")
    while central != -1:
        name_len = int.from_bytes(data[central + 28: central + 30], "little")
        if data[central + 46: central + 46 + name_len] == b"cs231n/big.py":
            data[central + 24: central + 28] = forged
        central = data.find(b"PK\x01\x02", central + 4)
    path.write_bytes(bytes(data))
    result = grading.grade_one(path, options(tmp_path / "out"))
    assert result["status"] in ("zip_bomb", "corrupt_zip")
    assert result["score"] == 0


def test_missing_files(tmp_path, solution):
    files = {k: v for k, v in solution.items() if k != "cs231n/layers.py"}
    result = grade_files(tmp_path, files)
    assert result["status"] == "missing_files" and "cs231n/layers.py" in result["status_detail"]
    assert result["score"] == 0


def test_manifest_is_verified_not_trusted(tmp_path, solution):
    files = plant_in(solution, LAYERS, "batchnorm_backward", "dbeta = dout.sum(axis=0)",
                     "dbeta = 0 * dout.sum(axis=0)")
    zip_path = tmp_path / "s.zip"
    write_zip(zip_path, files, manifest=False,
              infos=[(zipfile.ZipInfo("MANIFEST"), b"0" * 64 + b"  cs231n/layers.py\n")])
    result = grading.grade_one(zip_path, options(tmp_path / "out"))
    assert any("does not match" in m for m in result["manifest"])
    assert "batchnorm_backward" in failed_items(result)


# ---------------------------------------------------------------------------
# Only the answer regions run, and only after the allow-list accepted them
# ---------------------------------------------------------------------------

DROPOUT_ITEMS = {"dropout_backward"}


def test_code_outside_the_regions_never_runs(tmp_path, solution):
    """Module-level code (an exception at import, the network, the hidden tests, a
    replaced numpy, an IPython hook) is listed as not graded and never runs."""
    code = (f"raise RuntimeError('boom')\n"
            f"import socket\nsocket.create_connection(('192.0.2.1', 80), timeout=3)\n"
            f"_stolen = open({str(HIDDEN_TESTS_FILE)!r}).read()\n"
            f"import numpy as _np\n_np.allclose = lambda *a, **k: True")
    files = append(solution, LAYERS, code)
    files = append(files, "cs231n/__init__.py", "import os\nos.system('touch /tmp/pwned')")
    result = grade_files(tmp_path, files)
    assert result["status"] == "ok", result["status_detail"]
    assert result["score"] == RUBRIC.max_score
    listed = "\n".join(result["outside"])
    assert "cs231n/layers.py" in listed and "RuntimeError('boom')" in listed
    assert "cs231n/__init__.py" in listed and "not graded" in listed


FORBIDDEN = {
    "import": "import os\nos.fork()\ndx = dout",
    "network": "import socket\nsocket.create_connection(('192.0.2.1', 80))\ndx = dout",
    "read the hidden tests": f"dx = dout\nstolen = open({str(HIDDEN_TESTS_FILE)!r}).read()",
    "dunder import": "os = __import__('os')\ndx = dout",
    "monkeypatch numpy": "np.allclose = lambda *a, **k: True\ndx = dout * cache['mask']",
    "erase the worker's records": "dx = dout\nopen('/proc/self/fd/3', 'w').write('')",
    "getattr": "dx = getattr(np, 'load')('/in/arrays.npz')",
    "frame walk": "g = (i for i in [])\nf = g.gi_frame.f_back.f_globals\ndx = dout",
    "np.load": "dx = np.load('/in/arrays.npz')['x']",
    "class escape": "dx = ().__class__.__bases__[0]",
}


@pytest.mark.parametrize("payload", sorted(FORBIDDEN))
def test_forbidden_code_in_a_region_is_refused_and_not_run(tmp_path, solution, payload):
    files = region_body(solution, LAYERS, "dropout_backward", FORBIDDEN[payload])
    result = grade_files(tmp_path, files)
    assert result["status"] == "forbidden_code", result["status_detail"]
    # The region did not run: its items fail with the reason; every other item scores.
    assert failed_items(result) == DROPOUT_ITEMS
    assert result["score"] == RUBRIC.max_score - sum(ITEM_POINTS[i] for i in DROPOUT_ITEMS)
    region = next(r for r in result["regions"] if r["function"] == "dropout_backward")
    assert region["state"] == "forbidden" and region["refusals"]
    text = files[LAYERS].decode().splitlines()[region["refusals"][0]["line"] - 1]
    assert text.strip() == region["refusals"][0]["text"]
    page = (tmp_path / "out" / "feedback" / "student.html").read_text(encoding="utf-8")
    assert "not run" in page


def test_honest_styles_are_not_refused(tmp_path, solution):
    body = ("def scale(v, m):\n    return v * m\n"
            "flat = lambda a: a.reshape(len(a), -1)\n"
            "pairs = zip(flat(dout), flat(cache['mask']))\n"
            "dx = np.stack([scale(v, m) for v, m in pairs]).reshape(dout.shape)\n"
            "total = np.einsum('ij->i', flat(dx)).sum(keepdims=True)\n"
            "assert dx.shape == dout.shape, f'{dx.shape} != {dout.shape}'")
    result = grade_files(tmp_path, region_body(solution, LAYERS, "dropout_backward", body))
    assert result["status"] == "ok", result["status_detail"]
    assert result["score"] == RUBRIC.max_score


def test_a_region_that_does_not_parse_costs_only_its_items(tmp_path, solution):
    result = grade_files(tmp_path, region_body(solution, LAYERS, "dropout_backward",
                                               "dx = (dout *"))
    assert result["status"] == "syntax_error" and "syntax" in result["status_detail"]
    assert failed_items(result) == DROPOUT_ITEMS


def test_delegation_through_an_alias_is_caught(tmp_path, solution):
    """A module-level alias never runs (and the region may not name it); an alias made in
    the region still calls what the grader replaced."""
    files = append(solution, LAYERS, "_staged = batchnorm_backward")
    files = region_body(files, LAYERS, "batchnorm_backward_alt",
                        "return _staged(dout, cache)")
    result = grade_files(tmp_path, files, name="module_alias")
    assert result["status"] == "forbidden_code"
    assert "batchnorm_backward_alt_closed_form" in failed_items(result)
    files = region_body(solution, LAYERS, "batchnorm_backward_alt",
                        "staged = batchnorm_backward\nreturn staged(dout, cache)")
    result = grade_files(tmp_path, files, name="local_alias")
    assert failed_items(result) == {"batchnorm_backward_alt_closed_form"}


def test_infinite_loop_in_one_function_costs_its_items_only(tmp_path, solution):
    files = region_body(solution, LAYERS, "dropout_backward",
                        "while True:\n    pass\ndx = dout")
    result = grade_files(tmp_path, files, op_seconds=2)
    assert result["status"] == "timeout"
    assert failed_items(result) == DROPOUT_ITEMS


def test_a_loop_past_the_wall_clock_is_killed(tmp_path, solution):
    files = region_body(solution, LAYERS, "batchnorm_forward", "while True:\n    pass")
    result = grade_files(tmp_path, files, op_seconds=60,
                         limits=Limits(cpu_seconds=60, wall_seconds=6, memory_bytes=2 * 2**30,
                                       processes=48))
    assert result["status"] == "timeout"
    assert result["score"] < RUBRIC.max_score


def test_memory_hog(tmp_path, solution):
    files = region_body(solution, LAYERS, "dropout_backward",
                        "hog = np.ones(2**31)\ndx = dout")
    result = grade_files(tmp_path, files)
    assert result["status"] == "memory_limit", result["status_detail"]
    assert DROPOUT_ITEMS <= failed_items(result)


def test_student_check_module_is_not_used_for_hints(tmp_path, solution):
    files = dict(solution, **{"cs231n/check.py": b"raise SystemExit('forged check')\n"})
    files = plant_in(files, LAYERS, "batchnorm_backward", "dgamma = (dout * x_hat).sum(axis=0)",
                     "dgamma = (dout * (x_hat / inv_std)).sum(axis=0)")
    result = grade_files(tmp_path, files)
    item = next(i for i in result["items"] if i["id"] == "batchnorm_backward")
    assert not item["passed"] and result["checks"]["batchnorm_backward"]["passed"] is False
    assert any("cs231n/check.py" in line for line in result["outside"])


# ---------------------------------------------------------------------------
# The sandbox itself
# ---------------------------------------------------------------------------


@needs_bwrap
def test_sandbox_hides_instructor_files_and_network(tmp_path):
    uid = isolation.UidAllocator().allocate()
    sandbox = Sandbox("bwrap", uid=uid)
    code = ("import os, socket\n"
            f"print('hidden', os.path.exists({str(HIDDEN_TESTS_FILE)!r}))\n"
            f"print('project', sorted(os.listdir({str(PROJECT)!r})))\n"
            "try:\n    socket.create_connection(('192.0.2.1', 80), timeout=2)\n"
            "except OSError as e:\n    print('net', e.errno)\n"
            "open('/tmp/mine', 'w').write('x'); print('tmp', sorted(os.listdir('/tmp')))\n"
            "print('uid', os.getuid())")
    run = sandbox.run([grading.sys.executable, "-I", "-c", code], [], cwd="/tmp",
                      env={"PATH": "/usr/bin"}, limits=Limits(wall_seconds=30))
    assert run.returncode == 0, run.stderr
    assert "hidden False" in run.stdout
    assert "project ['.venv']" in run.stdout
    assert "net 101" in run.stdout  # ENETUNREACH: no route out of the namespace
    # /tmp is a fresh tmpfs: 'mine', plus the folder holding the Python environment where
    # that lies under /tmp on the host (bubblewrap makes its parents to bind it).
    python_tmp_parents = sorted({Path(r).parts[2] for r in sandbox_module._python_roots()
                                 if Path(r).parts[1:2] == ("tmp",)})
    assert f"tmp {sorted(['mine', *python_tmp_parents])}" in run.stdout, run.stdout
    assert f"uid {uid}" in run.stdout


# ---------------------------------------------------------------------------
# Gradebook, re-runs, shards
# ---------------------------------------------------------------------------


def test_cli_gradebook_rerun_shards_and_merge(tmp_path, solution, capsys):
    subs = tmp_path / "subs"
    subs.mkdir()
    write_zip(subs / "alice.zip", solution)
    write_zip(subs / "bob.zip", region_body(solution, LAYERS, "dropout_backward",
                                            "import os\ndx = dout"))
    (subs / "carol.zip").write_bytes(b"not a zip")
    out = tmp_path / "out"
    course = ["--course", str(course_notebooks())]
    args = [str(subs), "--out", str(out), "--no-notebooks", "--no-pdf", "--quiet", "--jobs", "2",
            "--timeout", "30", *course]
    assert cli.main(args) == 0
    rows = {r["submission"]: r for r in csv.DictReader(open(out / "grades.csv"))}
    assert set(rows) == {"alice", "bob", "carol"}
    assert rows["alice"]["score"] == f"{RUBRIC.max_score:g}" and rows["alice"]["status"] == "ok"
    assert rows["bob"]["status"] == "forbidden_code" and rows["carol"]["status"] == "corrupt_zip"
    for column in ("submission", "score", "max_score", "status", "outputs_reproduce"):
        assert column in rows["alice"]
    assert all((out / "feedback" / f"{n}.html").is_file() for n in rows)
    assert "3 submission(s) graded" in capsys.readouterr().out

    # A re-run reuses every result; a changed zip is graded again.
    assert cli.main(args) == 0
    assert "3 reused" in capsys.readouterr().out
    write_zip(subs / "alice.zip", append(solution, LAYERS, "# resubmitted"))
    assert cli.main(args) == 0
    assert "2 reused" in capsys.readouterr().out

    # Shards into separate folders, then merged: the same gradebook.
    shard_outs = []
    for k in (1, 2):
        shard_out = tmp_path / f"shard{k}"
        assert cli.main([str(subs), "--out", str(shard_out), "--no-notebooks", "--no-pdf", "--quiet",
                         "--shard", f"{k}/2", *course]) == 0
        shard_outs.append(shard_out)
    graded = [json.loads(p.read_text())["submission"] for s in shard_outs
              for p in (s / "results").glob("*.json")]
    assert sorted(graded) == ["alice", "bob", "carol"]
    merged = tmp_path / "merged"
    assert cli.main(["merge", *map(str, shard_outs), "--out", str(merged)]) == 0
    merged_rows = {r["submission"]: r for r in csv.DictReader(open(merged / "grades.csv"))}
    assert {k: v["score"] for k, v in merged_rows.items()} == \
        {k: v["score"] for k, v in rows.items()}


def test_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        cli.main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit):
        cli.main([str(tmp_path), "--out", str(tmp_path / "out"), "--shard", "3/2"])
    bad = tmp_path / "rubric.toml"
    bad.write_text('[[item]]\nid = "x"\npoints = 1\ntests = ["no_such_test"]\n')
    with pytest.raises(ValueError, match="no_such_test"):
        load_rubric(bad)
    bad.write_text('[[item]]\nid = "x"\npoints = -1\ntests = ["bn_test"]\n')
    with pytest.raises(ValueError, match="points"):
        load_rubric(bad)


@pytest.mark.parametrize("folder", ["merge", "grade"])
def test_a_submissions_folder_named_like_a_subcommand_is_graded(tmp_path, monkeypatch, folder):
    monkeypatch.chdir(tmp_path)
    (tmp_path / folder).mkdir()
    (tmp_path / folder / "dan.zip").write_bytes(b"not a zip")  # refused before anything runs
    assert cli.main(["grade", folder, "--out", "out", "--no-notebooks", "--no-pdf", "--quiet",
                     "--course", str(course_notebooks())]) == 0
    rows = list(csv.DictReader(open(tmp_path / "out" / "grades.csv", encoding="utf-8")))
    assert [(r["submission"], r["status"]) for r in rows] == [("dan", "corrupt_zip")]


@pytest.mark.parametrize("timeout, cpu", [("0.5", 1), ("1", 1), ("2.5", 3), ("180", 180)])
def test_the_cpu_limit_is_the_timeout_rounded_up(timeout, cpu):
    args = cli.build_parser().parse_args(["grade", "subs", "--out", "out", "--timeout", timeout,
                                          "--notebook-timeout", timeout])
    opts = cli.grading_options(args, RUBRIC)
    assert opts.limits.cpu_seconds == opts.notebook_limits.cpu_seconds == cpu
    assert opts.limits.wall_seconds == opts.notebook_limits.wall_seconds == float(timeout)


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "inf", "soon"])
def test_a_timeout_that_is_not_positive_is_refused(tmp_path, capsys, bad):
    with pytest.raises(SystemExit):
        cli.main(["grade", str(tmp_path), "--out", str(tmp_path / "out"), "--timeout", bad])
    assert f"--timeout: expected seconds > 0, got '{bad}'" in capsys.readouterr().err


def test_the_summary_median_is_the_middle_of_the_scores():
    results = [{"status": "ok", "score": s, "outputs_reproduce": "not checked"}
               for s in (1, 2, 3, 10)]
    assert "min 1, median 2.5, max 10" in cli.summary(results, 34)
    assert "median 2," in cli.summary(results[:3], 34)


def test_csv_files_are_written_by_the_one_atomic_helper(tmp_path, monkeypatch):
    zip_path = tmp_path / "ann.zip"
    zip_path.write_bytes(b"not a zip")
    result = grading.grade_one(zip_path, options(tmp_path / "out"))
    out = tmp_path / "csv"
    out.mkdir()
    (out / "grades.csv").write_text("the previous gradebook")
    writes = []

    def failing(path, data):  # as a full disk would, after the data is prepared
        writes.append(Path(path).name)
        raise OSError("disk full")

    monkeypatch.setattr(cli, "write_atomic", failing)
    monkeypatch.setattr(written, "write_atomic", failing)
    with pytest.raises(OSError):
        cli.write_gradebook(out / "grades.csv", [result], RUBRIC)
    with pytest.raises(OSError):
        written.write_template(out / "written.csv", [result], RUBRIC)
    assert writes == ["grades.csv", "written.csv"]
    assert [p.name for p in out.iterdir()] == ["grades.csv"]
    assert (out / "grades.csv").read_text() == "the previous gradebook"
    monkeypatch.undo()
    cli.write_gradebook(out / "grades.csv", [result], RUBRIC)
    written.write_template(out / "written.csv", [result], RUBRIC)
    for name in ("grades.csv", "written.csv"):
        assert (out / name).stat().st_mode & 0o777 == 0o644  # the TAs can read it
    assert sorted(p.name for p in out.iterdir()) == ["grades.csv", "written.csv"]


# ---------------------------------------------------------------------------
# Notebooks: static checks (fast) and re-execution (tiny notebooks)
# ---------------------------------------------------------------------------


def _course_questions(name):
    return notebooks.course_questions(course_notebooks() / name)


def test_answers_reported_per_question(tmp_path):
    import nbformat
    nb = nbformat.read(course_notebooks() / "Dropout.ipynb", as_version=4)
    answer_cells = [i for i, c in enumerate(nb.cells) if "BEGIN ANSWER" in c.source]
    del nb.cells[answer_cells[1]]  # the second answer cell deleted
    nb.cells[answer_cells[2] - 1].source = ("<!-- BEGIN ANSWER -->\n*Your answer:* (write here)"
                                            "\n<!-- END ANSWER -->")
    path = tmp_path / "Dropout.ipynb"
    nbformat.write(nb, path)
    report = notebooks.check_notebook(path, _course_questions("Dropout.ipynb"))
    states = [state for _, state, _ in report.answers]
    assert states == ["answered", "missing", "unanswered"]


def test_never_run_and_hidden_errors_are_reported(tmp_path):
    from grade_fixtures import tiny_notebook
    never = tmp_path / "never.ipynb"
    never.write_bytes(tiny_notebook([("print(1)", None, ()), ("print(2)", None, ())]))
    assert notebooks.check_notebook(never, []).never_run
    hidden = tmp_path / "hidden.ipynb"
    hidden.write_bytes(tiny_notebook([("print(1)", "1\n", ()),
                                      ("1 / 0", None, ("raises-exception",))]))
    problems = notebooks.check_notebook(hidden, []).problems
    assert any("raises-exception" in p for p in problems)


def _reexec(tmp_path, files, course=None, student=None, **overrides):
    """Grade files with tiny notebooks: course (the course's cells, {name: bytes}) is what
    runs; student ({name: bytes}, default: the course's as they are) is what was submitted
    (its stored outputs are compared)."""
    course = course or tiny_notebooks()
    folder = tmp_path / "tiny-course"
    folder.mkdir(exist_ok=True)
    for name, data in course.items():
        (folder / name).write_bytes(data)
    files = {k: v for k, v in files.items() if not k.endswith(".ipynb")}
    files.update(student or course)
    overrides.setdefault("course_notebooks", folder)
    return grade_files(tmp_path, files, run_notebooks=True, **overrides)


@pytest.mark.slow
def test_reexecution_honest_tiny_notebooks_reproduce(tmp_path, solution):
    result = _reexec(tmp_path, solution)
    assert result["outputs_reproduce"] == "yes", result["notebooks"]


BN_CELLS = [("import numpy as np", None, ()),
            ("print('dgamma error:', 3.14e-11)", "dgamma error: 3.14e-11\n", ()),
            ("print('dgamma error:', 0.5)", "dgamma error: 0.5\n", ())]


@pytest.mark.slow
def test_reexecution_finds_forged_outputs_and_never_run(tmp_path, solution):
    course = tiny_notebooks(BN_CELLS)
    forged = [*BN_CELLS[:2], ("print('dgamma error:', 0.5)", "dgamma error: 3.14e-11\n", ())]
    dropout = [("print(1)", None, ()), ("print(2)", None, ())]  # never run
    student = tiny_notebooks(forged, dropout)
    result = _reexec(tmp_path, solution, course, student)
    assert result["outputs_reproduce"].startswith("no")
    bn_entry, dropout_entry = result["notebooks"]
    differ = dict(bn_entry["reexec"]["differ"])
    assert len(differ) == 1
    (label,) = differ
    assert "[3]" in label and "print('dgamma error:', 0.5)" in label  # as JupyterLab shows it
    assert dropout_entry["never_run"]
    assert "never run" in result["outputs_reproduce"]


@pytest.mark.slow
def test_student_tags_cannot_forge_reproduction(tmp_path, solution):
    """Stub code with the right outputs, every cell tagged to be skipped or not compared:
    only the course's tags apply, so the forged outputs are compared and differ."""
    course = tiny_notebooks()
    files = region_body(solution, LAYERS, "batchnorm_forward", "out = x * 0")
    tagged = {}
    for name, data in course.items():
        nb = nbformat_reads(data)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.metadata["tags"] = ["nbval-skip", "nbval-ignore-output"]
                cell.source = "# NBVAL_SKIP\n" + cell.source
        tagged[name] = nbformat_writes(nb)
    result = _reexec(tmp_path, files, course, tagged)
    assert result["outputs_reproduce"].startswith("no"), result["outputs_reproduce"]
    assert any("changed outside the answer regions" in o for o in result["outside"])


@pytest.mark.slow
def test_a_kernel_replay_hook_in_the_package_never_runs(tmp_path, solution):
    """A package that installs an IPython input transformer replaying the stored outputs:
    outside the regions it never runs; inside one it is refused."""
    hook = ("try:\n    ip = get_ipython()\n"
            "    ip.input_transformers_post.append(lambda lines: ['pass\\n'])\n"
            "except NameError:\n    pass")
    files = region_body(solution, LAYERS, "batchnorm_forward", "out = x * 0")
    files = append(files, "cs231n/__init__.py", hook)
    course = tiny_notebooks()
    result = _reexec(tmp_path, files, course)
    assert result["outputs_reproduce"].startswith("no"), result["outputs_reproduce"]
    files = region_body(solution, LAYERS, "batchnorm_forward",
                        "ip = get_ipython()\nout = x")
    result = _reexec(tmp_path, files, course, name="inside")
    assert result["status"] == "forbidden_code"


@pytest.mark.slow
def test_a_kernel_only_sleep_ends_at_the_submission_deadline(tmp_path, solution):
    """The region spins only on the notebook's input, so the hidden tests pass quickly and
    the notebook kernel hangs: the submission's deadline ends it."""
    import time
    files = region_body(solution, LAYERS, "dropout_backward",
                        "while dout.shape == (3, 11):\n    pass\ndx = dout * cache['mask']")
    cells = [("import numpy as np\nfrom cs231n.layers import dropout_forward, "
              "dropout_backward", None, ()),
             ("out, cache = dropout_forward(np.ones((3, 11)), {'mode': 'train', 'p': 0.5, "
              "'seed': 1})\nprint(dropout_backward(np.ones((3, 11)), cache).shape)",
              "(3, 11)\n", ())]
    course = tiny_notebooks(dropout_cells=cells)
    start = time.monotonic()
    result = _reexec(tmp_path, files, course,
                     budget=isolation.Budget(memory_bytes=4 * 2**30, deadline_seconds=45))
    assert time.monotonic() - start < 90
    assert result["status"] == "timeout", result["status_detail"]
    assert result["outputs_reproduce"].startswith("no")


def nbformat_reads(data):
    import nbformat
    return nbformat.reads(data.decode("utf-8"), as_version=4)


def nbformat_writes(nb):
    import nbformat
    return nbformat.writes(nb).encode("utf-8")


@pytest.mark.slow
def test_real_notebooks_of_the_solution_reproduce(tmp_path, solution):
    """End to end on the real notebooks (about 60-100 s)."""
    result = grade_files(tmp_path, solution, run_notebooks=True,
                         notebook_limits=Limits(cpu_seconds=900, wall_seconds=900,
                                                memory_bytes=4 * 2**30, processes=256))
    assert result["score"] == RUBRIC.max_score
    assert result["outputs_reproduce"] == "yes", [nb["reexec"] for nb in result["notebooks"]]


# ---------------------------------------------------------------------------
# The reference the verdicts rest on, against centred differences
# ---------------------------------------------------------------------------


def _numerical(f, x, h=1e-6):
    """Centred differences of the scalar f() with respect to x (changed in place)."""
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        old = x[index]
        x[index] = old + h
        plus = f()
        x[index] = old - h
        minus = f()
        x[index] = old
        grad[index] = (plus - minus) / (2 * h)
    return grad


@pytest.mark.parametrize("axis", [0, 1])
def test_reference_norm_backward_matches_centred_differences(axis):
    rng = np.random.default_rng(40 + axis)
    x = rng.standard_normal((6, 5)) * 2 + 1
    gamma, beta = rng.uniform(0.5, 2, 5), rng.standard_normal(5)
    dout = rng.standard_normal((6, 5))  # random upstream: a sum() upstream hides bugs

    def forward():
        if axis == 0:
            return reference.batchnorm_train(x, gamma, beta, 1e-5)
        out, x_hat, inv_std = reference.layernorm(x, gamma, beta, 1e-5)
        return out, None, None, x_hat, inv_std

    _, _, _, x_hat, inv_std = forward()
    dx, dgamma, dbeta = reference.norm_backward(dout, x_hat, inv_std, gamma, axis)
    loss = lambda: float((forward()[0] * dout).sum())  # noqa: E731
    for analytic, wrt in ((dx, x), (dgamma, gamma), (dbeta, beta)):
        numeric = _numerical(loss, wrt)
        assert hidden_tests.rel_error(analytic, numeric) < 1e-7


@pytest.mark.parametrize("normalization,keep", [(None, 1), ("batchnorm", 1),
                                                ("layernorm", 1), (None, 0.6),
                                                ("batchnorm", 0.75)])
def test_reference_network_matches_centred_differences(normalization, keep):
    rng = np.random.default_rng(7)
    params = hidden_tests._net_params(rng, normalization)
    X = rng.standard_normal((5, hidden_tests.NET["input_dim"]))
    y = rng.integers(0, hidden_tests.NET["num_classes"], 5)
    masks = None
    if keep != 1:
        masks = [(rng.random((5, d)) < keep) / keep for d in hidden_tests.NET["hidden_dims"]]
    _, grads = reference.network_loss(params, X, y, normalization, masks, reg=0.1)
    for key, value in params.items():
        numeric = _numerical(
            lambda: reference.network_loss(params, X, y, normalization, masks, 0.1)[0], value)
        # Biases before batch norm have a zero gradient: compare on the layer's scale.
        scale = max(np.abs(grads[key]).max(), np.abs(numeric).max(), 1e-3)
        assert np.abs(grads[key] - numeric).max() / scale < 1e-6, key


def test_reference_forward_conventions():
    """Biased variance, eps inside the root, running average weights, by hand."""
    x = np.array([[1.0, 10.0], [3.0, 14.0]])
    out, mu, var, _, _ = reference.batchnorm_train(x, np.ones(2), np.zeros(2), 0.0)
    np.testing.assert_allclose(var, [1.0, 4.0], rtol=1e-15)  # divides by N = 2
    np.testing.assert_allclose(out, [[-1, -1], [1, 1]], rtol=1e-15)
    assert reference.running_average(10.0, 0.0, 0.9) == pytest.approx(9.0, rel=1e-15)


@pytest.mark.parametrize("kind", ["unshare", "none"])
def test_fallback_isolation_is_reported(tmp_path, solution, kind):
    if kind == "unshare" and detect("unshare") != "unshare":
        pytest.skip("unshare -n is not usable here")
    result = grade_files(tmp_path, solution, sandbox=Sandbox(kind))
    assert result["status"] == "ok", result["status_detail"]
    assert result["score"] == RUBRIC.max_score
    assert result["sandbox_kind"] == kind and "FALLBACK" in result["sandbox"]
    assert any("FALLBACK" in line for line in result["isolation"])
    # An instructor's matter: in results/ and the gradebook, not on the student's page.
    page = (tmp_path / "out" / "feedback" / "student.html").read_text(encoding="utf-8")
    assert "FALLBACK" not in page


def test_grade_bench_reports_seconds_and_memory_per_submission():
    from instructor_tools.benchmarks import grade_bench
    results = grade_bench.run(count=2, notebooks=False, jobs=1, log=lambda m: None)
    assert [r["status"] for r in results["rows"]] == ["ok", "ok"]
    assert all(r["score"] == RUBRIC.max_score for r in results["rows"])
    assert all(r["seconds"] > 0 and r["worker_s"] > 0 for r in results["rows"])
    assert results["peak_tree_mib"] > 10 and results["largest_process_mib"] > 10
    text = grade_bench.report(results)
    assert text.count("| student-00") == 2 and "Peak memory" in text


def test_submission_names_are_safe_and_distinct():
    assert grading.safe_name("alice.zip") == "alice"
    odd = [grading.safe_name(n) for n in ("a b.zip", "a_b.zip", "a/b.zip", "../x.zip",
                                          "<script>.zip")]
    assert len(set(odd)) == len(odd)
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*", n) for n in odd)


def test_endless_output_is_cut_by_the_file_size_limit(tmp_path, solution):
    files = region_body(solution, LAYERS, "batchnorm_forward",
                        "while True:\n    print('x' * 65536)")
    result = grade_files(tmp_path, files,
                         limits=Limits(cpu_seconds=20, wall_seconds=30, memory_bytes=2 * 2**30,
                                       processes=48, file_bytes=2**20))
    # Python ignores SIGXFSZ, so the write fails with EFBIG ("File too large").
    assert result["status"] == "output_limit", result["status_detail"]
    assert result["score"] < RUBRIC.max_score


@needs_bwrap
def test_private_tmp_is_size_capped(tmp_path):
    sandbox = Sandbox("bwrap", uid=isolation.UidAllocator().allocate())
    code = ("import os\nn = 0\ntry:\n    for i in range(100):\n"
            "        open(f'/tmp/f{i}', 'wb').write(b'x' * 2**20); n += 1\n"
            "except OSError as e:\n    print('stopped', n, e.errno)")
    run = sandbox.run([grading.sys.executable, "-I", "-c", code], [], cwd="/tmp",
                      env={"PATH": "/usr/bin"},
                      limits=Limits(wall_seconds=30, tmp_bytes=8 * 2**20))
    assert "stopped" in run.stdout and int(run.stdout.split()[1]) < 9, run.stdout + run.stderr


@pytest.mark.slow
@needs_bwrap
def test_kernel_cannot_reach_the_nbval_report(tmp_path, solution):
    """Code in the kernel tries to open every file descriptor of pytest (the report's among
    them); the cell prints how many it opened, and the stored output says 0. (Course code
    here: a student's code cannot even name the files, the allow-list refuses it.)"""
    tamper = ("import glob, os\nopened = 0\n"
              "for fd in glob.glob(f'/proc/{os.getppid()}/fd/*'):\n"
              "    try:\n        open(fd, 'a').close()\n        opened += 1\n"
              "    except OSError:\n        pass\n"
              "try:\n    open(f'/proc/{os.getppid()}/mem', 'rb').close()\n    opened += 1\n"
              "except OSError:\n    pass\nprint('opened', opened)")
    course = tiny_notebooks([(tamper, "opened 0\n", ()),
                             ("print('dgamma error:', 0.5)", "dgamma error: 0.5\n", ())])
    student = tiny_notebooks([(tamper, "opened 0\n", ()),
                              ("print('dgamma error:', 0.5)", "dgamma error: 3.14e-11\n", ())])
    result = _reexec(tmp_path, solution, course, student)
    differ = dict(result["notebooks"][0]["reexec"]["differ"])
    assert len(differ) == 1, differ  # only the forged cell: nothing of pytest's was reachable
    assert "dgamma" in next(iter(differ))


def test_unimplemented_release_scores_nothing(tmp_path, solution):
    files = dict(solution)
    for path in ("cs231n/layers.py", "cs231n/classifiers/fc_net.py"):
        files[path] = release_form(files[path].decode(),
                                   "raise NotImplementedError('stub')").encode()
        assert b"NotImplementedError('stub')" in files[path]
    result = grade_files(tmp_path, files)
    assert result["status"] == "ok" and result["score"] == 0
    assert not any(item["passed"] for item in result["items"])
    # Given code (dropout's test mode, a network without normalization) still works.
    messages = [t["message"] for i in result["items"] for t in i["tests"] if not t["passed"]]
    assert all("NotImplementedError" in m for m in messages), messages


# ---------------------------------------------------------------------------
# One run: every hostile case, then a good submission
# ---------------------------------------------------------------------------

_RUN_SCRIPT = """
import json, resource, sys
from instructor_tools.grade import cli
code = cli.main(sys.argv[1:])
print(json.dumps({"exit": code,
                  "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


@pytest.mark.slow
def test_one_run_grades_every_hostile_case_then_a_good_one(tmp_path, solution):
    """Hostile submissions one after another in one run: each ends within its deadline with
    its status, the good one after them scores the maximum, the grader's own memory stays
    under 2 GiB and the whole process tree never holds more than one submission's budget."""
    import subprocess
    import sys
    import threading
    import time
    from instructor_tools.benchmarks.grade_bench import tree

    spin = ("out, cache = dropout_forward(np.ones((3, 11)), {'mode': 'train', 'p': 0.5, "
            "'seed': 1})\nprint(dropout_backward(np.ones((3, 11)), cache).shape)")
    course = write_course(tmp_path / "course", notebooks=False)
    notebooks = tiny_notebooks(dropout_cells=[
        ("import numpy as np\nfrom cs231n.layers import dropout_forward, dropout_backward",
         None, ()), (spin, "(3, 11)\n", ())])
    for name, data in notebooks.items():
        (course / name).write_bytes(data)
    code = {k: v for k, v in solution.items() if not k.endswith(".ipynb")}
    base = dict(code, **notebooks)
    hostile = {
        "01-forbidden": region_body(base, LAYERS, "dropout_backward", "import os\ndx = dout"),
        "02-syntax": region_body(base, LAYERS, "dropout_backward", "dx = (dout"),
        "03-loop": region_body(base, LAYERS, "batchnorm_backward", "while True:\n    pass"),
        "04-hog": region_body(base, LAYERS, "layernorm_backward",
                              "hog = np.ones(2**31)\nreturn hog, hog, hog"),
        "05-print": region_body(base, LAYERS, "layernorm_forward",
                                "while True:\n    print('x' * 65536)"),
        "06-outside": append(base, LAYERS, "raise RuntimeError('boom')"),
        "07-missing": {k: v for k, v in base.items() if k != "cs231n/layer_utils.py"},
        "08-kernel-sleep": region_body(base, LAYERS, "dropout_backward",
                                       "while dout.shape == (3, 11):\n    pass\n"
                                       "dx = dout * cache['mask']"),
    }
    subs = tmp_path / "subs"
    subs.mkdir()
    for name, files in hostile.items():
        write_zip(subs / f"{name}.zip", files)
    (subs / "09-corrupt.zip").write_bytes(b"PK\x03\x04 not a zip")
    write_zip(subs / "99-good.zip", base)
    deadline, budget_gib = 60, 2.5
    out = tmp_path / "out"
    argv = [sys.executable, "-c", _RUN_SCRIPT, str(subs), "--out", str(out), "--quiet", "--no-pdf",
            "--course", str(course), "--deadline", str(deadline), "--timeout", "30",
            "--memory", "2", "--submission-memory", str(budget_gib)]
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=PROJECT)
    peak = [0]

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], sum(rss for rss, _ in tree(proc.pid).values()))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate(timeout=len(hostile) * (deadline + 30) + 300)
    sampler.join()
    seconds = time.monotonic() - start
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["exit"] == 0, stderr
    rows = {r["submission"]: r for r in csv.DictReader(open(out / "grades.csv"))}
    statuses = {name: rows[name]["status"] for name in rows}
    assert statuses == {
        "01-forbidden": "forbidden_code", "02-syntax": "syntax_error", "03-loop": "timeout",
        "04-hog": "memory_limit", "05-print": "output_limit", "06-outside": "ok",
        "07-missing": "missing_files", "08-kernel-sleep": "timeout",
        "09-corrupt": "corrupt_zip", "99-good": "ok"}, statuses
    assert rows["99-good"]["score"] == f"{RUBRIC.max_score:g}"
    assert rows["99-good"]["outputs_reproduce"] == "yes", rows["99-good"]
    # No row scores points its code did not earn: the sabotaged function's item is 0 (08 spins
    # only on the notebook's shape and earns its hidden items), the
    # unreadable or incomplete submissions score nothing, and only code outside the regions
    # (never run) keeps the maximum.
    sabotaged = {"01-forbidden": "dropout_backward", "02-syntax": "dropout_backward",
                 "03-loop": "batchnorm_backward", "04-hog": "layernorm_backward",
                 "05-print": "layernorm_forward"}
    for name, item in sabotaged.items():
        assert float(rows[name][f"item:{item}"] or 0) == 0, (name, rows[name])
        assert float(rows[name]["score"]) < RUBRIC.max_score, (name, rows[name])
    for name in ("07-missing", "09-corrupt"):
        assert float(rows[name]["score"] or 0) == 0, (name, rows[name])
    assert rows["06-outside"]["score"] == f"{RUBRIC.max_score:g}"
    for name, row in rows.items():
        assert float(row["seconds"] or 0) < deadline + 30, (name, row["seconds"])
    assert seconds < len(rows) * (deadline + 30)
    assert report["maxrss_kib"] * 1024 < 2 * 2**30
    assert peak[0] < budget_gib * 2**30 + report["maxrss_kib"] * 1024, peak[0] / 2**30


def test_grader_refuses_to_start_without_the_course(tmp_path, capsys):
    """A non-editable install has no notebooks and no sanitizer beside the package: the
    grader says so and grades nothing."""
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "a.zip").write_bytes(b"not a zip")
    empty = tmp_path / "site-packages"
    (empty / "cs231n").mkdir(parents=True)
    code = cli.main([str(subs), "--out", str(tmp_path / "out"), "--quiet", "--course",
                     str(empty)])
    err = capsys.readouterr().err
    assert code == 2
    assert "will not start" in err and "nbval_sanitize.cfg" in err
    assert "BatchNormalization.ipynb" in err and "cs231n/layers.py" in err
    assert not (tmp_path / "out" / "grades.csv").exists()


def test_grader_refuses_to_start_when_the_notebooks_need_a_module_it_lacks(tmp_path, capsys):
    """Re-executed without a module the course notebooks import (a non-editable install
    without matplotlib, say), every submission would be graded 'outputs do not reproduce'."""
    course = write_course(tmp_path / "course")
    for name in ("BatchNormalization.ipynb", "Dropout.ipynb"):
        nb = nbformat.read(course / name, as_version=4)
        first = next(c for c in nb.cells if c.cell_type == "code")
        first.source += ("\n%matplotlib inline\nimport numpy as np\n"
                         "from no_such_module_xq.sub import thing\n")
        nbformat.write(nb, course / name)
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "a.zip").write_bytes(b"not a zip")
    code = cli.main([str(subs), "--out", str(tmp_path / "out"), "--quiet", "--course",
                     str(course)])
    err = capsys.readouterr().err
    assert code == 2 and "will not start" in err
    assert "'no_such_module_xq'" in err and "'numpy'" not in err
    assert not (tmp_path / "out" / "grades.csv").exists()
    code = cli.main([str(subs), "--out", str(tmp_path / "out2"), "--quiet", "--course",
                     str(course), "--no-notebooks"])
    assert code != 2, capsys.readouterr().err


def test_grader_refuses_to_start_without_the_data_the_notebooks_read(tmp_path, capsys):
    """A wrong --datasets used to be a warning, and every notebook then failed at its data
    cell; the folder holding cifar-10-batches-py is taken for it."""
    course = write_course(tmp_path / "course")
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "a.zip").write_bytes(b"not a zip")
    empty = tmp_path / "no-data"
    empty.mkdir()
    args = [str(subs), "--quiet", "--course", str(course)]
    assert cli.main(args + ["--out", str(tmp_path / "o1"), "--datasets", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "--datasets: expected the cifar-10-batches-py folder" in err and str(empty) in err
    assert not (tmp_path / "o1" / "grades.csv").exists()
    holder = tmp_path / "datasets"
    (holder / "cifar-10-batches-py").mkdir(parents=True)
    for name in ("data_batch_1", "test_batch"):
        (holder / "cifar-10-batches-py" / name).write_bytes(b"")
    assert cli.main(args + ["--out", str(tmp_path / "o2"), "--datasets", str(holder)]) != 2, \
        capsys.readouterr().err
    assert cli._cifar_folder(holder) == holder / "cifar-10-batches-py"
