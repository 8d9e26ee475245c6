"""Tests of the student-release builder (instructor_tools.release).

Two kinds:
- on fixture projects, git checkouts built and committed in tmp_path: what ships (the
  allow-list, committed files only), refusals (outside git, uncommitted changes, bad
  markers, leaks of solution or answer text anywhere), output safety;
- on this project's own last commit (``real_release``, built from a clone of HEAD so that
  other people's uncommitted work neither breaks it nor slips into it): the release's
  cs231n/ holds exactly the student's files and nothing of instructor_tools/ ships; it
  imports; its unit tests fail with NotImplementedError naming the function and notebook
  section, and with nothing else; its notebooks first fail with NotImplementedError.
  Its size, the coverage of each region and its README's commands: test_lean.py.
"""
import base64
import hashlib
import io
import json
import keyword
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import warnings
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from instructor_tools import release
from instructor_tools.release import git as release_git, leaks
from student_tools import contract
from student_tools.markers import ANSWER_BEGIN, ANSWER_END, ANSWER_PROMPT, solution_regions

REPO = Path(__file__).resolve().parents[2]
B = "### BEGIN " + "SOLUTION"  # split: this file holds no marker of its own
E = "### END " + "SOLUTION"
NB = "Dropout.ipynb"  # the fixture's notebook (a name on the allow-list)

pytestmark = pytest.mark.skipif(shutil.which("git") is None,
                                reason="the release is built from a git checkout")

LAYERS_PY = f'''"""Fixture layers. A docstring may mention {B} without being a region."""
import numpy as np

MARKER_TEXT = "{B} ({NB}: \\"Scaling: forward pass\\")"  # a string, not a marker


def scale_forward(x, factor):
    """out = factor * x."""
    if factor <= 0:
        raise ValueError(f"factor: expected > 0, got {{factor}}")
    {B} ({NB}: "Scaling: forward pass")
    scaled_secret_alpha = np.multiply(x, factor)
    out = scaled_secret_alpha.copy()
    {E}
    return out


class Net:
    def loss(self, x):
        if x is not None:
            {B} ({NB}: "Scaling: backward pass")
            value = float(np.sum(x)) * 3.25  # secret_beta
            {E}
        else:
            value = 0.0
        return value


def shift_backward(dout, cache):
    """dx and dshift of out = x + shift, for dout: (N, D)."""
    {B} ({NB}: "Scaling: backward pass")
    shift_grad_total = dout.sum(axis=0)
    dx = dout.copy()
    dx_checked = np.asarray(dx, dtype=np.float64)
    return dx_checked, shift_grad_total
    {E}
'''
# Lines of shift_backward's region, for copies in other files.
SHIFT_LINES = ["shift_grad_total = dout.sum(axis=0)", "dx = dout.copy()",
               "dx_checked = np.asarray(dx, dtype=np.float64)",
               "return dx_checked, shift_grad_total"]
ANSWER_TEXT = "The hidden answer epsilon: scaling commutes with every linear map."

# Regions shaped like the course's own, for the token part of the leak check: a closed-form
# backward pass whose formula lives in a comment, a dropout mask, and a region that is
# mostly the given code of affine_backward, renamed.
NORMS_PY = f'''"""Fixture norms: closed-form gradients and dropout."""
import numpy as np


def affine_backward(dout, cache):
    """Given: dx, dw, db of out = x @ w + b."""
    x, w = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def affine_scale_backward(dout, cache):
    """dx, dw, db of out = factor * (x @ w + b)."""
    inputs, weights, factor = cache
    {B} ({NB}: "Scaling: backward pass")
    upstream = dout * factor
    d_inputs = (upstream @ weights.T).reshape(inputs.shape)
    d_weights = inputs.reshape(inputs.shape[0], -1).T @ upstream
    d_bias = upstream.sum(axis=0)
    {E}
    return d_inputs, d_weights, d_bias


def norm_backward_alt(dout, cache):
    """dx, dgamma, dbeta of out = gamma * x_hat + beta, x_hat normalized over axis 0."""
    x_hat, inv_std, gamma = cache
    N = dout.shape[0]
    {B} ({NB}: "Scaling: backward pass")
    # The whole forward pass differentiated at once:
    #     dx = (gamma * inv_std / N) * (N * dout - dbeta - x_hat * dgamma)
    # computed in one (N, D) work array.
    dbeta = dout.sum(axis=0)
    dgamma = np.einsum("ij,ij->j", dout, x_hat)
    dx = x_hat * (dgamma / N)
    dx += dbeta / N
    np.subtract(dout, dx, out=dx)
    dx *= gamma * inv_std
    {E}
    return dx, dgamma, dbeta


def keep_forward(x, p, seed):
    """Inverted dropout: each unit kept with probability p, and scaled by 1 / p."""
    np.random.seed(seed)
    {B} ({NB}: "Scaling: forward pass")
    mask = (np.random.rand(*x.shape) < p) / p
    out = x * mask
    {E}
    return out, mask
'''


def _region_where(text, function, path="cs231n/norms.py"):
    """'the solution region at PATH line N' of the region in ``function`` of text."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"def {function}("))
    begin = next(i for i in range(start, len(lines)) if lines[i].lstrip().startswith(B))
    return f"the solution region at {path} line {begin + 1}"


SCALE_WHERE = _region_where(NORMS_PY, "affine_scale_backward")
NORM_WHERE = _region_where(NORMS_PY, "norm_backward_alt")
KEEP_WHERE = _region_where(NORMS_PY, "keep_forward")

TEST_LAYERS_PY = '''import numpy as np
from cs231n.layers import scale_forward, shift_backward, Net


def test_scale_forward():
    assert np.allclose(scale_forward(np.ones(3), 2.0), 2.0)


def test_net_loss():
    assert Net().loss(np.ones(2)) == 6.5


def test_shift_backward():
    dx, dshift = shift_backward(np.ones((2, 3)), None)
    assert dx.shape == (2, 3) and np.allclose(dshift, 2.0)


def test_given_code_still_works():
    assert Net().loss(None) == 0.0
'''

STUDENT_README = "# Fixture\n\nRun `make test`, edit `cs231n/layers.py`, then `bash collectSubmission.sh`.\n"
MAKEFILE = (
    "test:\n\tpython -m pytest tests\n\n"
    "instructors-only:\n\t@test -d instructor_tools\n\n"
    "release: instructors-only\n\tpython -m instructor_tools.release\n"
)


def guide_notebook():
    return new_notebook(cells=[
        new_markdown_cell("# Guide\n\n## Scaling: forward pass\n\nImplement `scale_forward`."),
        new_code_cell("import numpy as np\nfrom cs231n.layers import scale_forward",
                      execution_count=1),
        new_code_cell("print(scale_forward(np.ones(2), 2.0))", execution_count=2,
                      outputs=[new_output("stream", name="stdout", text="[2. 2.]\n")]),
        new_markdown_cell("## Scaling: backward pass\n\n```\n# Not a heading (code fence)\n```"),
        new_code_cell(
            "def helper(v):\n"
            "    w = v + 1\n"
            f"    {B} ({NB}: \"Scaling: backward pass\")\n"
            "    w = w * 17  # secret_gamma_cell\n"
            f"    {E}\n"
            "    return w\n"
            "%time helper(1)",
            execution_count=3,
            outputs=[new_output("execute_result", data={"text/plain": "34"}, execution_count=3)],
        ),
        new_code_cell(
            f"{B} ({NB}: \"Scaling: forward pass\")\n"
            "top_level_secret_delta = 41 + 1\n"
            f"{E}",
            execution_count=4,
        ),
        new_markdown_cell(
            "### Question\nWhy?\n\n**Your answer:**\n"
            f"{ANSWER_BEGIN}\n{ANSWER_TEXT}\n{ANSWER_END}"
        ),
    ])


def fixture_files():
    """The fixture project as {relative path: text}: the student's side and the instructor's."""
    return {
        "cs231n/__init__.py": "",
        "cs231n/layers.py": LAYERS_PY,
        "cs231n/norms.py": NORMS_PY,
        "student_tools/__init__.py": "",
        "tests/test_layers.py": TEST_LAYERS_PY,
        NB: nbformat.writes(guide_notebook()),
        "Makefile": MAKEFILE,
        "collectSubmission.sh": "#!/bin/sh\necho packing\n",
        ".gitignore": "release/\n*.zip\n*.pdf\n*.pkl\ndatasets/cifar-10-batches-py/\n",
        # Never shipped:
        "README.md": "Instructors: run `make release`.\n",
        release.STUDENT_README: STUDENT_README,
        "instructor_tools/__init__.py": "",
        "instructor_tools/tests/test_hidden.py": "def test_hidden():\n    assert True\n",
        ".ci/run": "#!/bin/sh\nmake test\n",
        "requirements-ci.txt": "torch==2.13.0\n",
        "notes.md": "instructor notes\n",
    }


SHIPPED = sorted([".gitignore", NB, "Makefile", "README.md", "collectSubmission.sh",
                  "cs231n/__init__.py", "cs231n/layers.py", "cs231n/norms.py",
                  "student_tools/__init__.py", contract.FINGERPRINT, "tests/test_layers.py"])
SECRETS = ["scaled_secret_alpha", "secret_beta", "3.25", "secret_gamma_cell",
           "top_level_secret_delta", "shift_grad_total", "dx_checked", "hidden answer epsilon",
           "upstream", "np.einsum", "N * dout - dbeta", "np.random.rand"]
N_REGIONS = 8


def git(root, *args):
    """Run git in root, as a fixture author would (own identity, no user config)."""
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=Fixture", "-c", "user.email=f@example.org",
         "-c", "commit.gpgsign=false", *args],
        check=True, capture_output=True, env=env,
    ).stdout


def write_files(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
    if (root / "collectSubmission.sh").exists():
        (root / "collectSubmission.sh").chmod(0o755)
    return root


def make_checkout(root, files):
    """A git repository at root holding files, all committed."""
    write_files(root, files)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "fixture")
    return root


def commit(root, message="change"):
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


@pytest.fixture
def project(tmp_path):
    return make_checkout(tmp_path / "proj", fixture_files())


def tree_digest(root, skip=()):
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(root).rglob("*"))
        if p.is_file() and not any(s in p.parents for s in skip)
    }


def shipped_files(release_dir):
    return sorted(p.relative_to(release_dir).as_posix()
                  for p in release_dir.rglob("*") if p.is_file())


def build(root, **kwargs):
    kwargs.setdefault("name", "student")
    return release.build_release(root, **kwargs)


def refused(root, **kwargs):
    """The problems of a refused build; checks that nothing was written."""
    before = tree_digest(root, skip=(root / ".git",))
    with pytest.raises(release.ReleaseError) as info:
        build(root, **kwargs)
    assert tree_digest(root, skip=(root / ".git",)) == before
    assert not (root / "release").exists()
    return info.value.problems


# ---------------------------------------------------------------------------
# What a release contains
# ---------------------------------------------------------------------------


def test_layout_zip_and_allow_list(project):
    before = tree_digest(project, skip=(project / "release",))
    release_dir, zip_path, plan = build(project)
    assert release_dir == project / "release" / "student"
    assert zip_path == project / "release" / "student.zip"
    # Only the allow-list: no instructor_tools/, .ci/, requirements-ci.txt, notes.
    assert shipped_files(release_dir) == SHIPPED
    with zipfile.ZipFile(zip_path) as archive:
        assert sorted(archive.namelist()) == [f"student/{rel}" for rel in SHIPPED]
        mode = archive.getinfo("student/collectSubmission.sh").external_attr >> 16
        assert mode & 0o111  # executable scripts stay executable
    assert os.access(release_dir / "collectSubmission.sh", os.X_OK)
    assert not os.access(release_dir / "Makefile", os.X_OK)
    # The students' README, not the instructors'.
    assert (release_dir / "README.md").read_text() == STUDENT_README
    assert (project / "release" / release.OUT_MARKER).is_file()
    # The source tree is unchanged; only release/ was written.
    assert tree_digest(project, skip=(project / "release",)) == before
    assert len(plan.regions) == N_REGIONS and len(plan.answers) == 1
    assert plan.commit == git(project, "rev-parse", "HEAD").decode().strip()


TODO = "# TODO: your code here, in place of this raise. Only code between the markers is graded."


def test_python_regions_keep_their_markers_and_lose_their_body(project):
    """The marker lines stay as they are; between them, at their indentation, the TODO
    comment and the raise (the grader runs what the student writes there)."""
    release_dir, _, _ = build(project)
    text = (release_dir / "cs231n/layers.py").read_text()
    assert release.TODO_COMMENT == TODO
    section = '"Scaling: forward pass"'
    assert (
        '        raise ValueError(f"factor: expected > 0, got {factor}")\n'
        f'    {B} ({NB}: "Scaling: forward pass")\n'
        f"    {TODO}\n"
        f"    raise NotImplementedError('scale_forward: not implemented yet; see {NB}, "
        f"section {section}')\n"
        f"    {E}\n"
        "    return out\n"
    ) in text
    assert (
        "        if x is not None:\n"
        f'            {B} ({NB}: "Scaling: backward pass")\n'
        f"            {TODO}\n"
        f"            raise NotImplementedError('Net.loss: not implemented yet; see {NB}, "
        "section \"Scaling: backward pass\"')\n"
        f"            {E}\n"
        "        else:\n"
    ) in text
    # Every marker line of the source is in the release, unchanged and in order, and
    # parses as one (student_tools.markers is the grammar).
    markers = [line for line in LAYERS_PY.splitlines()
               if release.SOLUTION_BEGIN_RE.match(line) or release.SOLUTION_END_RE.match(line)]
    assert len(markers) == 6
    assert [line for line in text.splitlines() if line in markers] == markers
    # Marker text in a docstring and in a string literal is not a region.
    assert f"mention {B} without" in text
    assert "MARKER_TEXT = " in text
    regions, problems = solution_regions(text)
    assert problems == [] and len(regions) == 3
    lines = text.splitlines()
    for region in regions:
        body = lines[region.begin : region.end - 1]
        assert body[0] == region.indent + TODO
        assert body[1].startswith(region.indent + "raise NotImplementedError(") and len(body) == 2


def test_marker_lines_inside_strings_are_no_regions():
    """Only a comment alone on its line is a marker (tokenize): a whole marker line inside
    a docstring neither opens a region nor breaks the pairing of the real ones."""
    text = (f'def f(x):\n    """Example:\n\n    {B} ({NB}: "Scaling: forward pass")\n    """\n'
            f'    {B} ({NB}: "Scaling: forward pass")\n    y = 2 * x\n    {E}\n    return y\n')
    problems = []
    released, regions = release.regions._process_python("cs231n/f.py", text, problems)
    assert problems == [] and [(r.begin, r.end, r.function) for r in regions] == [(6, 8, "f")]
    assert f'    {B} ({NB}: "Scaling: forward pass")\n    """' in released
    assert "y = 2 * x" not in released
    problems = []
    release.regions._process_python("cs231n/f.py", text.replace(
        "    y = 2 * x", f"    y = 2 * x  # {E}"), problems)
    assert "cs231n/f.py line 7: a solution marker must be alone on its line" in problems


def test_notebook_regions_answers_and_outputs(project):
    release_dir, _, _ = build(project)
    nb = nbformat.read(release_dir / NB, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    assert nb.cells[4].source == (
        "def helper(v):\n"
        "    w = v + 1\n"
        f"    {B} ({NB}: \"Scaling: backward pass\")\n"
        f"    {TODO}\n"
        f"    raise NotImplementedError('helper: not implemented yet; see {NB}, section "
        "\"Scaling: backward pass\"')\n"
        f"    {E}\n"
        "    return w\n"
        "%time helper(1)"
    )
    assert nb.cells[5].source == (
        f"{B} ({NB}: \"Scaling: forward pass\")\n"
        f"{TODO}\n"
        f"raise NotImplementedError('this cell: not implemented yet; see {NB}, section "
        "\"Scaling: forward pass\"')\n"
        f"{E}"
    )
    assert nb.cells[6].source.endswith(f"{ANSWER_BEGIN}\n{ANSWER_PROMPT}\n{ANSWER_END}")
    # The untouched cells are byte for byte the same text.
    assert nb.cells[0].source == guide_notebook().cells[0].source


def test_no_solution_or_answer_text_anywhere(project):
    release_dir, zip_path, _ = build(project)
    for path in release_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes().decode()
            for secret in SECRETS:
                assert secret not in data, (path, secret)
    with zipfile.ZipFile(zip_path) as archive:
        for name in archive.namelist():
            for secret in SECRETS:
                assert secret.encode() not in archive.read(name)


def test_released_tests_fail_only_with_not_implemented_naming_the_section(project, tmp_path):
    release_dir, _, _ = build(project)
    junit = tmp_path / "junit.xml"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider",
         f"--junitxml={junit}"],
        cwd=release_dir, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(release_dir)},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    outcomes = _junit_outcomes(junit)
    assert {k: v[0] for k, v in outcomes.items()} == {
        "test_scale_forward": "NotImplementedError",
        "test_net_loss": "NotImplementedError",
        "test_shift_backward": "NotImplementedError",
        "test_given_code_still_works": "passed",
    }
    assert outcomes["test_shift_backward"][1] == (
        f'NotImplementedError: shift_backward: not implemented yet; see {NB}, section '
        f'"Scaling: backward pass"'
    )


def _junit_outcomes(path):
    """{test id: (outcome, message)} from a junit xml file.

    outcome is 'passed', 'skipped' or the name of the exception type. A module that fails
    to import shows as id 'collect:<module>' with the type of the exception raised at import.
    """
    outcomes = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        name = case.get("name")
        if problem is None:
            outcomes[name] = ("skipped" if case.find("skipped") is not None else "passed", "")
            continue
        # An error in a fixture reads 'failed on setup with "<Type>: <message>"'.
        message = re.sub(r'^failed on (?:setup|teardown) with "(.*)"$', r"\1",
                         problem.get("message", ""), flags=re.DOTALL)
        if message == "collection failure":
            name = f"collect:{name}"
            raised = [line[1:].strip() for line in (problem.text or "").splitlines()
                      if line.startswith("E ")]
            message = raised[-1] if raised else message
        match = re.match(r"(?:\w+\.)*(\w+(?:Error|Exception|Exit|Interrupt)\w*)", message)
        outcomes[name] = (match[1] if match else message, message)
    return outcomes


def test_untracked_and_unlisted_files_never_ship(project):
    """A solved submission zip, its PDF, pickles, data: never shipped, tracked or not."""
    solved = io.BytesIO()
    with zipfile.ZipFile(solved, "w") as archive:
        archive.writestr("cs231n/layers.py", LAYERS_PY)
        archive.writestr(NB, nbformat.writes(guide_notebook()))
    write_files(project, {
        "cs231n_submission.zip": solved.getvalue(),      # ignored by .gitignore
        "notebooks.pdf": b"%PDF-1.4 scaled_secret_alpha\n",
        "cs231n/cache.pkl": b"\x80\x04scaled_secret_alpha",
        "datasets/cifar-10-batches-py/data_batch_1": b"\x80\x04data",
        "solutions_backup.zip": solved.getvalue(),
        "cs231n/scratch_solution.py": "scaled_secret_alpha = 1\n",  # untracked, on the list
        "tests/test_scratch.py": "def test_x():\n    pass\n",
    })
    # Committed but not on the allow-list (a zip forced past .gitignore, a PDF, data).
    git(project, "add", "-f", "solutions_backup.zip", "notebooks.pdf")
    git(project, "commit", "-q", "-m", "instructor files")
    release_dir, zip_path, plan = build(project)
    assert shipped_files(release_dir) == SHIPPED
    assert plan.notes == ["untracked, so not shipped: cs231n/scratch_solution.py, "
                          "tests/test_scratch.py"]


def test_only_the_commit_ships_not_ignored_tracked_files(project):
    # A tracked file that .gitignore matches (added before the rule) does not ship.
    (project / ".gitignore").write_text((project / ".gitignore").read_text() + "tests/old_*.py\n")
    write_files(project, {"tests/old_helpers.py": "x = 1\n"})
    git(project, "add", "-f", "tests/old_helpers.py")
    commit(project)
    release_dir, _, plan = build(project)
    assert "tests/old_helpers.py" not in shipped_files(release_dir)
    assert any("matched by .gitignore, so not shipped: tests/old_helpers.py" in n
               for n in plan.notes)


ALLOW_LIST_CASES = {
    "cs231n/layers.py": True, "cs231n/classifiers/fc_net.py": True,
    "student_tools/submission.py": True, "tests/test_layers.py": True,
    "tests/nbval_sanitize.cfg": True, "BatchNormalization.ipynb": True,
    "datasets/get_datasets.sh": True, ".gitignore": True,
    "instructor_tools/release.py": False, "instructor_tools/release/build.py": False,
    "instructor_tools/tests/test_release.py": False,
    "instructor_tools/grade/hidden/test_hidden.py": False, ".ci/run": False,
    "requirements-ci.txt": False, "README.md": False, "cs231n/notes.md": False,
    "cs231n_submission.zip": False, "notebooks.pdf": False, "cs231n/x.pkl": False,
    "tests/data/batch.npz": False, "Scratch.ipynb": False, "cs231n/layers.pyc": False,
    # on the list by their pathspec, stopped by the second lock
    "cs231n/.ipynb_checkpoints/layers-checkpoint.py": False,
    "cs231n/__pycache__/layers.py": False,
    "datasets/cifar-10-batches-py/readme.py": False,
    "release/cs231n-student/cs231n/layers.py": False, "benchmarks/bench.py": False,
}


def test_allow_list(tmp_path):
    """git's pathspecs pick the committed files that ship, and the same ones untracked."""
    root = make_checkout(tmp_path / "proj", {rel: "x = 1\n" for rel in ALLOW_LIST_CASES})
    head = git(root, "rev-parse", "HEAD").decode().strip()
    expected = sorted(rel for rel, shipped in ALLOW_LIST_CASES.items() if shipped)
    assert sorted(release_git.shipped_files(root, head)) == expected
    untracked = tmp_path / "untracked"
    write_files(untracked, {rel: "x = 1\n" for rel in ALLOW_LIST_CASES})
    git(untracked, "init", "-q")
    assert release_git._work_tree_status(untracked) == ({}, expected)


# ---------------------------------------------------------------------------
# Refusals: a clear message and nothing written
# ---------------------------------------------------------------------------


def test_outside_git_refused(tmp_path):
    root = write_files(tmp_path / "proj", fixture_files())
    problems = refused(root)
    assert len(problems) == 1 and problems[0].startswith(f"--root {root}: not a git checkout")


def test_a_folder_inside_another_repository_refused(tmp_path):
    outer = make_checkout(tmp_path / "outer", {"x.txt": "x\n"})
    root = write_files(outer / "proj", fixture_files())
    commit(outer)
    problems = refused(root)
    assert problems == [f"--root {root}: not the top of its git work tree ({outer}); the "
                        f"project must be a repository of its own"]


def test_git_variables_of_a_hook_do_not_redirect_it(project, tmp_path, monkeypatch):
    """Run from a git hook (GIT_DIR, GIT_INDEX_FILE set), it still releases --root."""
    other = make_checkout(tmp_path / "other", {"cs231n/__init__.py": "", "x.py": "x = 1\n"})
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(other / ".git" / "index"))
    release_dir, _, _ = build(project)
    assert shipped_files(release_dir) == SHIPPED


def test_a_repository_without_commits_refused(tmp_path):
    root = write_files(tmp_path / "proj", fixture_files())
    git(root, "init", "-q")
    git(root, "add", "-A")
    assert refused(root) == [f"--root {root}: no commit yet; the release is built from HEAD"]


def _modify(rel, text="\n# changed\n"):
    def change(root):
        with open(root / rel, "a") as handle:
            handle.write(text)
    return change


def _stage(change, rel):
    def staged(root):
        change(root)
        git(root, "add", "-A", "--", rel)
    return staged


def _delete(rel):
    return lambda root: (root / rel).unlink()


def _new_file(rel):
    def add(root):
        write_files(root, {rel: "def test_new():\n    pass\n"})
        git(root, "add", rel)
    return add


@pytest.mark.parametrize("change, rel, status", [
    (_modify("tests/test_layers.py"), "tests/test_layers.py", "modified, not staged"),
    (_stage(_modify("cs231n/layers.py"), "cs231n/layers.py"), "cs231n/layers.py",
     "modified, staged"),
    (_delete("collectSubmission.sh"), "collectSubmission.sh", "deleted, not staged"),
    (_new_file("tests/test_new.py"), "tests/test_new.py", "added, staged"),
    (_modify(release.STUDENT_README), release.STUDENT_README, "modified, not staged"),
    (_modify(NB, " "), NB, "modified, not staged"),
], ids=["unstaged", "staged", "deleted", "added", "student-readme", "notebook"])
def test_uncommitted_change_to_a_shipped_file_refused(project, change, rel, status):
    change(project)
    assert refused(project) == [
        f"{rel}: uncommitted changes ({status}); the release is built from the last commit, "
        f"so commit (or undo) them first"
    ]


def test_every_uncommitted_file_named(project):
    _modify("tests/test_layers.py")(project)
    _stage(_modify("cs231n/layers.py"), "cs231n/layers.py")(project)
    _modify("cs231n/layers.py", "\n# and more\n")(project)
    problems = refused(project)
    assert [p.split(":")[0] for p in problems] == ["cs231n/layers.py", "tests/test_layers.py"]
    assert "(modified, staged; modified, not staged)" in problems[0]


def test_uncommitted_changes_elsewhere_allowed(project):
    """Instructor files and untracked files may change: they do not ship."""
    _modify("README.md")(project)
    _modify("instructor_tools/tests/test_hidden.py")(project)
    write_files(project, {"instructor_tools/grade/hidden.py": "SECRET = 1\n"})
    release_dir, _, _ = build(project)
    assert shipped_files(release_dir) == SHIPPED


def _edit_layers(old, new):
    def edit(files):
        assert old in files["cs231n/layers.py"]
        files["cs231n/layers.py"] = files["cs231n/layers.py"].replace(old, new, 1)
    return edit


def _append_layers(code):
    def edit(files):
        files["cs231n/layers.py"] += code
    return edit


def _edit_notebook(edit_nb):
    def edit(files):
        nb = nbformat.reads(files[NB], as_version=4)
        edit_nb(nb)
        files[NB] = nbformat.writes(nb)
    return edit


def _cell_source(index, old, new):
    def edit_nb(nb):
        assert old in nb.cells[index].source
        nb.cells[index].source = nb.cells[index].source.replace(old, new, 1)
    return _edit_notebook(edit_nb)


BAD_TREES = [
    pytest.param(_edit_layers(f"    return dx_checked, shift_grad_total\n    {E}\n",
                              "    return dx_checked, shift_grad_total\n"),
                 r"^cs231n/layers.py line 31: BEGIN marker never closed by an END marker$",
                 id="unclosed"),
    pytest.param(_append_layers(f"\n\ndef extra():\n    {E}\n    return 1\n"),
                 r"cs231n/layers.py line \d+: END marker without a BEGIN marker", id="stray-end"),
    pytest.param(_edit_layers("    out = scaled_secret_alpha.copy()\n",
                              f"    {B} ({NB}: \"Scaling: forward pass\")\n"
                              f"    out = scaled_secret_alpha.copy()\n"),
                 r"line 13: a solution region opens inside the one opened at line 11 "
                 r"\(regions cannot nest\)", id="nested"),
    pytest.param(_append_layers(f"\n{B} ({NB}: \"Scaling: forward pass\")\nmodule_level = 1\n{E}\n"),
                 r"cs231n/layers.py line \d+: solution region outside a function", id="outside-function"),
    pytest.param(_edit_layers(f'({NB}: "Scaling: forward pass")\n    scaled',
                              f'({NB}: "Scaling: forwards pass")\n    scaled'),
                 rf"cs231n/layers.py line 11: {NB} has no heading 'Scaling: forwards pass'; "
                 r"did you mean 'Scaling: forward pass'\?", id="unknown-section"),
    pytest.param(_edit_layers(f'({NB}: "Scaling: backward pass")',
                              '(Missing.ipynb: "Scaling: backward pass")'),
                 r"names notebook 'Missing.ipynb', which is not in the release", id="unknown-notebook"),
    pytest.param(_edit_layers('    ' + B + f' ({NB}: "Scaling: forward pass")', "    " + B),
                 r"line 11: a damaged solution marker: '### BEGIN SOLUTION'; expected", id="malformed"),
    pytest.param(_append_layers(f"\n\ndef cut(v):\n    total = max(\n        {B} ({NB}: "
                                f"\"Scaling: forward pass\")\n        v, 1)\n    {E}\n    return total\n"),
                 r"the region cuts the statement at line \d+ in two", id="cuts-statement"),
    pytest.param(_append_layers(f"\n\ndef branches(v):\n    if v:\n        {B} ({NB}: "
                                f"\"Scaling: forward pass\")\n        w = 1\n    else:\n        w = 2\n"
                                f"        {E}\n    return w\n"),
                 r"the region spans two blocks \(e.g. an if and its else\)", id="spans-if-else"),
    pytest.param(_append_layers(f"\n\ndef shifted(v):\n    {B} ({NB}: \"Scaling: forward pass\")\n"
                                f"    if v:\n        w = 1\n    {E}\n    return w\n\n\n"
                                f"def deeper(v):\n    if v:\n    {B} ({NB}: \"Scaling: forward pass\")\n"
                                f"        w = 1\n    {E}\n    return w\n"),
                 r"the BEGIN marker is indented 4 columns but the region's code 8", id="indent-mismatch"),
    pytest.param(_append_layers(f"\n\ndef empty(v):\n    {B} ({NB}: \"Scaling: forward pass\")\n"
                                f"    # only a comment\n    {E}\n    return v\n"),
                 r"solution region holds no code", id="empty-region"),
    pytest.param(_cell_source(6, ANSWER_END, ""),
                 rf"{NB} cell 6 line 5: <!-- BEGIN ANSWER --> never closed", id="answer-unclosed"),
    pytest.param(_cell_source(6, ANSWER_BEGIN, "<!-- BEGIN ANSWER"),
                 r"malformed answer marker '<!-- BEGIN ANSWER'", id="answer-malformed"),
    pytest.param(_cell_source(5, E, "# nothing"),
                 rf"{NB} cell 5 line 1: BEGIN marker never closed", id="cell-unclosed"),
]


@pytest.mark.parametrize("damage, problem_re", BAD_TREES)
def test_bad_markers_refused_without_writing(tmp_path, damage, problem_re):
    files = fixture_files()
    damage(files)
    root = make_checkout(tmp_path / "proj", files)
    problems = refused(root)
    assert any(re.search(problem_re, p) for p in problems), problems


def test_every_problem_listed_by_the_command(tmp_path, capsys):
    files = fixture_files()
    BAD_TREES[0].values[0](files)  # unclosed region in layers.py
    BAD_TREES[4].values[0](files)  # ...and a section that does not exist elsewhere
    _cell_source(6, ANSWER_END, "")(files)
    root = make_checkout(tmp_path / "proj", files)
    assert release.main(["--root", str(root)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "release: refused, nothing written:"
    assert [line.split(".")[0].strip() for line in err[1:]] == ["1", "2", "3"]
    # Files in path order, then the sections named by the regions found.
    assert f"{NB} cell 6 line 5: <!-- BEGIN ANSWER --> never closed" in err[1]
    assert "cs231n/layers.py line 31: BEGIN marker never closed" in err[2]
    assert f"{NB} has no heading 'Scaling: forwards pass'" in err[3]
    assert not (root / "release").exists()


# ---------------------------------------------------------------------------
# Leaks: solution regions and answers, wherever they hide
# ---------------------------------------------------------------------------

SHIFT_WHERE = "the solution region at cs231n/layers.py line 31"
ANSWER_WHERE = f"the answer at {NB} cell 6 line 5"


def _indented(lines, prefix):
    return "".join(f"{prefix}{line}\n" for line in lines)


def _notebook_with(edit_nb):
    nb = guide_notebook()
    edit_nb(nb)
    return nbformat.writes(nb)


def _markdown_attachment(nb):
    payload = base64.b64encode("\n".join(SHIFT_LINES).encode()).decode()
    cell = new_markdown_cell("![figure](attachment:derivation.txt)")
    cell["attachments"] = {"derivation.txt": {"text/plain": payload}}
    nb.cells.append(cell)


LEAKS = [
    # The case of the issue: a test file holding a whole copy of a region.
    pytest.param({"tests/test_copy.py": "def reference(dout):\n"
                  + _indented(SHIFT_LINES, "    ")}, "tests/test_copy.py", SHIFT_WHERE, 3,
                 id="region-copied-into-a-test"),
    pytest.param({"tests/test_copy.py": "def reference(dout):\n"
                  + _indented(SHIFT_LINES[1:], "    ")}, "tests/test_copy.py", SHIFT_WHERE, 3,
                 id="three-consecutive-lines"),
    pytest.param({"tests/test_copy.py": "def reference(dout):\n    # " + SHIFT_LINES[0] + "\n\n"
                  + _indented(SHIFT_LINES[1:3], "    # ")}, "tests/test_copy.py", SHIFT_WHERE, 3,
                 id="commented-out-with-blank-lines"),
    pytest.param({"cs231n/__init__.py": '"""Example:\n\n' + _indented(SHIFT_LINES[:3], "    >>> ")
                  + '"""\n'}, "cs231n/__init__.py", SHIFT_WHERE, 3, id="docstring-with-prompts"),
    pytest.param({"tests/test_copy.py": "REFERENCE = " + json.dumps("\n".join(SHIFT_LINES))
                  + "\n"}, "tests/test_copy.py", SHIFT_WHERE, 3, id="string-with-newline-escapes"),
    pytest.param({"tests/test_copy.py": "X = 1\n    value = float(np.sum(x)) * 3.25  # secret_beta\n"},
                 "tests/test_copy.py", "the solution region at cs231n/layers.py line 21", 1,
                 id="whole-one-line-region"),
    pytest.param({NB: _notebook_with(lambda nb: nb.cells.append(new_markdown_cell(
                  "Hint:\n```python\n" + "\n".join(SHIFT_LINES) + "\n```")))},
                 f"{NB} /cells/7/source", SHIFT_WHERE, 3, id="notebook-markdown"),
    pytest.param({NB: _notebook_with(lambda nb: nb.metadata.update(
                  {"solution": SHIFT_LINES}))},
                 f"{NB} /metadata/solution", SHIFT_WHERE, 3, id="notebook-metadata-list"),
    pytest.param({NB: _notebook_with(_markdown_attachment)},
                 f"{NB} /cells/7/attachments/derivation.txt/text/plain (base64)", SHIFT_WHERE, 3,
                 id="notebook-attachment"),
    pytest.param({"tests/test_copy.py": f'"""Why? {ANSWER_TEXT}"""\n'},
                 "tests/test_copy.py", ANSWER_WHERE, 1, id="answer-in-a-docstring"),
    pytest.param({NB: _notebook_with(lambda nb: nb.cells.insert(6, new_markdown_cell(
                  f"Remember: {ANSWER_TEXT}")))},
                 f"{NB} /cells/6/source", f"the answer at {NB} cell 7 line 5", 1,
                 id="answer-before-its-question"),
    pytest.param({release.STUDENT_README: STUDENT_README + "\n" + _indented(SHIFT_LINES, "    ")},
                 "README.md", SHIFT_WHERE, 3, id="student-readme"),
]


@pytest.mark.parametrize("extra, location, where, run", LEAKS)
def test_leak_refused_naming_the_file(tmp_path, extra, location, where, run):
    root = make_checkout(tmp_path / "proj", {**fixture_files(), **extra})
    problems = refused(root)
    assert problems[0] == "solution or answer text would ship:"
    what = f"{run} consecutive lines" if run > 1 else "a line"
    expected = f"{location}: holds {what} of {where}, from "
    assert any(p.startswith(expected) for p in problems[1:]), problems


NOT_LEAKS = [
    pytest.param(_indented(SHIFT_LINES[1:3], "    "), id="two-consecutive-lines"),
    pytest.param("    return out, cache\n    dx = dout.copy()\n", id="short-generic-lines"),
    pytest.param(_indented([SHIFT_LINES[0], "assert True", SHIFT_LINES[1], "assert True",
                            SHIFT_LINES[2]], "    "), id="lines-not-consecutive"),
    pytest.param("    w = v + 1\n    helper_value = 2\n", id="given-code-of-a-cell"),
    pytest.param('    """The hidden answer epsilon."""\n', id="short-part-of-an-answer"),
]


@pytest.mark.parametrize("body", NOT_LEAKS)
def test_short_generic_lines_are_not_a_leak(tmp_path, body):
    files = {**fixture_files(), "tests/test_extra.py": "def helper(dout):\n" + body}
    root = make_checkout(tmp_path / "proj", files)
    release_dir, _, _ = build(root)
    assert "tests/test_extra.py" in shipped_files(release_dir)


# ---------------------------------------------------------------------------
# Leaks that are not verbatim: region code compared as tokens
# ---------------------------------------------------------------------------

# Copies that the line check misses (each test below also fails with the token check
# disabled): names changed, layout changed, statements joined, one decisive line alone.
TOKEN_COPIES = {
    "renamed": (NORM_WHERE, None, [
        "g_beta = up.sum(axis=0)",
        'g_gamma = np.einsum("ij,ij->j", up, xh)',
        "g_x = xh * (g_gamma / n)",
        "g_x += g_beta / n",
        "np.subtract(up, g_x, out=g_x)",
        "g_x *= gm * istd",
    ]),
    "reformatted": (NORM_WHERE, None, [
        "dbeta = dout.sum( axis=0 )",
        'dgamma = np.einsum( "ij,ij->j",',
        "                    dout, x_hat )",
        "dx = x_hat*(dgamma/N)",
        "dx += dbeta/N",
        "np.subtract(dout,",
        "            dx, out=dx)",
        "dx *= gamma*inv_std",
    ]),
    "joined": (NORM_WHERE, None, [
        "b = g.sum(axis=0); a = np.einsum('ij,ij->j', g, h); r = h * (a / n); r += b / n; "
        "np.subtract(g, r, out=r); r *= c * s",
    ]),
    "closed-form-line": (
        NORM_WHERE, "dx = (gamma * inv_std / N) * (N * dout - dbeta - x_hat * dgamma)",
        ["grad_in = (g * istd / m) * (m * up - gb - xh * gg)"]),
    "mask-line": (KEEP_WHERE, "mask = (np.random.rand(*x.shape) < p) / p",
                  ["keep = (np.random.rand(*inp.shape) < q) / q"]),
    # Comments of the copier's own between the lines: found in the code alone.
    "renamed-with-comments": (SCALE_WHERE, None, [
        "# scale first",
        "g = d * k  # the factor",
        "# then the affine part",
        "gi = (g @ wt.T).reshape(a.shape)",
        "gw = a.reshape(a.shape[0], -1).T @ g  # (D, M)",
        "gb = g.sum(axis=0)",
    ]),
}


def _token_problem(location, copy):
    """The start of the problem find_leaks reports for a TOKEN_COPIES entry at location."""
    where, statement, _ = TOKEN_COPIES[copy]
    if statement:
        return (f"{location}: holds the statement {statement!r} of {where} (names and layout "
                f"aside), as ")
    return f"{location}: holds {release.WINDOW_TOKENS} tokens in a row of {where} (names and "


def _planted(place, copy):
    """({path: text} planting a TOKEN_COPIES entry at place, the location reported)."""
    lines = TOKEN_COPIES[copy][2]
    if place == "test-file":
        code = "def reference(up, xh, gm, istd, n):\n" + _indented(lines, "    ")
        return {"tests/test_copy.py": code}, "tests/test_copy.py"
    if place == "notebook-code-cell":
        return ({NB: _notebook_with(lambda nb: nb.cells.append(new_code_cell("\n".join(lines))))},
                f"{NB} /cells/7/source")
    assert place == "notebook-markdown"
    markdown = "A hint:\n\n```python\n" + "\n".join(lines) + "\n```\n"
    return ({NB: _notebook_with(lambda nb: nb.cells.append(new_markdown_cell(markdown)))},
            f"{NB} /cells/7/source")


@pytest.mark.parametrize("copy", list(TOKEN_COPIES))
@pytest.mark.parametrize("place", ["test-file", "notebook-code-cell", "notebook-markdown"])
def test_token_copy_refused(tmp_path, place, copy):
    extra, location = _planted(place, copy)
    root = make_checkout(tmp_path / "proj", {**fixture_files(), **extra})
    problems = refused(root)
    assert problems[0] == "solution or answer text would ship:"
    assert any(p.startswith(_token_problem(location, copy)) for p in problems[1:]), problems


def _outputs_and_metadata(copy):
    """A notebook holding a TOKEN_COPIES entry in an output and in a cell's metadata."""
    text = "\n".join(TOKEN_COPIES[copy][2])
    nb = guide_notebook()
    del nb.cells[3:]  # the cells without regions or answers
    nb.cells[2].outputs.append(new_output("stream", name="stdout", text=text + "\n"))
    nb.cells[1].metadata["solution"] = text
    return nbformat.writes(nb).encode()


@pytest.mark.parametrize("copy", list(TOKEN_COPIES))
def test_token_copy_found_in_outputs_and_metadata(fixture_plan, copy):
    """A release clears both (see test_cell_metadata_never_ships); the check reads them all
    the same, should one be left."""
    problems = release.find_leaks({NB: _outputs_and_metadata(copy)}, fixture_plan.regions,
                                  fixture_plan.answers)
    for location in (f"{NB} /cells/1/metadata/solution", f"{NB} /cells/2/outputs/1/text"):
        assert any(p.startswith(_token_problem(location, copy)) for p in problems), problems
    assert len(problems) == 2


def test_cell_metadata_never_ships(tmp_path):
    """Cell metadata is invisible in JupyterLab: the release keeps nbval's tags only."""
    norm_copy = "\n".join(TOKEN_COPIES["renamed"][2])

    def hide(nb):
        nb.cells[1].metadata.update({"solution": norm_copy, "notes": "\n".join(SHIFT_LINES),
                                     "tags": ["nbval-ignore-output", "answer-key"],
                                     "ExecuteTime": {"end_time": "2024-01-01T00:00:00"}})
        nb.cells[2].metadata["tags"] = "nbval-skip"  # not a list: nbval ignores it too
        nb.cells[6].metadata["hint"] = ANSWER_TEXT  # a markdown cell
        nb.cells[3].metadata["jupyter"] = {"source_hidden": True}

    root = make_checkout(tmp_path / "proj", {**fixture_files(), NB: _notebook_with(hide)})
    release_dir, _, _ = build(root)
    nb = nbformat.read(release_dir / NB, as_version=4)
    kept = [{}, {"tags": ["nbval-ignore-output"]}, {}, {}, {}, {}, {}]
    assert [cell.metadata for cell in nb.cells] == kept
    text = (release_dir / NB).read_text()
    for hidden in ("g_gamma", "shift_grad_total", "answer-key", "hidden answer epsilon",
                   "ExecuteTime", "source_hidden"):
        assert hidden not in text, hidden


TOKEN_NOT_LEAKS = [
    # The given code (affine_backward), renamed: the region built on it shares 32-token
    # runs with it, and those prove nothing.
    pytest.param(["a, b = c", "ga = (g @ b.T).reshape(a.shape)",
                  "gb = a.reshape(a.shape[0], -1).T @ g", "gc = g.sum(axis=0)",
                  "return ga, gb, gc"], id="given-code-renamed"),
    # A region's call without its computation, and a short formula: no decisive line.
    pytest.param(["np.subtract(g, r, out=r)", "r = h * (a / n)"], id="call-and-short-formula"),
    pytest.param(["out = np.asarray(x, dtype=np.float64)",
                  "expected = {'x_hat': x_hat, 'inv_std': inv_std, 'gamma': gamma}"],
                 id="plumbing-statements"),
]


@pytest.mark.parametrize("lines", TOKEN_NOT_LEAKS)
def test_given_code_and_plumbing_are_not_token_leaks(tmp_path, lines):
    files = {**fixture_files(), "tests/test_extra.py": "def helper(g, c):\n"
             + _indented(lines, "    ")}
    root = make_checkout(tmp_path / "proj", files)
    release_dir, _, _ = build(root)
    assert "tests/test_extra.py" in shipped_files(release_dir)


def _tokens(text):
    return leaks._token_streams(text)[-1][0]


@pytest.mark.parametrize("one, other", [
    ("dx = (g * s / n) * (n * d - b - h * k)", "out=( a*b/c )*(c*e-f-\\\n  x*y)"),
    ("a = f(x)\nb = a + 1", "p = f(q); r = p + 1"),
    ("y = x.sum(axis=0) * 1.0", "z = w.sum(axis = 0) * 1.  # a comment"),
    ("s = np.einsum('ij,ij->j', a, b)", 's = np.einsum("ij,ij->j", a, b)'),
    ("t = 1e-5", "t = 0.00001"),
])
def test_tokens_ignore_names_layout_and_comments(one, other):
    assert _tokens(one) == _tokens(other)


@pytest.mark.parametrize("one, other", [
    ("y = x.sum(axis=0)", "y = x.mean(axis=0)"),        # attributes stay
    ("y = f(x, axis=0)", "y = f(x, keepdims=0)"),       # keyword arguments stay
    ("y = f(x, axis=0)", "y = f(x, axis=1)"),           # numbers stay
    ("y = a - b * c", "y = a + b * c"),                 # operators stay
    ("y = a if b else c", "y = a or b and c"),          # keywords stay
])
def test_tokens_keep_api_numbers_operators_and_keywords(one, other):
    assert _tokens(one) != _tokens(other)


def _zip_bytes(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _tar_gz_bytes(members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def fixture_plan(project):
    return release.plan_release(project)


def test_find_leaks_inside_archives(fixture_plan):
    leaked = "\n".join(SHIFT_LINES).encode()
    nested = _zip_bytes({"a/readme.txt": b"nothing\n",
                         "a/inner.tar.gz": _tar_gz_bytes({"deep/copy.py": leaked})})
    files = {"tests/data.py": nested, "tests/clean.py": _zip_bytes({"x.txt": b"fine\n"})}
    problems = release.find_leaks(files, fixture_plan.regions, fixture_plan.answers)
    assert len(problems) == 1
    assert problems[0].startswith(
        f"tests/data.py!a/inner.tar.gz!deep/copy.py: holds 3 consecutive lines of {SHIFT_WHERE}"
    )


def test_find_leaks_in_notebook_outputs(fixture_plan):
    """Outputs are cleared in a release; the check still reads them, should one be left."""
    nb = guide_notebook()
    del nb.cells[3:]  # the cells without regions or answers
    nb.cells[2].outputs.append(new_output("display_data", data={
        "text/html": "<pre>\n" + "\n".join(SHIFT_LINES) + "\n</pre>"}))
    nb.cells[2].outputs.append(new_output("error", ename="E", evalue="x", traceback=[
        f"Traceback: {ANSWER_TEXT}"]))
    problems = release.find_leaks({NB: nbformat.writes(nb).encode()},
                                  fixture_plan.regions, fixture_plan.answers)
    assert [p.split(": holds")[0] for p in problems] == [
        f"{NB} /cells/2/outputs/1/data/text/html", f"{NB} /cells/2/outputs/2/traceback"]


def test_unreadable_archive_refused(fixture_plan):
    with pytest.raises(release.ReleaseError, match=r"tests/x.py: looks like an archive but "
                                                   r"cannot be read"):
        release.find_leaks({"tests/x.py": b"PK\x03\x04 broken"}, fixture_plan.regions, [])


def test_a_leak_is_caught_before_writing(project, monkeypatch):
    """If the replacement kept solution lines, nothing is written."""
    real = release.regions._replacement_lines

    def leaky(region):
        return real(region) + region.body

    monkeypatch.setattr(release.regions, "_replacement_lines", leaky)
    problems = refused(project)
    assert problems[0] == "solution or answer text would ship:"
    assert any(p.startswith(f"cs231n/layers.py: holds 3 consecutive lines of {SHIFT_WHERE}")
               for p in problems)


def test_a_leak_in_the_written_release_is_caught(project, monkeypatch):
    """The written release (and its zip) is checked again; on failure it is discarded."""
    real = release.build._write_zip

    def leaky_zip(zip_path, release_dir, name):
        real(zip_path, release_dir, name)
        with zipfile.ZipFile(zip_path, "a") as archive:
            archive.writestr(f"{name}/extra.txt", "\n".join(SHIFT_LINES))

    monkeypatch.setattr(release.build, "_write_zip", leaky_zip)
    with pytest.raises(release.ReleaseError) as info:
        build(project)
    problems = info.value.problems
    assert problems[0] == "the written release failed verification:"
    assert "student.zip: members differ from student/" in problems
    assert any(p.startswith(f"student.zip!student/extra.txt: holds 3 consecutive lines of "
                            f"{SHIFT_WHERE}") for p in problems), problems
    assert sorted(p.name for p in (project / "release").iterdir()) == [release.OUT_MARKER]


def test_an_answer_leak_is_caught(project, monkeypatch):
    monkeypatch.setattr(release.regions, "ANSWER_PROMPT", ANSWER_TEXT)
    problems = refused(project)
    assert any(p.startswith(f"{NB} /cells/6/source: holds a line of {ANSWER_WHERE}")
               for p in problems), problems


# ---------------------------------------------------------------------------
# The students' README
# ---------------------------------------------------------------------------


def test_student_readme_required(tmp_path):
    files = fixture_files()
    del files[release.STUDENT_README]
    root = make_checkout(tmp_path / "proj", files)
    problems = refused(root)
    assert problems == [f"{release.STUDENT_README}: not committed; it becomes the release's "
                        f"README.md (the project's README.md, with instructor commands, is "
                        f"not shipped)"]


# ---------------------------------------------------------------------------
# Where a release may be written
# ---------------------------------------------------------------------------


def test_refuses_out_inside_the_source_tree(project):
    for out in (project / "cs231n", project, project.parent):
        with pytest.raises(release.ReleaseError, match=r"--out .*(source tree|the project itself)"):
            build(project, out=out)
    assert not (project / "cs231n" / "student").exists()


def test_refuses_a_root_that_is_not_a_project(tmp_path):
    (tmp_path / "site-packages" / "numpy").mkdir(parents=True)
    with pytest.raises(release.ReleaseError, match=r"not a project folder \(no cs231n/"):
        build(tmp_path / "site-packages")
    assert list((tmp_path / "site-packages").iterdir()) == [tmp_path / "site-packages" / "numpy"]


def test_refuses_a_directory_it_did_not_create(project, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious\n")
    with pytest.raises(release.ReleaseError, match=r"was not created by\s+instructor_tools.release"):
        build(project, out=foreign)
    assert sorted(p.name for p in foreign.iterdir()) == ["thesis.tex"]


def test_rerun_replaces_its_own_release(project, tmp_path):
    out = tmp_path / "out"
    release_dir, _, _ = build(project, out=out)
    (release_dir / "student_added.txt").write_text("from an earlier run\n")
    build(project, out=out)
    assert not (release_dir / "student_added.txt").exists()
    assert sorted(p.name for p in out.iterdir()) == [release.OUT_MARKER, "student", "student.zip"]


def test_cli_summary(project, capsys):
    write_files(project, {"tests/test_forgotten.py": "def test_x():\n    pass\n"})
    assert release.main(["--root", str(project), "--name", "hw2"]) == 0
    out = capsys.readouterr().out
    head = git(project, "rev-parse", "HEAD").decode()[:12]
    assert f"release: {len(SHIPPED)} files of commit {head} -> {project / 'release' / 'hw2'}" in out
    assert (f"{N_REGIONS} solution regions replaced in {NB}, cs231n/layers.py, "
            f"cs231n/norms.py") in out
    assert "1 answers replaced by the prompt" in out
    assert "release: note: untracked, so not shipped: tests/test_forgotten.py" in out


# ---------------------------------------------------------------------------
# This project's own release, built from a clone of its last commit
# ---------------------------------------------------------------------------


def _has_regions(root):
    for path in (root / "cs231n").rglob("*.py"):
        try:
            plan_regions = solution_regions(path.read_text())[0]
        except OSError:
            continue
        if plan_regions:
            return True
    return False


needs_solution = pytest.mark.skipif(
    not _has_regions(REPO),
    reason="this tree is a student release: it holds no solution regions to release",
)


def _repo_head():
    done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", "-q", "HEAD"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


@pytest.fixture(scope="module")
def real_release(tmp_path_factory):
    """The release of HEAD, built in a clone: the same for CI and for a developer whose
    working tree has uncommitted changes (which are not part of it: a warning says so)."""
    head = _repo_head()
    if head is None:
        pytest.skip("this project is not a git checkout: its release cannot be built")
    clone = tmp_path_factory.mktemp("clone") / "project"
    git(REPO.parent, "clone", "-q", "--no-checkout", str(REPO), str(clone))
    git(clone, "checkout", "-q", "--detach", head)
    changed, _ = release_git._work_tree_status(REPO)  # shipped files and the student README
    dirty = sorted(changed)
    if dirty:
        warnings.warn(f"the release tests use the last commit; uncommitted changes to "
                      f"{', '.join(dirty)} are not part of it", stacklevel=1)
    out = tmp_path_factory.mktemp("real-release")
    release_dir, zip_path, plan = release.build_release(clone, out=out, name="student")
    # `make test` installs CIFAR-10 before testing; lend the release the installed copy.
    data = REPO / "datasets" / "cifar-10-batches-py"
    if data.is_dir():
        (release_dir / "datasets" / "cifar-10-batches-py").symlink_to(data)
    return release_dir, plan, clone


def _tracked(root, under=""):
    listed = git(root, "ls-files", "-z", "--", *([under] if under else []))
    return sorted(p for p in listed.decode().split("\0") if p)


@needs_solution
def test_real_release_cs231n_holds_exactly_the_students_files(real_release):
    release_dir, _, clone = real_release
    released = sorted(p.relative_to(release_dir).as_posix()
                      for p in (release_dir / "cs231n").rglob("*") if p.is_file())
    assert released == _tracked(clone, "cs231n")
    for tool in ("release.py", "submission.py", "cifar10_setup.py", "markers.py"):
        assert not (release_dir / "cs231n" / tool).exists(), tool


@needs_solution
def test_real_release_ships_only_the_allow_list(real_release):
    release_dir, plan, clone = real_release
    # (less the data set lent by the fixture)
    shipped = [rel for rel in shipped_files(release_dir)
               if not rel.startswith("datasets/cifar-10-batches-py")]
    assert shipped == plan.files
    # the allow-list, written out: .py files of the three packages and these names
    listed = ("tests/nbval_sanitize.cfg", "BatchNormalization.ipynb", "Dropout.ipynb",
              "cs231n.jupyterlab-workspace", "datasets/get_datasets.sh", "Makefile",
              "pyproject.toml", "requirements.txt", "collectSubmission.sh", ".gitignore")
    expected = sorted([rel for rel in _tracked(clone) if rel in listed or (
        rel.split("/")[0] in ("cs231n", "student_tools", "tests") and rel.endswith(".py"))]
        + ["README.md", contract.FINGERPRINT])
    assert shipped == expected
    assert not [rel for rel in shipped if rel.startswith(("instructor_tools/", ".ci/"))]
    assert "requirements-ci.txt" not in shipped
    assert not [rel for rel in shipped if rel.endswith((".zip", ".pdf", ".pkl"))]
    readme = (release_dir / "README.md").read_text()
    assert readme == (clone / release.STUDENT_README).read_text()


@needs_solution
def test_real_release_student_files_match_the_submission_list(real_release):
    _, plan, _ = real_release
    py_with_regions = sorted({r.path for r in plan.regions if r.path.endswith(".py")})
    assert py_with_regions == sorted(contract.REGION_FILES)
    assert set(contract.REGION_FILES) <= set(contract.REQUIRED_CODE)
    notebooks = sorted({r.notebook for r in plan.regions})
    assert set(notebooks) <= set(contract.NOTEBOOKS)


@needs_solution
@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
@pytest.mark.parametrize("target", ["release", "bench", "grade"])
def test_real_release_instructor_targets_stop_clearly(real_release, target):
    release_dir, _, _ = real_release
    done = subprocess.run(["make", target], cwd=release_dir, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    assert (f"make: '{target}' is for instructors; instructor_tools/ is not part of the "
            f"student version") in done.stderr
    assert not (release_dir / ".venv").exists()  # stopped before setting anything up


@needs_solution
def test_real_release_imports_and_raises_not_implemented(real_release):
    release_dir, plan, _ = real_release
    functions = sorted({(r.path, r.function) for r in plan.regions if r.path.endswith(".py")})
    probe = (
        "import importlib, json, sys\n"
        "import cs231n\n"
        "assert cs231n.__file__.startswith(sys.argv[1]), cs231n.__file__\n"
        "for path in json.loads(sys.argv[2]):\n"
        "    importlib.import_module(path[:-3].replace('/', '.'))\n"
        "from cs231n import layers\n"
        "import numpy as np\n"
        "try:\n"
        "    layers.dropout_forward(np.ones((2, 3)), {'mode': 'train', 'p': 0.5})\n"
        "except NotImplementedError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(release_dir),
         json.dumps(sorted({path for path, _ in functions}))],
        cwd=release_dir, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(release_dir)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("dropout_forward: not implemented yet; see Dropout.ipynb, section")


@needs_solution
def test_real_release_keeps_the_markers(real_release):
    """Each region of the last commit is in the release with its two marker lines
    unchanged and, between them, only the TODO comment and the raise."""
    release_dir, plan, clone = real_release

    def markers(lines):
        return [line for line in lines
                if release.SOLUTION_BEGIN_RE.match(line) or release.SOLUTION_END_RE.match(line)]

    for rel in sorted({r.path for r in plan.regions}):
        source = (clone / rel).read_text().splitlines()
        released = (release_dir / rel).read_text().splitlines()
        assert markers(released) == markers(source), rel
        regions = [r for r in plan.regions if r.path == rel]
        begins = [i for i, line in enumerate(released) if release.SOLUTION_BEGIN_RE.match(line)]
        assert len(begins) == len(regions), rel
        for region, at in zip(sorted(regions, key=lambda r: r.begin), begins):
            assert released[at + 1] == region.indent + release.TODO_COMMENT
            assert released[at + 2] == region.indent + (
                f"raise NotImplementedError('{region.function}: not implemented yet; see "
                f"{region.notebook}, section \"{region.section}\"')")
            assert release.SOLUTION_END_RE.match(released[at + 3]), (rel, at)


_RENAME_RE = re.compile(r"""(?P<string>(?:(?<!\w)[rRbBuUfF]{1,2})?(?:"[^"\n]*"|'[^'\n]*'))"""
                        r"|(?P<name>[^\W\d]\w*)|(?P<number>\d[\w.]*)|(?P<op>==|!=|<=|>=|[^\s\w])")


def _renamed(code):
    """code with every name renamed (renamed_0, renamed_1...), as a copier hiding a copy
    would: all but keywords, attributes and keyword arguments (the API the copy must call),
    and what is inside strings. Works on comment text too (no tokenize)."""
    tokens = list(_RENAME_RE.finditer(code))
    names, depth, out, at = {}, 0, [], 0
    for i, tok in enumerate(tokens):
        if tok.lastgroup == "op":
            depth += {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}.get(tok[0], 0)
        if tok.lastgroup != "name" or keyword.iskeyword(tok[0]):
            continue
        before = tokens[i - 1][0] if i else ""
        after = tokens[i + 1][0] if i + 1 < len(tokens) else ""
        if before == "." or (depth > 0 and after == "=" and before in ("(", ",")):
            continue
        out += [code[at : tok.start()], names.setdefault(tok[0], f"renamed_{len(names)}")]
        at = tok.end()
    return "".join(out) + code[at:]


@needs_solution
def test_real_release_token_check_catches_each_region_renamed(real_release):
    """On the course's own regions: a renamed copy of each region (of three lines or more)
    is refused anywhere, and so is each decisive line alone, renamed; among them the
    closed-form dx of batchnorm_backward_alt and dropout's mask."""
    _, plan, _ = real_release
    index = leaks._token_needles(plan.regions)
    needles = [n for found in index.values() for n in found]
    covered = {n.described for n in needles}

    def refused_as(code, described):
        problems = release.find_leaks({"tests/test_planted.py": code.encode()}, plan.regions, [])
        return any(p.startswith("tests/test_planted.py: holds ") and described in p
                   for p in problems)

    for region in plan.regions:
        described = f"the solution region at {region.where()}"
        tokens, _ = leaks._region_tokens(region)
        if len(tokens) >= release.WINDOW_TOKENS:
            assert described in covered, f"{described}: all of it is in the given code"
        if described in covered:
            body = textwrap.dedent("\n".join(region.body))
            assert refused_as(_renamed(body), described), described
    statements = [n for n in needles if n.statement]
    for needle in statements:
        assert refused_as(_renamed(needle.statement), needle.described), needle.statement
    by_function = {f"the solution region at {r.where()}": r.function for r in plan.regions}
    alt = [n for n in statements if by_function[n.described] == "batchnorm_backward_alt"]
    assert any(_tokens(n.statement) == _tokens("dx = (g * s / n) * (n * d - b - h * k)")
               for n in alt), "the closed-form dx of batchnorm_backward_alt is not decisive"
    dropout = next(r for r in plan.regions if r.function == "dropout_forward")
    mask = [said for _, said, comment in leaks._region_tokens(dropout)[1]
            if not comment and said.startswith("mask =")]
    assert mask, "dropout_forward's region has no 'mask = ...' statement"
    assert refused_as(_renamed(mask[0]), f"the solution region at {dropout.where()}"), mask[0]


@needs_solution
def test_token_readings_agree_on_the_projects_python(real_release):
    """The leak check reads region code with tokenize and the release with a regex: on
    every Python file of the last commit they give the same tokens."""
    _, _, clone = real_release
    for rel in _tracked(clone):
        if not rel.endswith(".py"):
            continue
        text = (clone / rel).read_text()
        python = leaks._python_raw(text)
        assert python is not None, rel
        regex = leaks._regex_raw(leaks._blank_comments(text))
        assert leaks._normal_tokens(python[0]) == leaks._normal_tokens(regex), rel


_NOT_IMPLEMENTED_RE = re.compile(
    r'NotImplementedError: (?P<function>[\w.]+): not implemented yet; see '
    r'(?P<notebook>[\w.-]+\.ipynb), section "(?P<section>[^"]+)"'
)


@needs_solution
def test_real_release_unit_tests_fail_only_with_not_implemented(real_release, tmp_path):
    """What `make test` shows a student before writing anything: every failing test fails
    with NotImplementedError naming one of their functions and its notebook section."""
    release_dir, plan, _ = real_release
    junit = tmp_path / "junit.xml"
    # --continue-on-collection-errors only so that every test is classified here; a
    # collection error is then reported on its own below.
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider", "--tb=no",
         "--continue-on-collection-errors", f"--junitxml={junit}"],
        cwd=release_dir, capture_output=True, text=True, timeout=900,
        env={**os.environ, "PYTHONPATH": str(release_dir)},
    )
    outcomes = _junit_outcomes(junit)
    import_errors = {k: v for k, v in outcomes.items() if k.startswith("collect:")}
    assert import_errors == {}, (
        f"these test modules fail at import in the release: {import_errors}. A module-level "
        f"call of a student function stops `make test` before any test runs ('Interrupted: "
        f"1 error during collection'); make such calls lazily (in a fixture or the test)"
    )
    failures = {k: v for k, v in outcomes.items() if v[0] not in ("passed", "skipped")}
    assert failures, "the release's tests all pass: were the solutions left in?"
    others = {k: v for k, v in failures.items() if v[0] != "NotImplementedError"}
    assert others == {}, done.stdout[-3000:]
    sections = {(r.function, r.notebook, r.section) for r in plan.regions}
    unnamed = {}
    for test, (_, message) in failures.items():
        match = _NOT_IMPLEMENTED_RE.search(message)
        if match is None or tuple(match.groups()) not in sections:
            unnamed[test] = message
    assert unnamed == {}, "failures that do not name a student function and its section"


@needs_solution
@pytest.mark.parametrize("notebook", contract.NOTEBOOKS)
def test_real_release_notebook_first_fails_with_not_implemented(real_release, notebook,
                                                                 monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    release_dir, _, _ = real_release
    path = release_dir / notebook
    if not path.is_file():
        pytest.fail(f"{notebook} is not in the release")
    nb = nbformat.read(path, as_version=4)
    monkeypatch.setenv("PYTHONPATH", str(release_dir))  # the kernel imports the release
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(release_dir)}})
    with pytest.raises(nbclient.exceptions.CellExecutionError) as info:
        client.execute()
    assert info.value.ename == "NotImplementedError", str(info.value)[-2000:]


@needs_solution
def test_real_release_fingerprint_lets_the_packer_warn(real_release, tmp_path):
    """The release ships the course's fingerprint; a student's edit outside a region is
    warned about with its file and line, and an untouched release warns about nothing."""
    release_dir, _, _ = real_release
    course = contract.load_fingerprint(release_dir)
    assert course is not None and set(contract.REGION_FILES) <= set(course["regions"])
    texts = {p.relative_to(release_dir).as_posix(): p.read_text(encoding="utf-8")
             for p in sorted((release_dir / "cs231n").rglob("*.py"))}
    notebooks = {n: nbformat.read(release_dir / n, as_version=4) for n in contract.NOTEBOOKS}
    refusals, warnings = contract.review(texts, notebooks, course)
    assert refusals == [] and warnings == []
    texts["cs231n/layers.py"] += "EXTRA = 1\n"
    _, warnings = contract.review(texts, notebooks, course)
    line = len(texts["cs231n/layers.py"].splitlines())
    assert warnings == [f"cs231n/layers.py:{line}: added outside the answer regions (not "
                        f"graded): EXTRA = 1"]


@needs_solution
def test_real_release_dropout_is_an_exercise(real_release):
    """Dropout's scaling is the student's to find: both modes raise NotImplementedError in
    the release, no 1/p outside the regions of the package or in the tests, and no
    markdown before Dropout's Inline Question 1 states the expectation argument."""
    release_dir, _, _ = real_release
    code = ("import numpy as np\nfrom cs231n.layers import dropout_forward\n"
            "for mode in ('test', 'train'):\n"
            "    try:\n        dropout_forward(np.ones(3), {'mode': mode, 'p': 0.5})\n"
            "    except NotImplementedError:\n        print(mode, 'raises')\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=release_dir, capture_output=True,
                          text=True, timeout=120)
    assert done.stdout.split("\n")[:2] == ["test raises", "train raises"], done.stderr
    pattern = re.compile(r"/ ?p([^a-zA-Z_(]|$)")
    files = [release_dir / "cs231n" / "layers.py",
             *sorted((release_dir / "cs231n" / "classifiers").rglob("*.py")),
             *sorted((release_dir / "tests").rglob("*.py"))]
    hits = [f"{f.relative_to(release_dir)}:{n}: {line}" for f in files
            for n, line in enumerate(f.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []
    nb = nbformat.read(release_dir / "Dropout.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and "Inline Question 1" in cell.source:
            break
        if cell.cell_type == "markdown":
            for banned in (r"\mathbb{E}", "E[", "expected scale"):
                assert banned not in cell.source, (banned, cell.source[:200])
