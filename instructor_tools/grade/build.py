"""Build what runs for one submission: the course's files with the student's regions.

``build(course, notebooks_dir, student, dest)`` writes into ``dest``:

- ``cs231n/``: every module of the course's package. Files with answer regions
  (``contract.REGION_FILES``) get the student's region bodies spliced in
  (``splice.splice``), each checked against the allow-list first (a refused body becomes
  a ``raise``); every other module is the course's own, whatever the student sent.
- the notebooks: the course's cells, tags and metadata with the student's regions, stored
  outputs and answers (``splice.notebook_for_run``); nbval then compares the student's
  outputs with what the course's code, run on the student's regions, prints.

Nothing else of the submission reaches ``dest``, so nothing else of it runs. What was
ignored is returned, for the feedback.
"""
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from instructor_tools.grade import bounded, splice
from student_tools import contract

# CPython 3.11's ast module is not safe to use from two threads at once ("SystemError: AST
# constructor recursion depth mismatch", seen grading with --jobs 2); builds take
# milliseconds, so they simply take turns.
_AST_LOCK = threading.Lock()
MAX_SOURCE_BYTES = 2 * 2**20  # one .py file of a submission (the course's are ~30 kB)
MAX_NOTEBOOK_BYTES = 20 * 2**20
MAX_NOTEBOOK_CELLS = 2000


@dataclass
class Built:
    regions: list = field(default_factory=list)  # [splice.RegionResult]
    outside: list = field(default_factory=list)  # sentences: ignored differences
    problems: list = field(default_factory=list)  # marker problems, unreadable files
    notebooks: dict = field(default_factory=dict)  # name -> built (True) or why not (str)
    labels: dict = field(default_factory=dict)  # name -> per code cell of the built notebook,
    #                                             how the student finds it


def _student_text(path, built, rel):
    # Missing is not unreadable: a submission may lack a course file that is not required
    # (the course's copy is used), and that is not worth a line in the feedback.
    if not os.path.lexists(path):
        return None
    try:
        return bounded.read_regular(path, MAX_SOURCE_BYTES).decode("utf-8")
    except (bounded.Unreadable, UnicodeDecodeError, OSError) as exc:
        built.problems.append(f"{rel}: unreadable ({exc}): graded as if missing")
        return None


def build_package(course, student, dest, built):
    """The package into dest/cs231n; fills built.regions, .outside, .problems."""
    course_pkg = Path(course) / contract.PACKAGE
    course_files = sorted(p.relative_to(course).as_posix() for p in course_pkg.rglob("*.py")
                          if "__pycache__" not in p.parts)
    for rel in course_files:
        target = Path(dest) / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        course_text = (Path(course) / rel).read_text(encoding="utf-8")
        text = _student_text(Path(student) / rel, built, rel)
        if rel in contract.REGION_FILES:
            spliced = splice.splice(rel, course_text, text if text is not None else "")
            built.regions += spliced.regions
            built.problems += spliced.problems
            if text is not None:
                built.outside += [str(d) for d in spliced.differences[:contract.MAX_LISTED]]
            target.write_text(spliced.text, encoding="utf-8")
            continue
        shutil.copyfile(Path(course) / rel, target)
        if text is not None and text != course_text:
            diffs = contract.diff_skeletons(rel, contract.skeleton(course_text).hashes,
                                            contract.skeleton(text))
            built.outside += [str(d) for d in diffs[:contract.MAX_LISTED]]
    extra = sorted(p.relative_to(student).as_posix()
                   for p in (Path(student) / contract.PACKAGE).rglob("*.py")
                   if p.relative_to(student).as_posix() not in course_files) \
        if (Path(student) / contract.PACKAGE).is_dir() else []
    built.outside += [f"{rel}: not a file of the course (not graded)" for rel in extra]


def build_notebook(name, course_nb_path, student, dest, built):
    """dest/name for the re-execution, or the reason there is none (in built.notebooks)."""
    try:
        student_nb = bounded.read_notebook(Path(student) / name, max_bytes=MAX_NOTEBOOK_BYTES,
                                           max_cells=MAX_NOTEBOOK_CELLS)
    except FileNotFoundError:
        built.notebooks[name] = "missing from the submission"
        return
    except (bounded.Unreadable, OSError) as exc:
        built.notebooks[name] = f"unreadable: {exc}"
        return
    course_nb = nbformat.read(course_nb_path, as_version=4)
    plan = splice.plan_notebook(name, course_nb, student_nb)
    built.outside += plan.differences
    built.regions += plan.regions
    nb = splice.notebook_for_run(name, course_nb, student_nb, plan)
    built.labels[name] = [
        contract.cell_label(student_nb, plan.pairs[i]) if i in plan.pairs
        else f"course cell missing from the submission: {contract.cell_label(course_nb, i)}"
        for i, cell in enumerate(course_nb.cells) if cell.cell_type == "code"]
    nbformat.write(nb, Path(dest) / name)
    built.notebooks[name] = True


def build_network(course, student, dest):
    """dest/cs231n for the network items: the course's package, layers included, with only
    the student's regions of the network file. A bug in a layer then costs that layer's
    items only; the network items test how the network wires, initializes and regularizes
    the layers. (Its regions were checked and reported by build_package already.)"""
    with _AST_LOCK:
        _build_network(course, student, dest)


def _build_network(course, student, dest):
    for path in sorted((Path(course) / contract.PACKAGE).rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        rel = path.relative_to(course).as_posix()
        target = Path(dest) / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        text = path.read_text(encoding="utf-8")
        if rel == splice.NETWORK_FILE:
            mine = _student_text(Path(student) / rel, Built(), rel)
            text = splice.splice(rel, text, mine if mine is not None else "").text
        target.write_text(text, encoding="utf-8")


def build(course, notebooks_dir, student, dest):
    with _AST_LOCK:
        return _build(course, notebooks_dir, student, dest)


def _build(course, notebooks_dir, student, dest):
    built = Built()
    build_package(course, student, dest, built)
    for name in contract.NOTEBOOKS:
        course_nb = Path(notebooks_dir) / name
        if course_nb.is_file():
            build_notebook(name, course_nb, student, dest, built)
        else:
            built.notebooks[name] = f"the course notebook {course_nb} is missing"
    return built
