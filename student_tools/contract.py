"""The submission contract: what a submission is, and which part of it is graded.

Used by both sides, so that they cannot disagree: the packer (``student_tools.submission``)
refuses exactly what the grader (``instructor_tools.grade``) could not grade, and warns
about exactly what the grader ignores.

What a submission holds (``REQUIRED``): the two notebooks and the package's modules. What
of it is the student's work, and graded:

- the body of each solution region (the lines between ``### BEGIN SOLUTION (...)`` and
  ``### END SOLUTION``, see ``student_tools.markers``) of ``REGION_FILES``;
- the bodies of solution regions in the notebooks' code cells (if the course has any);
- the answer cells (text between the answer markers), read by people.

Everything else comes from the course: the grader builds the package it runs from the
course's own files with the student's region bodies spliced in (``splice``), and re-executes
the course's notebooks with the student's regions and stored outputs (``notebook_for_run``).
A change outside the regions never runs; it is listed ("changed outside the answer regions:
not graded"), by the packer before it zips and by the grader in the feedback.

Each region body is checked before it runs (``student_tools.allowlist``): a refused body is
replaced by a ``raise`` and reported, never run.

The comparison outside the regions works on a *skeleton*: a file's lines with every region
body removed (marker lines kept), each line hashed after trailing white space is dropped.
A release ships the course's skeleton hashes (``FINGERPRINT``, written by
``fingerprint()``), so the packer can compare without the course's files.
"""
import ast
import difflib
import hashlib
import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from student_tools.allowlist import Refusal, bound_names, check_body
from student_tools.markers import ANSWER_BEGIN, ANSWER_END, solution_regions

NOTEBOOKS = ("BatchNormalization.ipynb", "Dropout.ipynb")
# The package modules a submission must carry; the two holding regions are the work.
REGION_FILES = ("cs231n/layers.py", "cs231n/classifiers/fc_net.py")
NETWORK_FILE = "cs231n/classifiers/fc_net.py"  # graded on the course's own layers
REQUIRED_CODE = ("cs231n/__init__.py", "cs231n/layers.py", "cs231n/layer_utils.py",
                 "cs231n/classifiers/__init__.py", "cs231n/classifiers/fc_net.py")
REQUIRED = NOTEBOOKS + REQUIRED_CODE
PACKAGE = "cs231n"
# Written into a student release by the release builder: the course's skeleton hashes.
FINGERPRINT = "student_tools/course_fingerprint.json"
# Listed differences per file (a rewritten file would otherwise list hundreds).
MAX_LISTED = 30


def _hash(line):
    return hashlib.sha256(line.rstrip().encode("utf-8")).hexdigest()[:16]


@dataclass
class Skeleton:
    """A text without its region bodies: ``hashes`` per kept line, ``linenos`` their
    1-based line numbers in the text, ``lines`` the kept lines themselves."""
    lines: list
    linenos: list
    hashes: list


def skeleton(text, regions=None):
    lines = text.splitlines()
    if regions is None:
        regions, _ = solution_regions(text)
    inside = set()
    for region in regions:
        inside.update(range(region.begin + 1, region.end))
    kept = [(n, line) for n, line in enumerate(lines, start=1) if n not in inside]
    return Skeleton([l for _, l in kept], [n for n, _ in kept], [_hash(l) for _, l in kept])


@dataclass
class Difference:
    """One change outside the answer regions: where, what, and the student's line."""
    path: str
    line: int | None  # the student's line (None: a course line deleted at the file end)
    kind: str  # "changed", "added", "deleted", "missing region", "extra file", ...
    text: str = ""

    def __str__(self):
        where = f"{self.path}:{self.line}" if self.line else self.path
        shown = f": {self.text.strip()[:100]}" if self.text.strip() else ""
        return f"{where}: {self.kind} outside the answer regions (not graded){shown}"


def diff_skeletons(path, course_hashes, student):
    """Differences between the course's skeleton hashes and a student's Skeleton."""
    found = []
    matcher = difflib.SequenceMatcher(None, course_hashes, student.hashes, autojunk=False)
    for op, c1, c2, s1, s2 in matcher.get_opcodes():
        if op == "equal":
            continue
        if op in ("replace", "insert"):
            kind = "changed" if op == "replace" else "added"
            for k in range(s1, s2):
                found.append(Difference(path, student.linenos[k], kind, student.lines[k]))
        if op == "delete" or (op == "replace" and c2 - c1 > s2 - s1):
            at = student.linenos[s1 - 1] if s1 > 0 else 1
            count = (c2 - c1) - (s2 - s1 if op == "replace" else 0)
            found.append(Difference(path, at, f"{count} course line(s) deleted after this line"
                                    if s1 > 0 else f"{count} course line(s) deleted at the top"))
    return found


# ---------------------------------------------------------------------------
# Python files: regions matched, checked and spliced
# ---------------------------------------------------------------------------


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


def _match(course_regions, student_regions):
    """{course index: student region}: the k-th course region with a (function, section)
    key takes the k-th student region with that key."""
    by_key = {}
    for region in student_regions:
        by_key.setdefault(region.key, []).append(region)
    taken, matched = {}, {}
    for i, region in enumerate(course_regions):
        k = taken.get(region.key, 0)
        candidates = by_key.get(region.key, [])
        if k < len(candidates):
            matched[i] = candidates[k]
        taken[region.key] = k + 1
    return matched


def _course_bound(course_text, course_regions):
    """For each course region, the names its function binds outside the regions."""
    lines = course_text.splitlines()
    inside = {}
    for region in course_regions:
        inside[region.begin] = region
    out, skip_to = [], 0
    for n, line in enumerate(lines, start=1):
        if n < skip_to:
            continue
        out.append(line)
        if n in inside:
            region = inside[n]
            out.append(region.indent + "pass")
            skip_to = region.end
    tree = ast.parse("\n".join(out) + "\n")
    functions = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions[prefix + child.name] = child
                visit(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return [bound_names(functions[r.function]) if r.function in functions else set()
            for r in course_regions]


def check_region(body_lines, bound, first_lineno):
    """Refusals of one region body; line numbers are the file's (first_lineno: the first
    body line)."""
    source = textwrap.dedent("\n".join(body_lines))
    refusals = check_body(source, bound)
    return [Refusal(r.line + first_lineno - 1, r.text, r.why) for r in refusals]


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
    matched = _match(course_regions, student_regions)
    bounds = _course_bound(course_text, course_regions)
    student_lines = student_text.splitlines()
    course_lines = course_text.splitlines()
    out, results, previous = [], [], 0
    for i, region in enumerate(course_regions):
        out.extend(course_lines[previous:region.begin])  # up to and including BEGIN
        previous = region.end - 1  # the END line comes with the next chunk
        mine = matched.get(i)
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
    text = "\n".join(out) + "\n"
    student_skeleton = skeleton(student_text, student_regions)
    differences = diff_skeletons(path, skeleton(course_text, course_regions).hashes,
                                 student_skeleton)
    return Spliced(text, results, differences, problems)


# ---------------------------------------------------------------------------
# Notebooks: the course's cells with the student's regions and outputs
# ---------------------------------------------------------------------------


def _cell_skeleton(source):
    """One hash for a code cell's source without its region bodies."""
    return _hash("\n".join(skeleton(source).lines).strip())


def headings(nb):
    """For each cell index, the text of the last markdown heading at or before it."""
    heading, found = None, []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.lstrip().startswith("#"):
                    heading = line.lstrip("# ").strip()
        found.append(heading)
    return found


def cell_label(nb, index, heads=None):
    """How a student finds a cell in JupyterLab: its section, first line, and [count]."""
    heads = heads or headings(nb)
    cell = nb.cells[index]
    first = next((l.strip() for l in cell.source.splitlines() if l.strip()), "(empty)")
    count = cell.get("execution_count")
    shown = f"[{count}] " if count is not None else ""
    section = f'section "{heads[index]}", ' if heads[index] else ""
    return f"{section}{cell.cell_type} cell {shown}{first[:60]!r}"


@dataclass
class NotebookPlan:
    """How a submitted notebook maps onto the course's: per course code cell the student
    cell index (or None), the cells that differ outside their regions, the regions."""
    pairs: dict  # course code-cell index -> student cell index
    differences: list  # sentences
    regions: list  # [RegionResult]


def _code_cells(nb):
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def plan_notebook(name, course_nb, student_nb):
    course_code, student_code = _code_cells(course_nb), _code_cells(student_nb)
    course_keys = [_cell_skeleton(course_nb.cells[i].source) for i in course_code]
    student_keys = [_cell_skeleton(student_nb.cells[i].source) for i in student_code]
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


def _answers(source):
    """The text between each pair of answer markers, in order."""
    found, body = [], None
    for line in source.splitlines():
        if line.strip() == ANSWER_BEGIN:
            body = []
        elif line.strip() == ANSWER_END and body is not None:
            found.append("\n".join(body))
            body = None
        elif body is not None:
            body.append(line)
    return found


def _with_answers(source, answers):
    """A markdown source with its answer bodies replaced, in order, by answers."""
    out, inside, k = [], False, 0
    for line in source.splitlines():
        if line.strip() == ANSWER_BEGIN:
            out.append(line)
            out.append(answers[k] if k < len(answers) else "")
            k += 1
            inside = True
        elif line.strip() == ANSWER_END:
            out.append(line)
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def notebook_for_run(name, course_nb, student_nb, plan=None):
    """The notebook the grader re-executes: the course's cells, metadata and tags, with
    the student's region bodies and stored outputs; the student's answers in place of the
    course's model answers (which must not enter the sandbox). Course code cells the
    student lacks run with their outputs ignored (listed as missing in the plan)."""
    import nbformat

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


# ---------------------------------------------------------------------------
# The course's fingerprint (shipped in a release) and the packer's comparison
# ---------------------------------------------------------------------------


def fingerprint_texts(files, notebooks):
    """The course's fingerprint from its texts: {rel: text} of the package's .py files and
    {name: NotebookNode}. Per file the skeleton hashes and, per region, its function,
    section and the names its function binds outside the regions (what the allow-list
    accepts there); per notebook one hash per code cell."""
    out = {"version": 1, "files": {}, "regions": {}, "notebooks": {}}
    for rel, text in sorted(files.items()):
        regions, _ = solution_regions(text)
        out["files"][rel] = skeleton(text, regions).hashes
        if regions:
            out["regions"][rel] = [[r.function, r.section, sorted(bound)] for r, bound in
                                   zip(regions, _course_bound(text, regions))]
    for name, nb in sorted(notebooks.items()):
        out["notebooks"][name] = [_cell_skeleton(nb.cells[i].source) for i in _code_cells(nb)]
    return out


def fingerprint(course_root):
    """fingerprint_texts of the course's tree at course_root."""
    import nbformat

    root = Path(course_root)
    files = {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
             for p in sorted((root / PACKAGE).rglob("*.py")) if "__pycache__" not in p.parts}
    notebooks = {name: nbformat.read(root / name, as_version=4)
                 for name in NOTEBOOKS if (root / name).is_file()}
    return fingerprint_texts(files, notebooks)


def load_fingerprint(root):
    """The fingerprint shipped at root/FINGERPRINT, or None (the course's own tree)."""
    path = Path(root) / FINGERPRINT
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("version") != 1:
        raise ValueError(f"{FINGERPRINT}: unknown version {data.get('version')!r}")
    return data


def review(texts, notebooks, course):
    """What the packer tells the student, from the same rules the grader applies.

    texts: {rel: text} of the package files; notebooks: {name: NotebookNode}; course: a
    fingerprint. Returns (refusals, warnings): refusals are what the grader could not
    grade (damaged or missing region markers, region code the allow-list refuses), each
    with file and line; warnings are the changes outside the regions, which it ignores.
    """
    refusals = []
    for rel in REGION_FILES:
        text = texts.get(rel)
        if text is None:
            continue  # reported as a missing file
        regions, problems = solution_regions(text)
        refusals += [f"{rel}:{n}: {why}; restore the marker lines as they were given"
                     for n, why in problems]
        course_regions = course["regions"].get(rel, [])
        by_key = {}
        for region in regions:
            by_key.setdefault(region.key, []).append(region)
        taken = {}
        for function, section, bound in course_regions:
            key = (function, section)
            k = taken.get(key, 0)
            taken[key] = k + 1
            if k >= len(by_key.get(key, [])):
                refusals.append(f"{rel}: the answer region of {function} (section "
                                f"{section!r}) is missing: its marker lines were deleted or "
                                f"changed; restore them, with your code between them")
                continue
            mine = by_key[key][k]
            for refusal in check_region(mine.body(text.splitlines()), set(bound),
                                        mine.begin + 1):
                refusals.append(f"{rel}:{refusal.line}: {refusal.why}: {refusal.text[:80]!r} "
                                f"(the grader would not run this region)")
    return refusals, outside_differences(texts, notebooks, course)


def outside_differences(texts, notebooks, course):
    """What the grader will ignore, as sentences with file and line: every change outside
    the answer regions of the package files and the notebooks' code cells, and files the
    course does not have. texts: {rel path: text}; notebooks: {name: NotebookNode};
    course: a fingerprint."""
    found = []
    for rel, text in sorted(texts.items()):
        hashes = course["files"].get(rel)
        if hashes is None:
            found.append(f"{rel}: not a file of the course (not graded)")
            continue
        diffs = diff_skeletons(rel, hashes, skeleton(text))
        found += [str(d) for d in diffs[:MAX_LISTED]]
        if len(diffs) > MAX_LISTED:
            found.append(f"{rel}: ... and {len(diffs) - MAX_LISTED} more changes")
    for name, nb in sorted(notebooks.items()):
        course_keys = course["notebooks"].get(name)
        if course_keys is None:
            continue
        code = _code_cells(nb)
        keys = [_cell_skeleton(nb.cells[i].source) for i in code]
        heads = headings(nb)
        matcher = difflib.SequenceMatcher(None, course_keys, keys, autojunk=False)
        for op, c1, c2, s1, s2 in matcher.get_opcodes():
            if op == "equal":
                continue
            for k in range(s1, s2):
                what = "changed" if k - s1 < c2 - c1 else "added"
                found.append(f"{name}: {cell_label(nb, code[k], heads)}: {what} outside "
                             f"the answer regions (not graded)")
            if c2 - c1 > s2 - s1:
                found.append(f"{name}: {c2 - c1 - (s2 - s1)} course code cell(s) deleted")
    return found
