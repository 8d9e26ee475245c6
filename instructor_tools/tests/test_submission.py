"""Tests of student_tools.submission and collectSubmission.sh on fixture projects in tmp_path.

The packer makes no PDF and needs no browser (the course makes the PDF from the zip: the
grader's PDFs are tested in test_grade_pdf.py).
"""
import builtins
import hashlib
import io
import json
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

from student_tools import contract, submission
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
                "atomic.py"):
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


def refused(root, **kwargs):
    with pytest.raises(submission.SubmissionRefused) as info:
        submission.make_submission(root, **kwargs)
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
    result = submission.make_submission(project)
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
    assert submission.make_submission(project, project / "out.zip").zip_path.is_file()


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
    result = submission.make_submission(project)
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
    assert result.members == PACKED + [submission.MANIFEST]


def test_manifest_verifies_with_sha256sum(project, tmp_path):
    if shutil.which("sha256sum") is None:
        pytest.skip("no sha256sum on this machine")
    submission.make_submission(project)
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(project / submission.DEFAULT_ZIP) as archive:
        archive.extractall(unpacked)
    done = subprocess.run(["sha256sum", "--check", "--strict", submission.MANIFEST],
                          cwd=unpacked, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(": OK") == len(PACKED)


def test_rerun_replaces_our_previous_zip(project):
    submission.make_submission(project)
    (project / "cs231n" / "extra.py").write_text("added = True\n")
    result = submission.make_submission(project)
    assert "cs231n/extra.py" in result.members
    with zipfile.ZipFile(project / submission.DEFAULT_ZIP) as archive:
        assert "cs231n/extra.py" in archive.namelist()


def test_out_elsewhere_and_missing_folder(project, tmp_path):
    out = tmp_path / "handin.zip"
    submission.make_submission(project, out=out)
    assert zipfile.is_zipfile(out)
    assert not (project / submission.DEFAULT_ZIP).exists()
    reasons = refused(project, out=tmp_path / "no" / "such" / "dir.zip")
    assert reasons == [f"--out {tmp_path / 'no' / 'such' / 'dir.zip'}: folder "
                       f"{tmp_path / 'no' / 'such'} does not exist"]


def test_pdf_options_say_where_the_pdf_comes_from_and_the_zip_is_made(project, capsys):
    """--pdf and --no-pdf (older instructions) are accepted: the zip as always, no PDF in it,
    and one note on where a PDF comes from now."""
    for option in ("--pdf", "--no-pdf"):
        assert submission.main(["--root", str(project), option]) == 0
        captured = capsys.readouterr()
        assert "Wrote " in captured.out
        assert captured.err == f"NOTE: no PDF here: {submission.PDF_NOTE}.\n"
        assert "File > Print" in captured.err
        with zipfile.ZipFile(project / submission.DEFAULT_ZIP) as archive:
            assert sorted(archive.namelist()) == sorted(PACKED + [submission.MANIFEST])


def test_browser_options_are_gone(project, capsys):
    with pytest.raises(SystemExit) as info:
        submission.main(["--root", str(project), "--browser", "/usr/bin/chromium"])
    assert info.value.code == 2 and "unrecognized arguments: --browser" in capsys.readouterr().err


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


def _env_with_bash_only(tmp_path):
    """os.environ with a PATH holding only what collectSubmission.sh itself runs (bash,
    dirname): no browser, nothing else."""
    folder = tmp_path / "bin-bash-only"
    folder.mkdir()
    for tool in ("bash", "dirname"):
        (folder / tool).symlink_to(shutil.which(tool))
    return {**os.environ, "PATH": str(folder)}


def test_collect_submission_script_needs_no_browser(project, tmp_path):
    script = [shutil.which("bash"), str(project / "collectSubmission.sh")]
    for option in ([], ["--pdf"]):
        done = subprocess.run(script + option, cwd="/", env=_env_with_bash_only(tmp_path),
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Wrote " in done.stdout
        assert done.stderr == (f"NOTE: no PDF here: {submission.PDF_NOTE}.\n" if option else "")
        with zipfile.ZipFile(project / submission.DEFAULT_ZIP) as archive:
            assert sorted(archive.namelist()) == sorted(PACKED + [submission.MANIFEST])
        shutil.rmtree(tmp_path / "bin-bash-only")


def test_zip_holds_the_students_work_only_in_the_real_project():
    """After the layout move: notebooks and cs231n/**/*.py; student_tools/ is not in it."""
    sizes, reasons = submission.scan_files(REPO)
    packed = list(sizes)
    assert packed[:len(contract.NOTEBOOKS)] == list(contract.NOTEBOOKS)
    code = packed[len(contract.NOTEBOOKS):]
    assert code and all(rel.startswith("cs231n/") and rel.endswith(".py") for rel in code)
    assert set(contract.REQUIRED_CODE) <= set(code)
    assert code == sorted(p.relative_to(REPO).as_posix() for p in (REPO / "cs231n").rglob("*.py")
                          if "__pycache__" not in p.parts and not any(
                              part.startswith(".") for part in p.relative_to(REPO).parts))


# ---------------------------------------------------------------------------
# The grader's contract, applied before zipping (student_tools.contract)
# ---------------------------------------------------------------------------


def _with_course_package(root):
    """The real package as a student starts from it (region bodies stubbed, markers kept)
    and the course's fingerprint, as a release ships them."""
    from grade_fixtures import release_form
    shutil.rmtree(root / "cs231n")
    texts = {}
    for path in sorted((REPO / "cs231n").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if "__pycache__" in rel:
            continue
        texts[rel] = release_form(path.read_text(encoding="utf-8"))
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(texts[rel], encoding="utf-8")
    notebooks = {name: nbformat.read(root / name, as_version=4) for name in contract.NOTEBOOKS}
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
