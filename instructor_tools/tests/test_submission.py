"""Tests of student_tools.submission and collectSubmission.sh on fixture projects in tmp_path.

By default the packer makes no PDF and needs no browser (tested with Chromium off PATH).
``--pdf`` prints one with student_tools.notebook_pdf: those tests need a real Chromium and
Debian's libjs-mathjax; they are skipped without them unless REQUIRE_PDF_TOOLS=1 (CI sets
it), where their absence is a failure. What the packer hands to Chromium (the HTML, the
flags) is tested everywhere, with a fake browser. The grader's PDFs: test_grade_pdf.py.
"""
import builtins
import hashlib
import html.parser
import io
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell

from student_tools import notebook_pdf, submission
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
    """{relative path: sha256} of every file under root (size and mtime for the sparse
    giants of the size tests, which are not worth reading)."""
    digest = {}
    for p in sorted(Path(root).rglob("*")):
        if p.is_file():
            st = p.stat()
            digest[p.relative_to(root).as_posix()] = (
                hashlib.sha256(p.read_bytes()).hexdigest() if st.st_size < 10**7
                else (st.st_size, st.st_mtime_ns))
    return digest


@pytest.fixture
def project(tmp_path):
    """A project a student would submit, with the strays a real one accumulates."""
    root = tmp_path / "assignment"
    pkg = root / "cs231n"
    (pkg / "classifiers").mkdir(parents=True)
    # The real tools, so that collectSubmission.sh runs this tree's own packer.
    shutil.copy(REPO / "cs231n" / "__init__.py", pkg / "__init__.py")
    (root / "student_tools").mkdir()
    for rel in ("__init__.py", "markers.py", "submission.py", "contract.py", "allowlist.py",
                "notebook_pdf.py"):
        shutil.copy(REPO / "student_tools" / rel, root / "student_tools" / rel)
    shutil.copy(REPO / "collectSubmission.sh", root / "collectSubmission.sh")
    (pkg / "layers.py").write_text("def batchnorm_forward(x):\n    return x\n")
    (pkg / "layer_utils.py").write_text("from cs231n.layers import *\n")
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


SECRET = "-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAA"


def _secret_file(root):
    """A private file outside the project (a key in the student's home, say)."""
    secret = root.parent / "home" / ".ssh" / "id_ed25519"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text(SECRET + "\n")
    return secret


def _link_py(root):
    (root / "cs231n" / "keys.py").symlink_to(_secret_file(root))


def _link_dir(root):
    elsewhere = root.parent / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "stolen.py").write_text("x = 1\n")
    (root / "cs231n" / "vendor").symlink_to(elsewhere, target_is_directory=True)


def _link_required(rel):
    def damage(root):
        real = root.parent / "real-copy"
        real.mkdir(exist_ok=True)
        (root / rel).rename(real / Path(rel).name)
        (root / rel).symlink_to(real / Path(rel).name)
    return damage


def _link_package(root):
    (root / "cs231n").rename(root.parent / "pkg")
    (root / "cs231n").symlink_to(root.parent / "pkg", target_is_directory=True)


def _named(rel, folder=False):
    def damage(root):
        path = os.path.join(os.fsencode(root), os.fsencode(rel))
        if folder:
            os.makedirs(path)
            path = os.path.join(path, b"helpers.py")
        with open(path, "w") as handle:
            handle.write("y = 2\n")
    return damage


def _sparse(rel, size):
    """A file of size bytes that costs no disk and no time (truncate leaves a hole)."""
    def damage(root):
        with open(root / rel, "wb") as handle:
            handle.truncate(size)
    return damage


def _fifo(root):
    os.mkfifo(root / "cs231n" / "pipe.py")  # open() on it would wait for a writer forever


REFUSALS = [
    pytest.param(_remove("Dropout.ipynb"), r"missing in .*: Dropout\.ipynb$", id="missing-notebook"),
    pytest.param(_remove("cs231n/layers.py"), r"missing in .*: cs231n/layers\.py$",
                 id="missing-package-file"),
    pytest.param(_set_counts(1, 2, None),
                 r"^Dropout\.ipynb: 1 code cell\(s\) never executed: section \"Dropout\", code cell "
                 r"'x \+ 1'\. Run "
                 r"Kernel > Restart Kernel and Run All Cells, then save$",
                 id="never-executed"),
    pytest.param(_set_counts(1, 3, 2),
                 r"^Dropout\.ipynb: section \"Dropout\", code cell \[3\] 'print\(x \* 21\)' shows In \[3\] "
                 r"where a fresh "
                 r"top-to-bottom run shows In \[2\] \(cells were run out of order or re-run\)",
                 id="out-of-order"),
    pytest.param(_set_counts(1, 2, 7), r"shows In \[7\] where a fresh top-to-bottom run shows In \[3\]",
                 id="re-run-gap"),
    pytest.param(_set_counts(5, 6, 7),
                 r"code cell \[5\] 'x = 2' shows In \[5\] .*\(the kernel was not restarted before running\)",
                 id="not-fresh"),
    pytest.param(_add_error(), r"^BatchNormalization\.ipynb: section \"Batch normalization\", code cell \[4\] "
                 r"'y = undefined_name' shows "
                 r"an error: NameError: name 'undefined_name' is not defined$", id="error-output"),
    pytest.param(_answer(ANSWER_PROMPT), r"the answer under \"Dropout\" still holds the prompt",
                 id="answer-is-prompt"),
    pytest.param(_answer(f"{ANSWER_PROMPT} I think so"), r"still holds the prompt",
                 id="answer-keeps-prompt"),
    pytest.param(_answer("  \n "), r"^Dropout\.ipynb: the answer under \"Dropout\" is empty$",
                 id="answer-empty"),
    pytest.param(_break_answer_markers, r"without <!-- END ANSWER -->; restore the markers",
                 id="answer-markers-damaged"),
    pytest.param(_foreign_output, r"cs231n_submission\.zip exists and is not a submission zip",
                 id="would-clobber-foreign-file"),
    pytest.param(_link_py, r"^cs231n/keys\.py is a symbolic link \(to .*/\.ssh/id_ed25519\); "
                 r"only real files are packed", id="symlink-py-to-private-key"),
    pytest.param(_link_dir, r"^cs231n/vendor is a symbolic link \(to .*/elsewhere\)",
                 id="symlink-folder"),
    pytest.param(_link_required("Dropout.ipynb"), r"^Dropout\.ipynb is a symbolic link",
                 id="symlink-notebook"),
    pytest.param(_link_required("cs231n/layers.py"), r"^cs231n/layers\.py is a symbolic link",
                 id="symlink-required-code"),
    pytest.param(_link_package, r"^cs231n is a symbolic link", id="symlink-package"),
    pytest.param(_named("cs231n/bad\nname.py"),
                 r"^the file name 'cs231n/bad\\nname\.py' contains the control character "
                 r"U\+000A; rename it$", id="newline-in-name"),
    pytest.param(_named("cs231n/tab\there.py"), r"'cs231n/tab\\there\.py' contains the "
                 r"control character U\+0009", id="tab-in-name"),
    pytest.param(_named("cs231n/esc\x1bdir", folder=True),
                 r"^the folder name 'cs231n/esc\\x1bdir' contains the control character U\+001B",
                 id="escape-in-folder-name"),
    pytest.param(_named("cs231n/notes\u202etxt.py"), r"contains the control character U\+202E",
                 id="right-to-left-override-in-name"),
    pytest.param(_named("cs231n/latin1-\udce9.py"), r"contains bytes that are not UTF-8",
                 id="non-utf8-name"),
    pytest.param(_sparse("cs231n/weights.py", 1_500_000_000),
                 r"^cs231n/weights\.py is 1\.5 GB, over the limit of 20\.0 MB for one file",
                 id="oversize-code-file"),
    pytest.param(_sparse("Dropout.ipynb", submission.MAX_FILE_BYTES + 1),
                 r"^Dropout\.ipynb is 20\.0 MB, over the limit", id="oversize-notebook"),
    pytest.param(_fifo, r"^cs231n/pipe\.py is not a regular file$", id="fifo"),
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
    assert submission.main(["--root", str(project)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "Submission NOT made. Fix these and run it again:"
    numbered = [line for line in err[1:] if re.match(r"  \d+\. ", line)]
    assert [line.split(".")[0].strip() for line in numbered] == ["1", "2", "3", "4"]
    assert "cs231n/classifiers/fc_net.py" in numbered[0]
    assert "BatchNormalization.ipynb" in numbered[1] and "shows an error" in numbered[1]
    assert "Dropout.ipynb" in numbered[2] and "never executed" in numbered[2]
    assert "Dropout.ipynb" in numbered[3] and "still holds the prompt" in numbered[3]
    assert tree_digest(project) == before


def test_oversize_file_is_refused_without_being_opened(project, monkeypatch):
    giant = project / "cs231n" / "dump.py"
    _sparse("cs231n/dump.py", 1_500_000_000)(project)
    opened = []

    def guard(real_open):
        def checked_open(path, *args, **kwargs):
            if isinstance(path, (str, bytes, os.PathLike)) and Path(os.fsdecode(path)) == giant:
                opened.append(path)
                raise AssertionError(f"{giant} was opened")
            return real_open(path, *args, **kwargs)
        return checked_open

    for module, name in ((os, "open"), (builtins, "open"), (io, "open")):
        monkeypatch.setattr(module, name, guard(getattr(module, name)))
    reasons = refused(project)
    monkeypatch.undo()
    assert opened == []
    assert reasons == ["cs231n/dump.py is 1.5 GB, over the limit of 20.0 MB for one file; it is "
                       "not part of the assignment: move it out of the project folder"]


def test_total_size_cap(project, monkeypatch):
    sizes, _ = submission.scan_files(project)
    monkeypatch.setattr(submission, "MAX_TOTAL_BYTES", sum(sizes.values()) - 1)
    reasons = refused(project)
    assert len(reasons) == 1 and re.match(r"the files to pack come to .* MB, over the limit",
                                          reasons[0]), reasons


def test_every_file_problem_listed_by_name_at_once(project):
    _link_py(project)
    _named("cs231n/bad\nname.py")(project)
    _sparse("cs231n/weights.py", 10**9)(project)
    reasons = refused(project)
    assert len(reasons) == 3, reasons
    assert any(r.startswith("cs231n/keys.py is a symbolic link") for r in reasons)
    assert any("'cs231n/bad\\nname.py'" in r for r in reasons)
    assert any(r.startswith("cs231n/weights.py is 1.0 GB") for r in reasons)


def test_read_bounded_refuses_links_pipes_and_growth(tmp_path):
    """The second line of defence: a file swapped between the scan and the read."""
    real = tmp_path / "real.py"
    real.write_bytes(b"x" * 100)
    assert submission._read_bounded(real, limit=100) == b"x" * 100
    with pytest.raises(ValueError, match="over the limit"):
        submission._read_bounded(real, limit=99)
    link = tmp_path / "link.py"
    link.symlink_to(real)
    with pytest.raises(OSError):  # O_NOFOLLOW: ELOOP
        submission._read_bounded(link)
    pipe = tmp_path / "pipe.py"
    os.mkfifo(pipe)
    with pytest.raises(ValueError, match="not a regular file"):  # O_NONBLOCK: no wait
        submission._read_bounded(pipe)


@pytest.mark.parametrize("edit", [
    pytest.param(_add_error(tags=["raises-exception"]), id="error-in-raises-exception-cell"),
    pytest.param(lambda root: (root / "cs231n" / "data.txt").symlink_to(_secret_file(root)),
                 id="non-py-symlink-is-neither-packed-nor-refused"),
    pytest.param(_named("cs231n/notes\n.txt"), id="odd-name-of-a-file-not-packed"),
    pytest.param(lambda root: (root / "cs231n" / ".ipynb_checkpoints" / "x.py").symlink_to(
        _secret_file(root)), id="symlink-in-hidden-folder-ignored"),
    pytest.param(lambda root: edit_nb(root, "Dropout.ipynb", lambda nb: nb.cells.insert(
        2, new_code_cell("  \n", execution_count=12))), id="empty-cell-with-stale-count"),
])
def test_accepted_variants(project, edit):
    edit(project)
    result = submission.make_submission(project, tools=NO_TOOLS)
    assert result.zip_path.is_file()
    assert sorted(result.members) == sorted(PACKED + [submission.MANIFEST])
    with zipfile.ZipFile(result.zip_path) as archive:
        assert all(SECRET.encode() not in archive.read(name) for name in archive.namelist())


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
    "cs231n/layer_utils.py",
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
    assert result.pdf_problem == "" and submission.NOTEBOOKS_PDF not in result.members


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
    monkeypatch.setattr(notebook_pdf, "find_pdf_tools", lambda: (None, None))
    assert submission.main(["--root", str(project), "--pdf"]) == 2
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
    result = submission.make_submission(project, pdf=True, tools=(str(fake_browser), mathjax))
    assert result.pdf_problem.startswith(f"no PDF: {fake_browser} could not print "
                                         f"BatchNormalization.ipynb (exit 3)")
    assert "cannot open display" in result.pdf_problem
    assert submission.NOTEBOOKS_PDF not in result.members


def test_collect_submission_script(project):
    script = project / "collectSubmission.sh"
    done = subprocess.run(["bash", str(script)], cwd="/", capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert zipfile.is_zipfile(project / submission.DEFAULT_ZIP)
    _answer("")(project)
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert '1. Dropout.ipynb: the answer under "Dropout" is empty' in done.stderr


def test_by_default_no_pdf_and_no_browser_looked_for(project, monkeypatch, capsys):
    def no_lookup(*args, **kwargs):
        raise AssertionError("the packer looked for a browser without --pdf")
    monkeypatch.setattr(notebook_pdf, "find_pdf_tools", no_lookup)
    monkeypatch.setattr(notebook_pdf, "pdf_tools", no_lookup)
    monkeypatch.setenv(notebook_pdf.BROWSER_ENV, "/no/such/browser")  # not even read
    for args in ([], ["--no-pdf"]):  # --no-pdf: still accepted, and the default anyway
        assert submission.main(["--root", str(project), *args]) == 0
        captured = capsys.readouterr()
        assert "Wrote " in captured.out and "WARNING" not in captured.err
        with zipfile.ZipFile(project / submission.DEFAULT_ZIP) as archive:
            assert sorted(archive.namelist()) == sorted(PACKED + [submission.MANIFEST])


def _env_without_browsers(tmp_path):
    """os.environ with a PATH holding only what collectSubmission.sh itself runs (bash,
    dirname): no Chromium, Chrome or Edge, and no CS231N_BROWSER / CS231N_MATHJAX."""
    folder = tmp_path / "bin-without-browsers"
    folder.mkdir()
    for tool in ("bash", "dirname"):
        (folder / tool).symlink_to(shutil.which(tool))
    assert not [n for n in notebook_pdf.BROWSER_NAMES if shutil.which(n, path=str(folder))]
    env = {k: v for k, v in os.environ.items()
           if k not in (notebook_pdf.BROWSER_ENV, notebook_pdf.MATHJAX_ENV)}
    env["PATH"] = str(folder)
    return env


def test_collect_submission_script_needs_no_browser(project, tmp_path):
    env = _env_without_browsers(tmp_path)
    script = [shutil.which("bash"), str(project / "collectSubmission.sh")]
    done = subprocess.run(script, cwd="/", env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Wrote " in done.stdout and done.stderr == ""
    with zipfile.ZipFile(project / submission.DEFAULT_ZIP) as archive:
        assert submission.NOTEBOOKS_PDF not in archive.namelist()
        assert sorted(archive.namelist()) == sorted(PACKED + [submission.MANIFEST])
    # --pdf where there is no browser: the zip all the same, exit status 2, what to install.
    done = subprocess.run(script + ["--pdf"], cwd="/", env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no PDF: a Chromium browser" in done.stderr and "Wrote " in done.stdout
    with zipfile.ZipFile(project / submission.DEFAULT_ZIP) as archive:
        assert submission.NOTEBOOKS_PDF not in archive.namelist()


# ---------------------------------------------------------------------------
# The PDF, with a real browser
# ---------------------------------------------------------------------------


def _pdf_tools_or_skip():
    browser, mathjax = notebook_pdf.find_pdf_tools()
    if browser is None or mathjax is None:
        if os.environ.get("REQUIRE_PDF_TOOLS") == "1":
            pytest.fail(f"REQUIRE_PDF_TOOLS=1 but browser={browser}, MathJax={mathjax}; "
                        f"install with: {notebook_pdf.INSTALL_HINT}")
        pytest.skip(f"no Chromium or MathJax ({notebook_pdf.INSTALL_HINT})")
    return browser, mathjax


def test_collect_submission_script_pdf_option(project):
    """--pdf with Chromium and MathJax present: notebooks.pdf in the zip, in the MANIFEST."""
    _pdf_tools_or_skip()
    done = subprocess.run(["bash", str(project / "collectSubmission.sh"), "--pdf"], cwd="/",
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"with {submission.NOTEBOOKS_PDF}, both notebooks in" in done.stdout
    with zipfile.ZipFile(project / submission.DEFAULT_ZIP) as archive:
        pdf_bytes = archive.read(submission.NOTEBOOKS_PDF)
        assert pdf_bytes.startswith(b"%PDF-")
        assert read_manifest(archive)[submission.NOTEBOOKS_PDF] == (
            hashlib.sha256(pdf_bytes).hexdigest())


def test_pdf_of_both_notebooks_with_rendered_math(project, tmp_path):
    _pdf_tools_or_skip()
    pypdf = pytest.importorskip("pypdf")
    before = tree_digest(project)
    result = submission.make_submission(project, pdf=True)
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



def test_pdf_shows_no_local_file_and_runs_no_script(project, tmp_path):
    """The holes found by trying: an iframe of file:///etc/passwd printed the file into
    the PDF, and a script ran. Here in markdown, outputs, a raw cell and the metadata."""
    _pdf_tools_or_skip()
    pypdf = pytest.importorskip("pypdf")
    secret = _secret_file(project)
    add_hostile_content(project, secret)
    result = submission.make_submission(project, pdf=True)
    assert result.pdf_problem == ""
    with zipfile.ZipFile(project / submission.DEFAULT_ZIP) as archive:
        (tmp_path / "out.pdf").write_bytes(archive.read(submission.NOTEBOOKS_PDF))
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(tmp_path / "out.pdf").pages)
    compact = re.sub(r"\s+", "", text)  # a marker broken over two lines is still found
    assert "root:" not in text  # /etc/passwd starts "root:x:0:0:root:/root:..."
    assert re.sub(r"\s+", "", SECRET) not in compact and "b3BlbnNzaC1rZXkt" not in compact
    for marker in RAN_MARKERS:
        assert marker not in compact, marker
    # The rest is printed as usual: formatting, the HTML output, math typeset, and the
    # hostile markup shown as the text it is.
    assert "bold survives" in text and "html output survives" in text
    assert "Hostile markdown" in text and "<iframe" in text
    for raw_tex in ("$$", "\\frac", "\\hat"):
        assert raw_tex not in text

# ---------------------------------------------------------------------------
# What the packer hands to the browser (a fake one records it)
# ---------------------------------------------------------------------------

# A 1x1 PNG, as matplotlib's outputs are embedded: it must survive sanitizing.
PNG_1X1 = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJ"
           "RU5ErkJggg==")
# document.write of two halves: the escaped source shows the halves, a run shows the whole.
RAN_MARKERS = ("SCRIPTRAN-IN-MARKDOWN", "ONERRORRAN", "SVGRAN", "SCRIPTRAN-IN-OUTPUT",
               "JAVASCRIPTOUTPUT-RAN", "MERMAIDRAN", "MARKDOWNOUTPUT-RAN", "RAWCELLRAN",
               "TITLERAN", "WIDGETRAN")


def add_hostile_content(root, secret):
    """What a student (or a notebook downloaded from anywhere) could put in a notebook to
    make the PDF show local files or run code: markdown, outputs, a raw cell, metadata."""
    url = secret.as_uri()
    markdown = "\n".join([
        "## Hostile markdown",
        f'<iframe src="{url}" width="800" height="200"></iframe>',
        '<iframe src="file:///etc/passwd" width="800" height="400"></iframe>',
        "<script>document.write('SCRIPT' + 'RAN-IN-MARKDOWN')</script>",
        f'<img src="{url}" onerror="document.write(\'ONERROR\' + \'RAN\')">',
        f'<object data="{url}" width="800" height="200"></object>',
        f'<embed src="{url}" width="800" height="200">',
        '<a href="javascript:document.write(1)">a javascript link</a>',
        f'<link rel="stylesheet" href="{url}">',
        '<meta http-equiv="refresh" content="0; url=file:///etc/passwd">',
        "<svg><script>document.write('SVG' + 'RAN')</script></svg>",
        "",
        "<b>bold survives</b> and a [web link](https://arxiv.org/abs/1502.03167) too.",
    ])
    outputs = [
        new_output("display_data", data={
            "text/html": (f'<iframe src="{url}" width="800" height="200"></iframe>'
                          "<script>document.write('SCRIPT' + 'RAN-IN-OUTPUT')</script>"
                          "<p>html output survives</p>"),
            "text/plain": "<IPython.core.display.HTML object>"}),
        new_output("display_data", data={
            "application/javascript": "document.write('JAVASCRIPT' + 'OUTPUT-RAN')",
            "text/plain": "<IPython.core.display.Javascript object>"}),
        new_output("display_data", data={
            "text/vnd.mermaid": "<script>document.write('MER' + 'MAID' + 'RAN')</script>"}),
        new_output("display_data", data={
            "text/markdown": "<script>document.write('MARKDOWN' + 'OUTPUT-RAN')</script>"}),
        new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "x"},
            "text/html": "<script>document.write('WIDGET' + 'RAN')</script>"}),
        new_output("display_data", data={"image/png": PNG_1X1, "text/plain": "<Figure>"}),
    ]

    def edit(nb):
        nb.cells.append(new_markdown_cell(markdown))
        nb.cells.append(new_code_cell("show()", execution_count=4, outputs=outputs))
        nb.cells.append(new_raw_cell(
            "<script>document.write('RAW' + 'CELL' + 'RAN')</script>",
            metadata={"raw_mimetype": "text/html"}))
        nb.metadata["title"] = "</title><script>document.write('TITLE' + 'RAN')</script>"
    edit_nb(root, "BatchNormalization.ipynb", edit)


class _Elements(html.parser.HTMLParser):
    """Every start tag (name, attributes) and the text inside script elements."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags, self.script_text, self._in_script = [], [], False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.script_text.append(data)


@pytest.fixture
def fake_browser(tmp_path):
    """(browser path, MathJax path, capture folder): the browser copies the HTML page it
    is given to the capture folder, records its arguments and user (see _records), and
    prints a blank PDF. With a file ``refuse`` in the capture folder it fails as Chromium
    does when its sandbox cannot start; with ``refuse-unless-root``, only when not root.
    It lives in a folder that any user can read, so that it can run as the unprivileged
    user too."""
    pypdf = pytest.importorskip("pypdf")
    place = Path(tempfile.mkdtemp(prefix="fake-chromium-"))
    place.chmod(0o755)
    capture = place / "capture"
    capture.mkdir()
    capture.chmod(0o777)
    blank = place / "blank.pdf"
    writer = pypdf.PdfWriter()
    writer.add_blank_page(72, 72)
    with open(blank, "wb") as handle:
        writer.write(handle)
    blank.chmod(0o644)
    browser = place / "fake-chromium"
    # sh, not Python: the unprivileged user may not be able to reach this Python.
    browser.write_text(f"""#!/bin/sh
capture='{capture}'
n=$(ls "$capture" | grep -c '[.]argv$')
for arg in "$@"; do printf '%s\\n' "$arg"; done > "$capture/$n.argv"
id -u > "$capture/$n.uid"; pwd > "$capture/$n.cwd"; printf '%s\\n' "$HOME" > "$capture/$n.home"
if [ -e "$capture/refuse" ] || {{ [ -e "$capture/refuse-unless-root" ] && [ "$(id -u)" != 0 ]; }}; then
    echo no > "$capture/$n.printed"
    echo "FATAL: No usable sandbox! ... --no-sandbox" >&2
    exit 1
fi
for arg in "$@"; do
    page=$arg
    case $arg in --print-to-pdf=*) pdf=${{arg#--print-to-pdf=}};; esac
done
page=${{page#file://}}
cp "$page" "$capture/$n.html"
ls "$(dirname "$page")" > "$capture/$n.beside_page"
cp "$(dirname "$page")/mathjax-config.js" "$capture/$n.config"
cp '{blank}' "$pdf"
echo yes > "$capture/$n.printed"
""")
    browser.chmod(0o755)
    mathjax = tmp_path / "mathjax" / "MathJax.js"
    mathjax.parent.mkdir()
    mathjax.write_text("")
    yield str(browser), mathjax, capture
    shutil.rmtree(place)


def _records(capture):
    """What the fake browser recorded, one dict per start."""
    records = []
    for n in range(len(list(capture.glob("*.argv")))):
        def read(what):
            path = capture / f"{n}.{what}"
            return path.read_text() if path.exists() else None
        records.append({
            "argv": read("argv").splitlines(), "uid": int(read("uid")),
            "cwd": read("cwd").strip(), "home": read("home").strip(),
            "printed": read("printed").strip() == "yes", "config": read("config"),
            "beside_page": (read("beside_page") or "").split(),
        })
    return records


def test_html_handed_to_the_browser_has_no_script_but_mathjax(project, fake_browser):
    browser, mathjax, capture = fake_browser
    secret = _secret_file(project)
    add_hostile_content(project, secret)
    result = submission.make_submission(project, pdf=True, tools=(browser, mathjax))
    assert result.pdf_problem == "" and result.pdf_pages == len(submission.NOTEBOOKS)
    page = (capture / "0.html").read_text(encoding="utf-8")
    record = _records(capture)[0]
    found = _Elements(page)
    mathjax_src = mathjax.resolve().as_uri() + notebook_pdf.MATHJAX_QUERY
    # Scripts: MathJax's configuration (a file beside the page) and MathJax; nothing inline.
    assert [attrs.get("src") for tag, attrs in found.tags if tag == "script"] == [
        notebook_pdf.MATHJAX_CONFIG_FILE, mathjax_src]
    assert found.script_text == []
    assert record["config"] == notebook_pdf.MATHJAX_CONFIG_JS
    # No element that loads or navigates elsewhere; no event handler; no file: or
    # javascript: URL but MathJax's own.
    names = {tag for tag, _ in found.tags}
    assert not names & {"iframe", "frame", "object", "embed", "link", "base", "form", "svg",
                        "applet", "portal"}, names
    metas = [attrs for tag, attrs in found.tags if tag == "meta"]
    assert not [m for m in metas if m.get("http-equiv", "").lower() == "refresh"]
    for tag, attrs in found.tags:
        for name, value in attrs.items():
            assert not name.lower().startswith("on"), (tag, name, value)
            if re.search(r"(file|javascript):", value or "", re.IGNORECASE):
                assert (tag, name, value) in (("script", "src", mathjax_src), (
                    "meta", "content", notebook_pdf.CONTENT_SECURITY_POLICY))
    # The policy comes first in <head>, so it governs everything after it.
    head_first = found.tags[found.tags.index(("head", {})) + 1]
    assert head_first == ("meta", {"http-equiv": "Content-Security-Policy",
                                   "content": notebook_pdf.CONTENT_SECURITY_POLICY})
    assert "default-src 'none'" in notebook_pdf.CONTENT_SECURITY_POLICY
    assert "img-src data:;" in notebook_pdf.CONTENT_SECURITY_POLICY
    # What the student wrote is still there: formatting rendered, hostile markup as text.
    assert "<b>bold survives</b>" in page and "html output survives" in page
    assert '<a href="https://arxiv.org/abs/1502.03167">web link</a>' in page
    assert f"data:image/png;base64,{PNG_1X1}" in page
    assert "&lt;iframe src=" in page and "&lt;script&gt;" in page
    # The page lives alone in a private temporary folder, and so does the browser's home.
    assert record["beside_page"] == ["BatchNormalization.html",
                                     notebook_pdf.MATHJAX_CONFIG_FILE]
    assert not record["cwd"].startswith(str(project))
    assert Path(record["home"]).parent == Path(record["cwd"])
    flags = record["argv"]
    assert "--allow-file-access-from-files" not in flags
    assert "--disable-web-security" not in flags


def _pack_with(project, fake_browser, monkeypatch, capsys):
    """main() with the fake browser: (exit status, stderr, what the browser recorded)."""
    browser, mathjax, capture = fake_browser
    monkeypatch.setattr(notebook_pdf, "find_pdf_tools", lambda: (browser, mathjax))
    status = submission.main(["--root", str(project), "--pdf"])
    return status, capsys.readouterr().err, _records(capture)


def test_not_root_the_browser_keeps_its_sandbox(project, fake_browser, monkeypatch, capsys):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    status, err, records = _pack_with(project, fake_browser, monkeypatch, capsys)
    assert status == 0 and "NOTE" not in err
    assert len(records) == len(submission.NOTEBOOKS)
    assert all("--no-sandbox" not in r["argv"] and r["uid"] == os.getuid() for r in records)


def test_not_root_a_sandbox_that_cannot_start_means_no_pdf(project, fake_browser, monkeypatch,
                                                            capsys):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    (fake_browser[2] / "refuse").touch()
    status, err, records = _pack_with(project, fake_browser, monkeypatch, capsys)
    assert status == 2
    assert "could not print BatchNormalization.ipynb (exit 1)" in err
    assert "Chromium could not start its sandbox" in err
    assert [r["printed"] for r in records] == [False]  # never again without the sandbox
    assert "--no-sandbox" not in records[0]["argv"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_as_root_the_browser_runs_as_nobody_with_its_sandbox(project, fake_browser,
                                                              monkeypatch, capsys):
    nobody = pwd.getpwnam(notebook_pdf.UNPRIVILEGED_USER)
    status, err, records = _pack_with(project, fake_browser, monkeypatch, capsys)
    assert status == 0 and "NOTE" not in err
    assert [(r["uid"], "--no-sandbox" in r["argv"]) for r in records] == [
        (nobody.pw_uid, False)] * len(submission.NOTEBOOKS)


@pytest.mark.parametrize("why", ["no-such-user", "user-cannot-start-it"])
def test_as_root_no_sandbox_only_where_it_cannot_start_and_says_so(
        project, fake_browser, monkeypatch, capsys, why):
    """Works as root and, pretending to be root (the switch to the user then fails), as a user."""
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    if why == "no-such-user":
        monkeypatch.setattr(notebook_pdf, "UNPRIVILEGED_USER", "no-such-user-h5")
    elif os.getuid() == 0:  # as a user, switching to the other user fails by itself
        (fake_browser[2] / "refuse-unless-root").touch()
    status, err, records = _pack_with(project, fake_browser, monkeypatch, capsys)
    assert status == 0
    assert "NOTE: Chromium cannot use its sandbox as root" in err and "--no-sandbox" in err
    printed = [r for r in records if r["printed"]]
    assert len(printed) == len(submission.NOTEBOOKS)
    assert all("--no-sandbox" in r["argv"] for r in printed)
    # Every start without --no-sandbox came first, and only for the first notebook.
    assert all("--no-sandbox" not in r["argv"] for r in records if not r["printed"])
    assert len(records) - len(printed) <= 1


def test_zip_holds_the_students_work_only_in_the_real_project():
    """After the layout move: notebooks and cs231n/**/*.py; student_tools/ is not in it."""
    sizes, reasons = submission.scan_files(REPO)
    packed = list(sizes)
    assert packed[:len(submission.NOTEBOOKS)] == list(submission.NOTEBOOKS)
    code = packed[len(submission.NOTEBOOKS):]
    assert code and all(rel.startswith("cs231n/") and rel.endswith(".py") for rel in code)
    assert set(submission.STUDENT_CODE) <= set(code)
    assert code == sorted(p.relative_to(REPO).as_posix() for p in (REPO / "cs231n").rglob("*.py")
                          if "__pycache__" not in p.parts and not any(
                              part.startswith(".") for part in p.relative_to(REPO).parts))


# ---------------------------------------------------------------------------
# Where the browser and MathJax come from: options, environment, usual places
# ---------------------------------------------------------------------------


def _mathjax_dir(folder, config=notebook_pdf.MATHJAX_CONFIGS[0]):
    """A MathJax 2.7 tree as much as the packer looks at: MathJax.js and one config file."""
    (folder / "config").mkdir(parents=True)
    (folder / "MathJax.js").write_text('MathJax.version="2.7.9";\n')
    (folder / "config" / f"{config}.js").write_text("")
    return folder / "MathJax.js"


@pytest.mark.parametrize("how", ["options", "mathjax-folder", "environment"])
def test_browser_and_mathjax_named_by_option_or_environment(project, fake_browser, tmp_path,
                                                            monkeypatch, capsys, how):
    browser, _, capture = fake_browser
    mathjax = _mathjax_dir(tmp_path / "my-mathjax")
    # Nothing to be found in the usual places: only what is named can be used.
    monkeypatch.setattr(notebook_pdf, "find_pdf_tools", lambda: (None, None))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.delenv(notebook_pdf.BROWSER_ENV, raising=False)
    monkeypatch.delenv(notebook_pdf.MATHJAX_ENV, raising=False)
    args = ["--root", str(project)]
    if how == "options":
        args += ["--browser", browser, "--mathjax", str(mathjax)]
    elif how == "mathjax-folder":
        args += ["--browser", browser, "--mathjax", str(mathjax.parent)]
    else:
        monkeypatch.setenv(notebook_pdf.BROWSER_ENV, browser)
        monkeypatch.setenv(notebook_pdf.MATHJAX_ENV, str(mathjax))
        args.append("--pdf")  # the variables alone ask for nothing
    status = submission.main(args)
    captured = capsys.readouterr()
    assert status == 0, captured.err
    records = _records(capture)
    assert [r["printed"] for r in records] == [True] * len(submission.NOTEBOOKS)
    scripts = [attrs.get("src") for tag, attrs in _Elements((capture / "0.html").read_text(
        encoding="utf-8")).tags if tag == "script"]
    assert scripts == [notebook_pdf.MATHJAX_CONFIG_FILE,
                       mathjax.resolve().as_uri() + notebook_pdf.MATHJAX_QUERY]
    with zipfile.ZipFile(project / submission.DEFAULT_ZIP) as archive:
        assert submission.NOTEBOOKS_PDF in archive.namelist()


def test_the_option_wins_over_the_environment(project, fake_browser, tmp_path, monkeypatch):
    browser, _, _ = fake_browser
    named = _mathjax_dir(tmp_path / "named")
    monkeypatch.setenv(notebook_pdf.BROWSER_ENV, str(tmp_path / "no-such-browser"))
    monkeypatch.setenv(notebook_pdf.MATHJAX_ENV, str(tmp_path / "no-such-mathjax"))
    assert notebook_pdf.pdf_tools(browser, named) == (str(Path(browser).resolve()),
                                                    named.resolve())


def _not_executable(tmp_path):
    path = tmp_path / "chrome"
    path.write_text("#!/bin/sh\n")
    path.chmod(0o644)
    return path


BAD_PATHS = [
    pytest.param("--browser", lambda t: t / "Google Chrome", "there is no such file",
                 id="browser-missing"),
    pytest.param("--browser", lambda t: t, "it is a folder", id="browser-folder"),
    pytest.param("--browser", _not_executable, "it is not executable",
                 id="browser-not-executable"),
    pytest.param("--mathjax", lambda t: t / "MathJax.js", "there is no such file",
                 id="mathjax-missing"),
    pytest.param("--mathjax", lambda t: t, "that folder has no MathJax.js",
                 id="mathjax-folder-without-it"),
    pytest.param("--mathjax", lambda t: _mathjax_dir(t / "mj").parent / "config" /
                 f"{notebook_pdf.MATHJAX_CONFIGS[0]}.js",
                 f"it is '{notebook_pdf.MATHJAX_CONFIGS[0]}.js'", id="mathjax-wrong-file"),
    pytest.param("--mathjax", lambda t: (t / "MathJax.js").write_text("") or t / "MathJax.js",
                 "its folder has neither config/TeX-AMS_CHTML-full.js nor "
                 "config/TeX-AMS-MML_HTMLorMML-full.js", id="mathjax-without-config"),
    pytest.param(notebook_pdf.BROWSER_ENV, lambda t: t / "msedge.exe", "there is no such file",
                 id="browser-environment"),
    pytest.param(notebook_pdf.MATHJAX_ENV, lambda t: t, "that folder has no MathJax.js",
                 id="mathjax-environment"),
]


@pytest.mark.parametrize("option, make_path, why", BAD_PATHS)
def test_a_bad_path_stops_at_once_naming_the_option(project, tmp_path, monkeypatch, capsys,
                                                    option, make_path, why):
    place = tmp_path / "given"
    place.mkdir()
    path = make_path(place)
    monkeypatch.delenv(notebook_pdf.BROWSER_ENV, raising=False)
    monkeypatch.delenv(notebook_pdf.MATHJAX_ENV, raising=False)
    if option.startswith("--"):
        args = [option, str(path)]
    else:
        monkeypatch.setenv(option, str(path))
        args = []
    before = tree_digest(project)
    assert submission.main(["--root", str(project), "--pdf", *args]) == 1
    err = capsys.readouterr().err
    expected = ("the path of a Chrome, Chromium or Edge executable" if "BROWSER" in option.upper()
                else "MathJax 2.7's MathJax.js")
    assert err.startswith(f"Submission NOT made: {option} {str(path)!r}: expected {expected}")
    assert f", but {why}" in err, err
    assert tree_digest(project) == before  # nothing written


def test_usual_browser_places_on_macos_and_windows(tmp_path):
    mac = notebook_pdf._usual_browser_paths("darwin", {}, tmp_path)
    assert Path("/Applications/Google Chrome.app/Contents/MacOS/Google Chrome") == mac[0]
    assert Path("/Applications/Chromium.app/Contents/MacOS/Chromium") in mac
    assert Path("/Applications/Microsoft Edge.app/Contents/MacOS/Microsoft Edge") in mac
    assert tmp_path / "Applications/Google Chrome.app/Contents/MacOS/Google Chrome" in mac
    environ = {"PROGRAMFILES": "C:/Program Files", "PROGRAMFILES(X86)": "C:/Program Files (x86)",
               "LOCALAPPDATA": "C:/Users/me/AppData/Local"}
    win = [p.as_posix() for p in notebook_pdf._usual_browser_paths("win32", environ, tmp_path)]
    assert "C:/Program Files/Google/Chrome/Application/chrome.exe" in win
    assert "C:/Program Files (x86)/Microsoft/Edge/Application/msedge.exe" in win
    assert "C:/Users/me/AppData/Local/Google/Chrome/Application/chrome.exe" in win
    assert notebook_pdf._usual_browser_paths("linux", environ, tmp_path) == []


def test_a_browser_in_a_usual_place_is_found(tmp_path, monkeypatch):
    app = tmp_path / "Google Chrome.app" / "Contents" / "MacOS" / "Google Chrome"
    app.parent.mkdir(parents=True)
    app.write_text("#!/bin/sh\n")
    app.chmod(0o755)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(notebook_pdf, "_usual_browser_paths", lambda: [tmp_path / "absent", app])
    assert notebook_pdf.find_pdf_tools()[0] == str(app)
    # A .app bundle given as --browser means its executable.
    assert notebook_pdf.check_browser_path(str(tmp_path / "Google Chrome.app")) == str(
        app.resolve())


def test_mathjax_from_the_pip_package_is_found_and_configured(project, fake_browser, tmp_path,
                                                              monkeypatch):
    """jupyter-server-mathjax ships a trimmed MathJax 2.7 with only the HTML-CSS config."""
    static = tmp_path / "site" / notebook_pdf.MATHJAX_PIP_PACKAGE / "static"
    mathjax = _mathjax_dir(static, config=notebook_pdf.MATHJAX_CONFIGS[1])
    (static.parent / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    # A copy imported earlier in this process (the grader's TA pages use it) would win.
    monkeypatch.delitem(sys.modules, notebook_pdf.MATHJAX_PIP_PACKAGE, raising=False)
    monkeypatch.setattr(notebook_pdf, "MATHJAX_SYSTEM_PATHS", ())
    assert notebook_pdf.find_pdf_tools()[1] == mathjax
    browser, _, capture = fake_browser
    submission.make_submission(project, pdf=True, tools=(browser, mathjax))
    scripts = [attrs.get("src") for tag, attrs in _Elements((capture / "0.html").read_text(
        encoding="utf-8")).tags if tag == "script"]
    assert scripts[1] == (mathjax.resolve().as_uri()
                          + f"?config={notebook_pdf.MATHJAX_CONFIGS[1]},Safe")


def test_missing_tools_message_names_every_platform_and_the_options(project, monkeypatch,
                                                                     capsys):
    monkeypatch.setattr(notebook_pdf, "find_pdf_tools", lambda: (None, None))
    monkeypatch.delenv(notebook_pdf.BROWSER_ENV, raising=False)
    monkeypatch.delenv(notebook_pdf.MATHJAX_ENV, raising=False)
    assert submission.main(["--root", str(project), "--pdf"]) == 2
    err = capsys.readouterr().err
    for needed in ("Debian/Ubuntu", "macOS", "Windows", "Microsoft Edge",
                   "pip install jupyter-server-mathjax==0.2.6", "--browser PATH",
                   "--mathjax PATH", notebook_pdf.BROWSER_ENV, notebook_pdf.MATHJAX_ENV):
        assert needed in err, needed


def test_pdf_with_mathjax_from_pip(project, tmp_path):
    """The real browser with jupyter-server-mathjax's MathJax (where that package is
    installed): the math is typeset, no TeX source is left."""
    browser, _ = _pdf_tools_or_skip()
    mathjax = notebook_pdf._pip_mathjax()
    if mathjax is None or not mathjax.is_file():
        pytest.skip("jupyter-server-mathjax is not installed")
    pypdf = pytest.importorskip("pypdf")
    result = submission.make_submission(project, pdf=True, tools=(browser, mathjax))
    assert result.pdf_problem == ""
    with zipfile.ZipFile(project / submission.DEFAULT_ZIP) as archive:
        (tmp_path / "out.pdf").write_bytes(archive.read(submission.NOTEBOOKS_PDF))
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(tmp_path / "out.pdf").pages)
    assert "Because the variance is biased." in text
    for raw_tex in ("$$", "\\frac", "\\hat", "\\sqrt", "\\partial"):
        assert raw_tex not in text


# ---------------------------------------------------------------------------
# The grader's contract, applied before zipping (student_tools.contract)
# ---------------------------------------------------------------------------


def _with_course_package(root):
    """The real package as a student starts from it (region bodies stubbed, markers kept)
    and the course's fingerprint, as a release ships them."""
    from grade_fixtures import release_form
    from student_tools import contract
    shutil.rmtree(root / "cs231n")
    texts = {}
    for path in sorted((REPO / "cs231n").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if "__pycache__" in rel:
            continue
        texts[rel] = release_form(path.read_text(encoding="utf-8"))
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(texts[rel], encoding="utf-8")
    notebooks = {name: nbformat.read(root / name, as_version=4) for name in submission.NOTEBOOKS}
    (root / contract.FINGERPRINT).write_text(
        json.dumps(contract.fingerprint_texts(texts, notebooks)), encoding="utf-8")
    return texts


def test_changes_outside_the_regions_are_warned_before_zipping(project, capsys):
    texts = _with_course_package(project)
    layers = project / "cs231n" / "layers.py"
    text = texts["cs231n/layers.py"].replace("def dropout_backward(dout, cache):",
                                             "def dropout_backward(dout, cache):  # mine", 1)
    layers.write_text(text + "HELPER = 1\n", encoding="utf-8")
    assert submission.main(["--root", str(project)]) == 0
    err = capsys.readouterr().err
    lines = text.splitlines()
    at = next(i for i, l in enumerate(lines, 1) if "# mine" in l)
    assert f"cs231n/layers.py:{at}: changed outside the answer regions" in err
    assert f"cs231n/layers.py:{len(lines) + 1}: added outside the answer regions" in err
    assert "will not run" in err
    # The zip still holds the file as written: nothing is lost by surprise.
    with zipfile.ZipFile(project / submission.DEFAULT_ZIP) as archive:
        assert b"HELPER = 1" in archive.read("cs231n/layers.py")


@pytest.mark.parametrize("body, why", [
    ("import os\ndx = dout", "import is not allowed"),
    ("dx = open('/etc/passwd').read()", "'open'"),
    ("dx = np.load('x.npy')", "np.load"),
])
def test_region_code_the_grader_refuses_is_refused_here(project, body, why):
    from student_tools.markers import solution_regions
    texts = _with_course_package(project)
    text = texts["cs231n/layers.py"]
    region = next(r for r in solution_regions(text)[0] if r.function == "dropout_backward")
    lines = text.splitlines()
    new = [region.indent + l for l in body.splitlines()]
    (project / "cs231n" / "layers.py").write_text(
        "\n".join(lines[:region.begin] + new + lines[region.end - 1:]) + "\n")
    reasons = refused(project)
    assert reasons and why in reasons[0], reasons
    assert reasons[0].startswith(f"cs231n/layers.py:{region.begin + 1}") or \
        reasons[0].startswith(f"cs231n/layers.py:{region.begin + 2}")


def test_deleted_region_markers_are_refused(project):
    texts = _with_course_package(project)
    text = texts["cs231n/classifiers/fc_net.py"]
    marker = next(l for l in text.splitlines() if "### BEGIN SOLUTION" in l)
    (project / "cs231n" / "classifiers" / "fc_net.py").write_text(text.replace(marker, "", 1))
    reasons = refused(project)
    assert any("marker" in r and "fc_net.py" in r for r in reasons), reasons


def test_missing_layer_utils_is_refused(project):
    (project / "cs231n" / "layer_utils.py").unlink()
    reasons = refused(project)
    assert reasons == [f"missing in {project}: cs231n/layer_utils.py"], reasons
