"""The submission contract (student_tools.contract, instructor_tools.grade.splice): what runs,
what is ignored, and the packer and the grader agreeing on both. Fast: no sandbox, no
notebook execution."""
import copy
from pathlib import Path

import nbformat
import pytest

from grade_fixtures import release_form
from instructor_tools.grade import build, splice
from student_tools import contract
from student_tools.markers import SOLUTION_BEGIN_RE, SOLUTION_END_RE, solution_regions

PROJECT = Path(__file__).resolve().parents[2]
LAYERS = "cs231n/layers.py"
FC_NET = "cs231n/classifiers/fc_net.py"


def course_text(rel):
    return (PROJECT / rel).read_text(encoding="utf-8")


def with_body(text, index, body):
    """text with the body of its index-th region replaced by body (lines, unindented)."""
    lines = text.splitlines()
    region = solution_regions(text)[0][index]
    new = [region.indent + l if l else "" for l in body]
    return "\n".join(lines[:region.begin] + new + lines[region.end - 1:]) + "\n"


def region_index(text, function):
    return next(i for i, r in enumerate(solution_regions(text)[0]) if r.function == function)


@pytest.mark.parametrize("rel", contract.REGION_FILES)
def test_the_solution_spliced_into_itself_is_itself(rel):
    text = course_text(rel)
    spliced = splice.splice(rel, text, text)
    assert spliced.text == text
    assert [r.state for r in spliced.regions] == ["ok"] * len(spliced.regions) != []
    assert spliced.differences == [] and spliced.problems == []


def test_only_region_bodies_come_from_the_student():
    course = course_text(LAYERS)
    student = release_form(course)
    i = region_index(course, "dropout_backward")
    student = with_body(student, i, ["dx = dout * cache['mask']  # mine"])
    # Outside the regions: a changed line, an added module-level statement.
    student = student.replace("def dropout_backward(dout, cache):",
                              "def dropout_backward(dout, cache):  # edited")
    student += "raise RuntimeError('never runs')\n"
    spliced = splice.splice(LAYERS, course, student)
    assert "dx = dout * cache['mask']  # mine" in spliced.text
    assert "never runs" not in spliced.text and "# edited" not in spliced.text
    # Every other region is the student's stub, nothing of the course's solution.
    for region in solution_regions(spliced.text)[0]:
        body = region.body(spliced.text.splitlines())
        assert body == ["    raise NotImplementedError"] or "# mine" in body[0] or \
            body[0].strip() == "raise NotImplementedError"
    kinds = {(d.kind, d.text.strip()) for d in spliced.differences}
    assert ("changed", "def dropout_backward(dout, cache):  # edited") in kinds
    assert ("added", "raise RuntimeError('never runs')") in kinds
    lines = student.splitlines()
    for d in spliced.differences:  # the student's own line numbers
        assert lines[d.line - 1].strip() == d.text.strip()
    assert all("not graded" in str(d) for d in spliced.differences)


def test_a_deleted_course_line_is_listed():
    course = course_text(LAYERS)
    student = course.replace("from cs231n.validation import", "from cs231n.validation  import",
                             1)
    lines = course.splitlines()
    victim = next(i for i, l in enumerate(lines) if l.startswith("__all__"))
    student = "\n".join(lines[:victim] + lines[victim + 1:]) + "\n"
    diffs = splice.splice(LAYERS, course, student).differences
    assert any("deleted" in d.kind for d in diffs), diffs


def test_forbidden_code_is_refused_with_the_files_line_and_not_run():
    course = course_text(LAYERS)
    i = region_index(course, "dropout_backward")
    student = with_body(course, i, ["dx = dout * cache['mask']",
                                    "import os",
                                    "os.system('touch /tmp/pwned')"])
    spliced = splice.splice(LAYERS, course, student)
    region = spliced.regions[i]
    assert region.state == "forbidden"
    begin = solution_regions(student)[0][i].begin
    assert region.refusals[0].line == begin + 2
    assert student.splitlines()[region.refusals[0].line - 1].strip() == "import os"
    assert "os.system" not in spliced.text and "import os" not in spliced.text
    assert "not run" in spliced.text


def test_a_region_that_does_not_parse_costs_only_itself():
    course = course_text(LAYERS)
    i = region_index(course, "dropout_backward")
    spliced = splice.splice(LAYERS, course, with_body(course, i, ["dx = (dout *"]))
    assert [r.state for r in spliced.regions].count("syntax_error") == 1
    assert spliced.regions[i].state == "syntax_error"
    compile(spliced.text, LAYERS, "exec")  # the built file itself always compiles


def test_deleted_markers_leave_the_region_missing():
    course = course_text(LAYERS)
    region = solution_regions(course)[0][region_index(course, "dropout_backward")]
    lines = course.splitlines()
    student = "\n".join(lines[:region.begin - 1] + lines[region.begin:region.end - 1]
                        + lines[region.end:]) + "\n"
    spliced = splice.splice(LAYERS, course, student)
    states = {r.function: r.state for r in spliced.regions}
    assert states["dropout_backward"] == "missing"
    assert "missing from the submission" in spliced.text


def test_damaged_marker_is_reported():
    course = course_text(LAYERS)
    student = course.replace("### END SOLUTION", "### END SOLUTON", 1)
    spliced = splice.splice(LAYERS, course, student)
    assert spliced.problems and "damaged" in " ".join(spliced.problems) or \
        any(r.state == "missing" for r in spliced.regions)


# ---------------------------------------------------------------------------
# Packer and grader: one contract
# ---------------------------------------------------------------------------


def _project_texts():
    files = {p.relative_to(PROJECT).as_posix(): p.read_text(encoding="utf-8")
             for p in sorted((PROJECT / "cs231n").rglob("*.py"))
             if "__pycache__" not in p.parts}
    notebooks = {name: nbformat.read(PROJECT / name, as_version=4)
                 for name in contract.NOTEBOOKS}
    return files, notebooks


def _variants():
    files, _ = _project_texts()
    i = region_index(files[LAYERS], "dropout_backward")
    region = solution_regions(files[LAYERS])[0][i]
    lines = files[LAYERS].splitlines()
    unmarked = "\n".join(lines[:region.begin - 1] + lines[region.begin:]) + "\n"
    return {
        "as given": ({}, False),
        "outside change only": ({LAYERS: files[LAYERS] + "x_unused = 1\n"}, False),
        "forbidden code": ({LAYERS: with_body(files[LAYERS], i, ["import os", "dx = dout"])},
                           True),
        "unparsable region": ({LAYERS: with_body(files[LAYERS], i, ["dx = (dout"])}, True),
        "deleted BEGIN marker": ({LAYERS: unmarked}, True),
        "layer_utils missing": ({"cs231n/layer_utils.py": None}, True),
        "__init__ missing": ({"cs231n/__init__.py": None}, True),
        "classifiers/__init__ missing": ({"cs231n/classifiers/__init__.py": None}, True),
    }


@pytest.mark.parametrize("variant", sorted(_variants()))
def test_packer_refuses_exactly_what_the_grader_cannot_grade(tmp_path, variant):
    """The packer's review and the grader's build, run on the same files, agree: the
    packer refuses a submission iff the grader would miss a file, skip a region or refuse
    one."""
    changes, refused = _variants()[variant]
    files, notebooks = _project_texts()
    for rel, text in changes.items():
        if text is None:
            del files[rel]
        else:
            files[rel] = text
    course = splice.fingerprint(PROJECT)
    refusals, warnings = contract.review(files, notebooks, course)
    missing = [r for r in contract.REQUIRED_CODE if r not in files]
    packer_refuses = bool(refusals or missing)

    student = tmp_path / "student"
    for rel, text in files.items():
        (student / rel).parent.mkdir(parents=True, exist_ok=True)
        (student / rel).write_text(text, encoding="utf-8")
    built = build.Built()
    (tmp_path / "dest").mkdir()
    build.build_package(PROJECT, student, tmp_path / "dest", built)
    grader_cannot = bool(missing) or any(r.state in ("missing", "forbidden", "syntax_error")
                                         for r in built.regions)
    assert packer_refuses == grader_cannot == refused, (refusals, missing, built.regions)
    if variant == "outside change only":
        assert warnings and any("x_unused" in w for w in warnings)
        assert any("x_unused" in o for o in built.outside)


def test_a_missing_course_file_that_is_not_required_is_not_called_unreadable(tmp_path):
    """The course's own copy is used, silently; only a file that is there and cannot be
    read (here a symlink) is reported."""
    files, _ = _project_texts()
    student = tmp_path / "student"
    for rel, text in files.items():
        if rel != "cs231n/gradient_check.py":
            (student / rel).parent.mkdir(parents=True, exist_ok=True)
            (student / rel).write_text(text, encoding="utf-8")
    built = build.Built()
    (tmp_path / "dest").mkdir()
    build.build_package(PROJECT, student, tmp_path / "dest", built)
    assert built.problems == []
    assert (tmp_path / "dest" / "cs231n" / "gradient_check.py").read_text(
        encoding="utf-8") == files["cs231n/gradient_check.py"]
    (student / "cs231n" / "gradient_check.py").symlink_to("/etc/passwd")
    built = build.Built()
    build.build_package(PROJECT, student, tmp_path / "dest", built)
    assert any("gradient_check.py: unreadable" in p for p in built.problems)


def test_fingerprint_lists_the_course_and_nothing_of_the_solution():
    course = splice.fingerprint(PROJECT)
    assert set(contract.REGION_FILES) <= set(course["regions"])
    text = repr(course)
    for rel in contract.REGION_FILES:
        for region in solution_regions(course_text(rel))[0]:
            for line in region.body(course_text(rel).splitlines()):
                if len(line.strip()) > 20:
                    assert line.strip() not in text


# ---------------------------------------------------------------------------
# Notebooks: the course's cells and tags, the student's outputs and answers
# ---------------------------------------------------------------------------


def test_run_notebook_ignores_student_tags_and_keeps_course_cells():
    course = nbformat.read(PROJECT / "Dropout.ipynb", as_version=4)
    student = copy.deepcopy(course)
    for cell in student.cells:
        if cell.cell_type == "code":
            cell.metadata["tags"] = ["nbval-skip", "nbval-ignore-output"]
            cell.source = cell.source  # unchanged code: every cell pairs
    added = nbformat.v4.new_code_cell("print('my own cell')")
    student.cells.insert(3, added)
    plan = splice.plan_notebook("Dropout.ipynb", course, student)
    run = splice.notebook_for_run("Dropout.ipynb", course, student, plan)
    tags = {t for c in run.cells for t in c.metadata.get("tags", [])}
    course_tags = {t for c in course.cells for t in c.metadata.get("tags", [])}
    assert tags <= course_tags | {"nbval-ignore-output"} and "nbval-skip" not in tags
    assert "my own cell" not in "".join(c.source for c in run.cells)
    assert any("added" in d and "my own cell" in d for d in plan.differences)
    code = [c for c in run.cells if c.cell_type == "code"]
    assert len(code) == len([c for c in course.cells if c.cell_type == "code"])


def test_model_answers_never_enter_the_run_notebook():
    course = nbformat.read(PROJECT / "Dropout.ipynb", as_version=4)
    student = copy.deepcopy(course)
    model = []
    for cell in student.cells:
        if cell.cell_type == "markdown" and "BEGIN ANSWER" in cell.source:
            model.append(cell.source)
            cell.source = "<!-- BEGIN ANSWER -->\nMy own answer.\n<!-- END ANSWER -->"
    run = splice.notebook_for_run("Dropout.ipynb", course, student)
    text = "\n".join(c.source for c in run.cells)
    assert text.count("My own answer.") == len(model) > 0
    for answer in model:
        body = answer.split("-->", 1)[1].rsplit("<!--", 1)[0].strip()
        assert body[:80] not in text


def test_a_deleted_course_cell_runs_with_its_output_ignored():
    course = nbformat.read(PROJECT / "Dropout.ipynb", as_version=4)
    student = copy.deepcopy(course)
    code = [i for i, c in enumerate(student.cells) if c.cell_type == "code"]
    del student.cells[code[2]]
    plan = splice.plan_notebook("Dropout.ipynb", course, student)
    run = splice.notebook_for_run("Dropout.ipynb", course, student, plan)
    missing = run.cells[code[2]]
    assert missing.outputs == [] and "nbval-ignore-output" in missing.metadata["tags"]
    assert any("missing" in d for d in plan.differences)


def test_cell_label_names_section_first_line_and_count():
    nb = nbformat.read(PROJECT / "Dropout.ipynb", as_version=4)
    i = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             and c.get("execution_count"))
    label = contract.cell_label(nb, i)
    assert "section" in label and f"[{nb.cells[i].execution_count}]" in label
