"""Submissions for the grader's tests, built from this repository's solution tree.

``solution_files()`` is what a perfect student would submit (the package's .py files and
both notebooks); ``plant(files, path, old, new)`` changes one line, failing loudly when the
line is not there (so a test cannot silently test the solution). ``write_zip`` writes any
members, including hostile ones, with or without a MANIFEST.
"""
import hashlib
import stat
import subprocess
import zipfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

PROJECT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ("BatchNormalization.ipynb", "Dropout.ipynb")


def _committed(paths):
    """{path: bytes at git HEAD} or None outside a git checkout."""
    try:
        files = {}
        for rel in paths:
            files[rel] = subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=PROJECT,
                                        capture_output=True, check=True, timeout=60).stdout
        return files
    except (OSError, subprocess.SubprocessError):
        return None


def committed(rel):
    """The bytes of one file at HEAD (the working tree's outside git)."""
    files = _committed([rel])
    return files[rel] if files is not None else (PROJECT / rel).read_bytes()


def write_course(folder, notebooks=True):
    """The course as committed (HEAD) written into folder: its package, its notebooks
    (unless notebooks is False) and the sanitizer, which is what the grader needs of it.
    Returns folder."""
    folder = Path(folder)
    for name, data in solution_files(notebooks).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    (folder / "tests").mkdir(parents=True, exist_ok=True)
    (folder / "tests" / "nbval_sanitize.cfg").write_bytes(committed("tests/nbval_sanitize.cfg"))
    return folder


def solution_files(notebooks=True):
    """The package's .py files and both notebooks, as committed (HEAD).

    Committed rather than the working tree: code and stored outputs are then from one
    state even while someone is editing a notebook. Outside git: the working tree.
    """
    rels = []
    try:
        listed = subprocess.run(["git", "ls-files", "cs231n"], cwd=PROJECT, capture_output=True,
                                text=True, check=True, timeout=60).stdout.split()
        rels = [r for r in listed if r.endswith(".py")]
    except (OSError, subprocess.SubprocessError):
        pass
    rels += list(NOTEBOOKS) if notebooks else []
    files = _committed(rels) if rels and rels[0].startswith("cs231n/") else None
    if files is None:
        files = {}
        for path in sorted((PROJECT / "cs231n").rglob("*.py")):
            rel = path.relative_to(PROJECT)
            if "__pycache__" not in rel.parts:
                files[rel.as_posix()] = path.read_bytes()
        if notebooks:
            for name in NOTEBOOKS:
                files[name] = (PROJECT / name).read_bytes()
    return files


def plant(files, path, old, new, count=1):
    """Replace old by new in files[path]; old must occur exactly count times."""
    text = files[path].decode("utf-8")
    found = text.count(old)
    if found != count:
        raise AssertionError(f"plant: {old!r} occurs {found} times in {path}, expected {count}")
    files = dict(files)
    files[path] = text.replace(old, new).encode("utf-8")
    return files


def release_form(text, stub="raise NotImplementedError"):
    """text with every solution region's body replaced by stub, markers kept: what a
    student starts from in the release."""
    from student_tools.markers import SOLUTION_BEGIN_RE, SOLUTION_END_RE
    out, inside = [], False
    for line in text.splitlines():
        begin = SOLUTION_BEGIN_RE.match(line)
        if begin:
            out += [line, begin["indent"] + stub]
            inside = True
        elif SOLUTION_END_RE.match(line):
            out.append(line)
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out) + "\n"


def region_body(files, path, function, body, occurrence=0):
    """files with the body of the answer region in `function` of `path` replaced by body
    (source lines, indented here to the region's depth); fails loudly when there is no
    such region."""
    from student_tools.markers import solution_regions
    text = files[path].decode("utf-8")
    found = [r for r in solution_regions(text)[0] if r.function == function]
    if len(found) <= occurrence:
        raise AssertionError(f"region_body: no region {occurrence} in {function} of {path}")
    region = found[occurrence]
    lines = text.splitlines()
    new = [region.indent + line if line else "" for line in body.splitlines()]
    files = dict(files)
    files[path] = ("\n".join(lines[:region.begin] + new + lines[region.end - 1:]) + "\n"
                   ).encode("utf-8")
    return files


def plant_in(files, path, function, old, new, occurrence=0):
    """plant, but only inside the answer region(s) of `function`: old must occur exactly
    once in that region's body."""
    from student_tools.markers import solution_regions
    text = files[path].decode("utf-8")
    lines = text.splitlines()
    found = [r for r in solution_regions(text)[0] if r.function == function and
             old in "\n".join(lines[r.begin:r.end - 1])]
    if len(found) != 1:
        raise AssertionError(f"plant_in: {old!r} is in {len(found)} regions of {function}")
    region = found[0]
    body = "\n".join(lines[region.begin:region.end - 1])
    if body.count(old) != 1:
        raise AssertionError(f"plant_in: {old!r} occurs {body.count(old)} times in {function}")
    lines[region.begin:region.end - 1] = body.replace(old, new).splitlines()
    files = dict(files)
    files[path] = ("\n".join(lines) + "\n").encode("utf-8")
    return files


def append(files, path, code):
    files = dict(files)
    files[path] = files[path] + ("\n" + code + "\n").encode("utf-8")
    return files


def write_zip(path, files, manifest=True, infos=()):
    """files: {arcname: bytes}; infos: extra (ZipInfo, bytes) members written as given."""
    path = Path(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        for info, data in infos:
            archive.writestr(info, data)
        if manifest:
            lines = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in files.items())
            archive.writestr("MANIFEST", lines)
    return path


def symlink_info(name):
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def tiny_notebook(cells):
    """A notebook of (source, stored stdout or None, tags) code cells, run in order."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells.append(new_markdown_cell("# A tiny notebook for the grader's tests"))
    count = 0
    for source, stdout, tags in cells:
        count += 1
        outputs = [] if stdout is None else [new_output("stream", name="stdout", text=stdout)]
        cell = new_code_cell(source, execution_count=count, outputs=outputs)
        if tags:
            cell.metadata["tags"] = list(tags)
        nb.cells.append(cell)
    return nbformat.writes(nb).encode("utf-8")


def tiny_notebooks(bn_cells=None, dropout_cells=None):
    """Both graded notebooks as tiny ones that import the student's package."""
    honest = [("import numpy as np\nfrom cs231n.layers import batchnorm_forward", None, ()),
              ("out, _ = batchnorm_forward(np.array([[1.0, 2.0], [3.0, 6.0]]), np.ones(2), "
               "np.zeros(2), {'mode': 'train'})\nprint(np.round(out, 3).tolist())",
               "[[-1.0, -1.0], [1.0, 1.0]]\n", ())]
    drop = [("import numpy as np\nfrom cs231n.layers import dropout_forward\n"
             "print(dropout_forward(np.ones(3), {'mode': 'test', 'p': 0.5})[0].tolist())",
             "[1.0, 1.0, 1.0]\n", ())]
    return {"BatchNormalization.ipynb": tiny_notebook(bn_cells or honest),
            "Dropout.ipynb": tiny_notebook(dropout_cells or drop)}
