"""The grader's side of the submission contract (``student_tools.contract``): the course's
files and notebooks with the student's region bodies spliced in.

The grader builds the package it runs from the course's own files with the student's region
bodies (``splice``), and re-executes the course's notebooks with the student's regions,
stored outputs and answers (``notebook_for_run``). A region that is missing, empty, does not
parse or is refused by the allow-list becomes a ``raise`` and is reported, never run.
"""
import difflib
import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from student_tools.contract import (MAX_LISTED, NOTEBOOKS, PACKAGE, cell_label, cell_skeleton,
                                    check_region, code_cells, course_bound, diff_skeletons,
                                    fingerprint_texts, headings, match_regions, skeleton)
from student_tools.markers import ANSWER_BEGIN, ANSWER_END, answer_blocks, solution_regions

NETWORK_FILE = "cs231n/classifiers/fc_net.py"  # graded on the course's own layers


@dataclass
class RegionResult:
    """What became of one course region in a submission."""
    path: str
    index: int  # its place among the course file's regions
    function: str | None
    section: str
    line: int | None  # the student's BEGIN line (None: missing)
    state: str  # "ok", "empty", "missing", "forbidden", "syntax_error"
    refusals: list = field(default_factory=list)  # [Refusal] with lines of the student's file

    def describe(self):
        name = self.function or "the top level"
        where = f"{self.path}:{self.line}" if self.line else self.path
        if self.state == "missing":
            return f"{where}: the answer region of {name} is missing (its markers were " \
                   f"deleted or changed): not graded"
        if self.state in ("forbidden", "syntax_error"):
            first = self.refusals[0]
            return f"{self.path}:{first.line}: in {name}: {first.why}: {first.text[:100]!r}" \
                   f" (the region was not run)"
        return f"{where}: {name}: {self.state}"


@dataclass
class Spliced:
    """A course file with the student's region bodies in it."""
    text: str
    regions: list  # [RegionResult], one per course region
    differences: list  # [Difference] outside the regions
    problems: list  # marker problems of the student's file, as sentences


def _stub(indent, function, why):
    message = f"{function or 'this cell'}: {why}"
    return [f"{indent}raise NotImplementedError({message!r})"]


def splice(path, course_text, student_text):
    """The course file with the student's region bodies: a Spliced.

    A region that is missing, empty, does not parse or is refused by the allow-list
    becomes ``raise NotImplementedError(<why>)``: its items fail with that message, the
    other regions are graded as written.
    """
    course_regions, course_problems = solution_regions(course_text)
    if course_problems:
        raise ValueError(f"{path}: the course's own markers are broken: {course_problems}")
    student_regions, marker_problems = solution_regions(student_text)
    problems = [f"{path}:{n}: {why}" for n, why in marker_problems]
    matched = match_regions([r.key for r in course_regions], student_regions)
    bounds = course_bound(course_text, course_regions)
    student_lines, course_lines = student_text.splitlines(), course_text.splitlines()
    out, results, previous = [], [], 0
    for i, (region, mine) in enumerate(zip(course_regions, matched)):
        out.extend(course_lines[previous:region.begin])  # up to and including BEGIN
        previous = region.end - 1  # the END line comes with the next chunk
        result = RegionResult(path, i, region.function, region.section,
                              mine.begin if mine else None, "ok")
        results.append(result)
        if mine is None:
            result.state = "missing"
            out.extend(_stub(region.indent, region.function,
                             "the answer region is missing from the submission"))
            continue
        body = mine.body(student_lines)
        if not any(l.strip() and not l.strip().startswith("#") for l in body):
            result.state = "empty"
            out.extend(_stub(region.indent, region.function, "the answer region is empty"))
            continue
        result.refusals = check_region(body, bounds[i], mine.begin + 1)
        if result.refusals:
            syntax = result.refusals[0].why.startswith("syntax error")
            result.state = "syntax_error" if syntax else "forbidden"
            out.extend(_stub(region.indent, region.function,
                             "the answer region was not run: " + result.refusals[0].why))
            continue
        dedented = textwrap.dedent("\n".join(body)).splitlines()
        out.extend((region.indent + l) if l.strip() else "" for l in dedented)
    out.extend(course_lines[previous:])
    differences = diff_skeletons(path, skeleton(course_text, course_regions).hashes,
                                 skeleton(student_text, student_regions))
    return Spliced("\n".join(out) + "\n", results, differences, problems)


@dataclass
class NotebookPlan:
    """How a submitted notebook maps onto the course's: per course code cell the student
    cell index (or None), the cells that differ outside their regions, the regions."""
    pairs: dict  # course code-cell index -> student cell index
    differences: list  # sentences
    regions: list  # [RegionResult]


def plan_notebook(name, course_nb, student_nb):
    course_code, student_code = code_cells(course_nb), code_cells(student_nb)
    course_keys = [cell_skeleton(course_nb.cells[i].source) for i in course_code]
    student_keys = [cell_skeleton(student_nb.cells[i].source) for i in student_code]
    heads = headings(student_nb)
    pairs, differences = {}, []
    matcher = difflib.SequenceMatcher(None, course_keys, student_keys, autojunk=False)
    for op, c1, c2, s1, s2 in matcher.get_opcodes():
        if op == "equal":
            pairs.update({course_code[c1 + k]: student_code[s1 + k] for k in range(c2 - c1)})
            continue
        # Changed cells pair up in order; the course's code runs, the student's outputs
        # are compared; the change itself is listed.
        for k in range(min(c2 - c1, s2 - s1)):
            pairs[course_code[c1 + k]] = student_code[s1 + k]
        for k in range(s1, s2):
            what = "changed" if k - s1 < c2 - c1 else "added"
            differences.append(f"{name}: {cell_label(student_nb, student_code[k], heads)}: "
                               f"{what} outside the answer regions (not graded)")
        for k in range(c1 + (s2 - s1), c2):
            differences.append(f"{name}: a course code cell is missing: "
                               f"{cell_label(course_nb, course_code[k])}")
    regions = []
    for c_index, s_index in pairs.items():
        source = course_nb.cells[c_index].source
        if solution_regions(source)[0]:
            spliced = splice(f"{name} cell {cell_label(student_nb, s_index, heads)}",
                             source, student_nb.cells[s_index].source)
            regions.extend(spliced.regions)
    return NotebookPlan(pairs, differences[:MAX_LISTED * 2], regions)


def _with_answers(source, answers):
    """A markdown source with its answer bodies replaced, in order, by answers."""
    out, inside, k = [], False, 0
    for line in source.splitlines():
        if line.strip() == ANSWER_BEGIN:
            out += [line, answers[k] if k < len(answers) else ""]
            k, inside = k + 1, True
        elif line.strip() == ANSWER_END:
            out.append(line)
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def _answers(source):
    return [text for event, _, text in answer_blocks(source) if event == "answer"]


def notebook_for_run(name, course_nb, student_nb, plan=None):
    """The notebook the grader re-executes: the course's cells, metadata and tags, with
    the student's region bodies and stored outputs; the student's answers in place of the
    course's model answers (which must not enter the sandbox). Course code cells the
    student lacks run with their outputs ignored (listed as missing in the plan)."""
    plan = plan or plan_notebook(name, course_nb, student_nb)
    nb = nbformat.from_dict(json.loads(json.dumps(course_nb)))
    student_answers = [a for c in student_nb.cells if c.cell_type == "markdown"
                       for a in _answers(c.source)]
    k = 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            count = len(_answers(cell.source))
            if count:
                cell.source = _with_answers(cell.source, student_answers[k:k + count])
                k += count
            continue
        if cell.cell_type != "code":
            continue
        s = plan.pairs.get(i)
        if s is None:
            cell.outputs, cell.execution_count = [], None
            tags = cell.metadata.setdefault("tags", [])
            if "nbval-ignore-output" not in tags:
                tags.append("nbval-ignore-output")
            continue
        mine = student_nb.cells[s]
        if solution_regions(cell.source)[0]:
            cell.source = splice(name, cell.source, mine.source).text.rstrip("\n")
        cell.outputs = mine.get("outputs", [])
        cell.execution_count = mine.get("execution_count")
    return nb


def fingerprint(course_root):
    """student_tools.contract.fingerprint_texts of the course's tree at course_root."""
    root = Path(course_root)
    files = {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
             for p in sorted((root / PACKAGE).rglob("*.py")) if "__pycache__" not in p.parts}
    notebooks = {name: nbformat.read(root / name, as_version=4)
                 for name in NOTEBOOKS if (root / name).is_file()}
    return fingerprint_texts(files, notebooks)
