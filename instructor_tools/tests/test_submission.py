"""Tests of student_tools.submission and collectSubmission.sh on fixture projects in tmp_path.

The PDF test needs a real Chromium and Debian's libjs-mathjax; it is skipped without
them unless REQUIRE_PDF_TOOLS=1 (CI sets it), where their absence is a failure.
"""
import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from student_tools import submission
from student_tools.markers import ANSWER_BEGIN, ANSWER_END, ANSWER_PROMPT

REPO = Path(__file__).resolve().parents[2]
MATH = r"Normalize: $\hat{x} = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}$ and" "\n\n" \
       r"$$\frac{\partial L}{\partial \gamma} = \sum_i dout_i \hat{x}_i$$"


def answer_cell(text):
    return new_markdown_cell(f"**Question:** why?\n\n{ANSWER_BEGIN}\n{text}\n{ANSWER_END}")


def run_all_notebook(title, answer="Because the variance is biased.", extra_cells=()):
    """A notebook as Restart & Run All leaves it: counts 1, 2, ... on non-empty cells."""
    cells = [
        new_markdown_cell(f"# {title}\n\n{MATH}"),
        new_code_cell("x = 2", execution_count=1),
        new_code_cell("", execution_count=None),  # empty: skipped, no count
        new_code_cell("print(x * 21)", execution_count=2,
                      outputs=[new_output("stream", name="stdout", text="42\n")]),
        answer_cell(answer),
        new_code_cell("x + 1", execution_count=3,
                      outputs=[new_output("execute_result", data={"text/plain": "3"},
                                          execution_count=3)]),
        *extra_cells,
    ]
    return new_notebook(cells=cells)


def write_nb(path, nb):
    nbformat.write(nb, path)


def tree_digest(root):
    """{relative path: sha256} of every file under root."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(root).rglob("*")) if p.is_file()
    }


@pytest.fixture
def project(tmp_path):
    """A project a student would submit, with the strays a real one accumulates."""
    root = tmp_path / "assignment"
    pkg = root / "cs231n"
    (pkg / "classifiers").mkdir(parents=True)
    # The real tools, so that collectSubmission.sh runs this tree's own packer.
    shutil.copy(REPO / "cs231n" / "__init__.py", pkg / "__init__.py")
    (root / "student_tools").mkdir()
    for rel in ("__init__.py", "markers.py", "submission.py"):
        shutil.copy(REPO / "student_tools" / rel, root / "student_tools" / rel)
    shutil.copy(REPO / "collectSubmission.sh", root / "collectSubmission.sh")
    (pkg / "layers.py").write_text("def batchnorm_forward(x):\n    return x\n")
    (pkg / "classifiers" / "__init__.py").write_text("")
    (pkg / "classifiers" / "fc_net.py").write_text("class FullyConnectedNet:\n    pass\n")
    write_nb(root / "BatchNormalization.ipynb", run_all_notebook("Batch normalization"))
    write_nb(root / "Dropout.ipynb", run_all_notebook("Dropout"))
    # Strays that must never be packed.
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "layers.cpython-311.pyc").write_bytes(b"\0pyc")
    (pkg / "notes.txt").write_text("scratch\n")
    (pkg / ".ipynb_checkpoints").mkdir()
    (pkg / ".ipynb_checkpoints" / "layers-checkpoint.py").write_text("old = 1\n")
    (root / ".venv" / "bin").mkdir(parents=True)
    # A launcher, not a symlink: a venv's python finds its packages only when started by
    # its own path.
    launcher = root / ".venv" / "bin" / "python"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    launcher.chmod(0o755)
    (root / ".venv" / "lib.py").write_text("venv = 1\n")
    (root / "datasets" / "cifar-10-batches-py").mkdir(parents=True)
    (root / "datasets" / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"\1" * 64)
    (root / "scratch.py").write_text("print('not part of the package')\n")
    return root


NO_TOOLS = (None, None)


def refused(root, **kwargs):
    with pytest.raises(submission.SubmissionRefused) as info:
        submission.make_submission(root, tools=NO_TOOLS, **kwargs)
    return info.value.reasons


def edit_nb(root, name, edit):
    nb = nbformat.read(root / name, as_version=4)
    edit(nb)
    nbformat.write(nb, root / name)


# ---------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------


def _remove(rel):
    return lambda root: (root / rel).unlink()


def _set_counts(*counts):
    def edit(nb):
        code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
        for cell, count in zip(code, counts):
            cell.execution_count = count
    return lambda root: edit_nb(root, "Dropout.ipynb", edit)


def _add_error(tags=()):
    def edit(nb):
        cell = new_code_cell("y = undefined_name", execution_count=4, metadata={"tags": list(tags)})
        cell.outputs = [new_output("error", ename="NameError",
                                   evalue="name 'undefined_name' is not defined",
                                   traceback=["Traceback..."])]
        nb.cells.append(cell)
    return lambda root: edit_nb(root, "BatchNormalization.ipynb", edit)


def _answer(text):
    def edit(nb):
        nb.cells[4] = answer_cell(text)
    return lambda root: edit_nb(root, "Dropout.ipynb", edit)


def _break_answer_markers(root):
    def edit(nb):
        nb.cells[4].source = nb.cells[4].source.replace(ANSWER_END, "")
    edit_nb(root, "Dropout.ipynb", edit)


def _foreign_output(root):
    (root / submission.DEFAULT_ZIP).write_bytes(b"my holiday photos")


REFUSALS = [
    pytest.param(_remove("Dropout.ipynb"), r"missing in .*: Dropout\.ipynb$", id="missing-notebook"),
    pytest.param(_remove("cs231n/layers.py"), r"missing in .*: cs231n/layers\.py$",
                 id="missing-package-file"),
    pytest.param(_set_counts(1, 2, None),
                 r"^Dropout\.ipynb: 1 code cell\(s\) never executed: cell 6 \('x \+ 1'\)\. Run "
                 r"Kernel > Restart Kernel and Run All Cells, then save$",
                 id="never-executed"),
    pytest.param(_set_counts(1, 3, 2),
                 r"^Dropout\.ipynb: cell 4 \('print\(x \* 21\)'\) shows In \[3\] where a fresh "
                 r"top-to-bottom run shows In \[2\] \(cells were run out of order or re-run\)",
                 id="out-of-order"),
    pytest.param(_set_counts(1, 2, 7), r"shows In \[7\] where a fresh top-to-bottom run shows In \[3\]",
                 id="re-run-gap"),
    pytest.param(_set_counts(5, 6, 7),
                 r"cell 2 \('x = 2'\) shows In \[5\] .*\(the kernel was not restarted before running\)",
                 id="not-fresh"),
    pytest.param(_add_error(), r"^BatchNormalization\.ipynb: cell 7 \('y = undefined_name'\) shows "
                 r"an error: NameError: name 'undefined_name' is not defined$", id="error-output"),
    pytest.param(_answer(ANSWER_PROMPT), r"answer in markdown cell 5 still holds the prompt",
                 id="answer-is-prompt"),
    pytest.param(_answer(f"{ANSWER_PROMPT} I think so"), r"still holds the prompt",
                 id="answer-keeps-prompt"),
    pytest.param(_answer("  \n "), r"^Dropout\.ipynb: answer in markdown cell 5 is empty$",
                 id="answer-empty"),
    pytest.param(_break_answer_markers, r"without <!-- END ANSWER -->; restore the markers",
                 id="answer-markers-damaged"),
    pytest.param(_foreign_output, r"cs231n_submission\.zip exists and is not a submission zip",
                 id="would-clobber-foreign-file"),
]


@pytest.mark.parametrize("damage, reason_re", REFUSALS)
def test_refusal(project, damage, reason_re):
    damage(project)
    before = tree_digest(project)
    reasons = refused(project)
    assert len(reasons) == 1, reasons
    assert re.search(reason_re, reasons[0]), reasons[0]
    assert tree_digest(project) == before  # nothing written, nothing changed


def test_every_reason_listed_at_once_by_the_command(project, capsys):
    _remove("cs231n/classifiers/fc_net.py")(project)
    _set_counts(1, None, 2)(project)
    _add_error()(project)
    _answer(ANSWER_PROMPT)(project)
    before = tree_digest(project)
    assert submission.main(["--root", str(project), "--no-pdf"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "Submission NOT made. Fix these and run it again:"
    numbered = [line for line in err[1:] if re.match(r"  \d+\. ", line)]
    assert [line.split(".")[0].strip() for line in numbered] == ["1", "2", "3", "4"]
    assert "cs231n/classifiers/fc_net.py" in numbered[0]
    assert "BatchNormalization.ipynb" in numbered[1] and "shows an error" in numbered[1]
    assert "Dropout.ipynb" in numbered[2] and "never executed" in numbered[2]
    assert "Dropout.ipynb" in numbered[3] and "still holds the prompt" in numbered[3]
    assert tree_digest(project) == before


@pytest.mark.parametrize("edit", [
    pytest.param(_add_error(tags=["raises-exception"]), id="error-in-raises-exception-cell"),
    pytest.param(lambda root: edit_nb(root, "Dropout.ipynb", lambda nb: nb.cells.insert(
        2, new_code_cell("  \n", execution_count=12))), id="empty-cell-with-stale-count"),
])
def test_accepted_variants(project, edit):
    edit(project)
    result = submission.make_submission(project, tools=NO_TOOLS)
    assert result.zip_path.is_file()


def test_a_notebook_run_by_a_real_kernel_is_accepted(project):
    """What Run All really produces (here nbclient, as `make notebooks` runs it)."""
    nbclient = pytest.importorskip("nbclient")
    nb = new_notebook(cells=[
        new_markdown_cell("# Dropout"),
        new_code_cell("import math"),
        new_code_cell(""),
        new_code_cell("print(math.pi)"),
        new_code_cell("raise ValueError('shown on purpose')",
                      metadata={"tags": ["raises-exception"]}),
        new_code_cell("math.e"),
        answer_cell("Inverted dropout keeps the expectation."),
    ])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    assert [c.get("execution_count") for c in nb.cells if c.cell_type == "code"] == [
        1, None, 2, 3, 4]
    write_nb(project / "Dropout.ipynb", nb)
    assert submission.check_submission(project, project / "out.zip") == []


# ---------------------------------------------------------------------------
# A good submission
# ---------------------------------------------------------------------------

PACKED = [
    "BatchNormalization.ipynb",
    "Dropout.ipynb",
    "cs231n/__init__.py",
    "cs231n/classifiers/__init__.py",
    "cs231n/classifiers/fc_net.py",
    "cs231n/layers.py",
]


def read_manifest(archive):
    lines = archive.read(submission.MANIFEST).decode().splitlines()
    pairs = [line.split("  ", 1) for line in lines]
    return {path: digest for digest, path in pairs}


def test_good_submission_zip_and_manifest(project):
    before = tree_digest(project)
    result = submission.make_submission(project, tools=NO_TOOLS)
    out = project / submission.DEFAULT_ZIP
    assert result.zip_path == out
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == sorted(PACKED + [submission.MANIFEST])
        manifest = read_manifest(archive)
        assert sorted(manifest) == PACKED
        for rel in PACKED:
            data = archive.read(rel)
            assert data == (project / rel).read_bytes()
            assert manifest[rel] == hashlib.sha256(data).hexdigest()
        assert archive.comment == submission.ZIP_COMMENT
    # The student's files are untouched; the zip is the only new file (no temp left).
    after = tree_digest(project)
    assert after.pop(submission.DEFAULT_ZIP)
    assert after == before
    assert "no PDF" in result.pdf_problem and submission.INSTALL_HINT in result.pdf_problem


def test_manifest_verifies_with_sha256sum(project, tmp_path):
    if shutil.which("sha256sum") is None:
        pytest.skip("no sha256sum on this machine")
    submission.make_submission(project, tools=NO_TOOLS)
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(project / submission.DEFAULT_ZIP) as archive:
        archive.extractall(unpacked)
    done = subprocess.run(["sha256sum", "--check", "--strict", submission.MANIFEST],
                          cwd=unpacked, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(": OK") == len(PACKED)


def test_rerun_replaces_our_previous_zip(project):
    submission.make_submission(project, tools=NO_TOOLS)
    (project / "cs231n" / "extra.py").write_text("added = True\n")
    result = submission.make_submission(project, tools=NO_TOOLS)
    assert "cs231n/extra.py" in result.members
    with zipfile.ZipFile(project / submission.DEFAULT_ZIP) as archive:
        assert "cs231n/extra.py" in archive.namelist()


def test_out_elsewhere_and_missing_folder(project, tmp_path):
    out = tmp_path / "handin.zip"
    submission.make_submission(project, out=out, tools=NO_TOOLS)
    assert zipfile.is_zipfile(out)
    assert not (project / submission.DEFAULT_ZIP).exists()
    reasons = refused(project, out=tmp_path / "no" / "such" / "dir.zip")
    assert reasons == [f"--out {tmp_path / 'no' / 'such' / 'dir.zip'}: folder "
                       f"{tmp_path / 'no' / 'such'} does not exist"]


def test_without_pdf_tools_the_zip_is_written_and_the_fix_named(project, monkeypatch, capsys):
    monkeypatch.setattr(submission, "find_pdf_tools", lambda: (None, None))
    assert submission.main(["--root", str(project)]) == 2
    captured = capsys.readouterr()
    assert "Wrote " in captured.out
    assert "no PDF: a Chromium browser and MathJax" in captured.err
    assert "sudo apt-get install chromium libjs-mathjax" in captured.err
    with zipfile.ZipFile(project / submission.DEFAULT_ZIP) as archive:
        assert submission.NOTEBOOKS_PDF not in archive.namelist()


def test_browser_failure_still_writes_the_zip(project, tmp_path):
    fake_browser = tmp_path / "fake-chromium"
    fake_browser.write_text("#!/bin/sh\necho 'cannot open display' >&2\nexit 3\n")
    fake_browser.chmod(0o755)
    mathjax = tmp_path / "MathJax.js"
    mathjax.write_text("")
    result = submission.make_submission(project, tools=(str(fake_browser), mathjax))
    assert result.pdf_problem.startswith(f"no PDF: {fake_browser} could not print "
                                         f"BatchNormalization.ipynb (exit 3)")
    assert "cannot open display" in result.pdf_problem
    assert submission.NOTEBOOKS_PDF not in result.members


def test_collect_submission_script(project):
    script = project / "collectSubmission.sh"
    done = subprocess.run(["bash", str(script), "--no-pdf"], cwd="/", capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert zipfile.is_zipfile(project / submission.DEFAULT_ZIP)
    _answer("")(project)
    done = subprocess.run(["bash", str(script), "--no-pdf"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert "1. Dropout.ipynb: answer in markdown cell 5 is empty" in done.stderr


# ---------------------------------------------------------------------------
# The PDF, with a real browser
# ---------------------------------------------------------------------------


def _pdf_tools_or_skip():
    browser, mathjax = submission.find_pdf_tools()
    if browser is None or mathjax is None:
        if os.environ.get("REQUIRE_PDF_TOOLS") == "1":
            pytest.fail(f"REQUIRE_PDF_TOOLS=1 but browser={browser}, MathJax={mathjax}; "
                        f"install with: {submission.INSTALL_HINT}")
        pytest.skip(f"no Chromium or MathJax ({submission.INSTALL_HINT})")
    return browser, mathjax


def test_pdf_of_both_notebooks_with_rendered_math(project, tmp_path):
    _pdf_tools_or_skip()
    pypdf = pytest.importorskip("pypdf")
    before = tree_digest(project)
    result = submission.make_submission(project)
    assert result.pdf_problem == ""
    with zipfile.ZipFile(project / submission.DEFAULT_ZIP) as archive:
        pdf_bytes = archive.read(submission.NOTEBOOKS_PDF)
        assert read_manifest(archive)[submission.NOTEBOOKS_PDF] == (
            hashlib.sha256(pdf_bytes).hexdigest())
    pdf_path = tmp_path / "notebooks.pdf"
    pdf_path.write_bytes(pdf_bytes)
    reader = pypdf.PdfReader(pdf_path)
    assert len(reader.pages) == result.pdf_pages >= len(submission.NOTEBOOKS)
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Batch normalization" in text and "Dropout" in text
    assert "Because the variance is biased." in text
    # MathJax typeset the TeX: none of its source survives as text.
    for raw_tex in ("$$", "\\frac", "\\hat", "\\sqrt", "\\partial"):
        assert raw_tex not in text
    assert [item.title for item in reader.outline] == list(submission.NOTEBOOKS)
    after = tree_digest(project)
    after.pop(submission.DEFAULT_ZIP)
    assert after == before
