"""The submission contract: what a submission is, and which part of it is graded. The
packer (``student_tools.submission``) refuses what the grader could not grade and warns
about what it ignores; the grader's side is ``instructor_tools.grade.splice``.

A submission holds the notebooks and ``REQUIRED_CODE``. Graded are the solution region
bodies (``student_tools.markers``) of ``REGION_FILES`` and of the notebooks' code cells,
each checked by ``student_tools.allowlist``, and the written answers. A change anywhere
else never runs: it is listed, with file and line, as not graded.

Outside the regions, files are compared as *skeletons*: a text's lines without the region
bodies (marker lines kept), each hashed without trailing white space. A release ships the
course's skeletons (``FINGERPRINT``) so that the packer can compare without the course.
"""
import ast
import difflib
import hashlib
import json
import textwrap
from collections import namedtuple
from dataclasses import dataclass
from pathlib import Path

from student_tools.allowlist import Refusal, bound_names, check_body
from student_tools.markers import solution_regions

NOTEBOOKS = ("BatchNormalization.ipynb", "Dropout.ipynb")
REGION_FILES = ("cs231n/layers.py", "cs231n/classifiers/fc_net.py")
REQUIRED_CODE = ("cs231n/__init__.py", "cs231n/layers.py", "cs231n/layer_utils.py",
                 "cs231n/classifiers/__init__.py", "cs231n/classifiers/fc_net.py")
PACKAGE = "cs231n"
# Written into a student release by the release builder: the course's skeleton hashes.
FINGERPRINT = "student_tools/course_fingerprint.json"
MAX_LISTED = 30  # differences listed per file (a rewritten file would list hundreds)


def _hash(line):
    return hashlib.sha256(line.rstrip().encode("utf-8")).hexdigest()[:16]


# A text without its region bodies: the kept lines, their 1-based numbers, their hashes.
Skeleton = namedtuple("Skeleton", "lines linenos hashes")


def skeleton(text, regions=None):
    if regions is None:
        regions, _ = solution_regions(text)
    inside = {n for r in regions for n in range(r.begin + 1, r.end)}
    kept = [(n, l) for n, l in enumerate(text.splitlines(), start=1) if n not in inside]
    return Skeleton([l for _, l in kept], [n for n, _ in kept], [_hash(l) for _, l in kept])


@dataclass
class Difference:
    """One change outside the answer regions: where (the student's line), what, the line."""
    path: str
    line: int | None
    kind: str  # "changed", "added", "N course line(s) deleted ..."
    text: str = ""

    def __str__(self):
        where = f"{self.path}:{self.line}" if self.line else self.path
        shown = f": {self.text.strip()[:100]}" if self.text.strip() else ""
        return f"{where}: {self.kind} outside the answer regions (not graded){shown}"


def diff_skeletons(path, course_hashes, student):
    """[Difference] between the course's skeleton hashes and a student's Skeleton."""
    found = []
    matcher = difflib.SequenceMatcher(None, course_hashes, student.hashes, autojunk=False)
    for op, c1, c2, s1, s2 in matcher.get_opcodes():
        if op in ("replace", "insert"):
            kind = "changed" if op == "replace" else "added"
            found += [Difference(path, student.linenos[k], kind, student.lines[k])
                      for k in range(s1, s2)]
        if op == "delete" or (op == "replace" and c2 - c1 > s2 - s1):
            count = (c2 - c1) - (s2 - s1 if op == "replace" else 0)
            found.append(Difference(path, student.linenos[s1 - 1], f"{count} course line(s) "
                                    "deleted after this line") if s1 > 0 else
                         Difference(path, 1, f"{count} course line(s) deleted at the top"))
    return found


def match_regions(course_keys, student_regions):
    """Per course region key, in order, the student's region or None: the k-th course
    region with a (function, section) key takes the k-th student region with that key."""
    by_key, taken, found = {}, {}, []
    for region in student_regions:
        by_key.setdefault(region.key, []).append(region)
    for key in course_keys:
        k = taken[key] = taken.get(key, -1) + 1
        candidates = by_key.get(key, [])
        found.append(candidates[k] if k < len(candidates) else None)
    return found


def course_bound(text, regions):
    """Per region of the course's text, the names its function binds outside regions."""
    lines = text.splitlines()
    for r in reversed(regions):
        lines[r.begin:r.end - 1] = [r.indent + "pass"]
    functions = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions[prefix + child.name] = child
            named = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            visit(child, prefix + child.name + "." if named else prefix)

    visit(ast.parse("\n".join(lines) + "\n"), "")
    return [bound_names(functions[r.function]) if r.function in functions else set()
            for r in regions]


def check_region(body_lines, bound, first_lineno):
    """Refusals of one region body; first_lineno: the file's number of its first line."""
    refusals = check_body(textwrap.dedent("\n".join(body_lines)), bound)
    return [Refusal(r.line + first_lineno - 1, r.text, r.why) for r in refusals]


def cell_skeleton(source):
    """One hash for a code cell's source without its region bodies."""
    return _hash("\n".join(skeleton(source).lines).strip())


def code_cells(nb):
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def headings(nb):
    """For each cell index, the text of the last markdown heading at or before it."""
    heading, found = None, []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            heading = next((l.lstrip("# ").strip() for l in reversed(cell.source.splitlines())
                            if l.lstrip().startswith("#")), heading)
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


def fingerprint_texts(files, notebooks):
    """The course's fingerprint from {rel: text} of the package's .py files and {name:
    NotebookNode}: per file the skeleton hashes and per region [function, section, names
    its function binds]; per notebook one hash per code cell."""
    out = {"version": 1, "files": {}, "regions": {}, "notebooks": {}}
    for rel, text in sorted(files.items()):
        regions, _ = solution_regions(text)
        out["files"][rel] = skeleton(text, regions).hashes
        if regions:
            out["regions"][rel] = [[r.function, r.section, sorted(bound)] for r, bound in
                                   zip(regions, course_bound(text, regions))]
    for name, nb in sorted(notebooks.items()):
        out["notebooks"][name] = [cell_skeleton(nb.cells[i].source) for i in code_cells(nb)]
    return out


def load_fingerprint(root):
    """The fingerprint shipped at root/FINGERPRINT, or None (the course's own tree)."""
    path = Path(root) / FINGERPRINT
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    if data is not None and data.get("version") != 1:
        raise ValueError(f"{FINGERPRINT}: unknown version {data.get('version')!r}")
    return data


def review(texts, notebooks, course):
    """(refusals, warnings) for {rel: text} of the package files and {name: NotebookNode},
    against the fingerprint course: refusals are what the grader could not grade (damaged
    or missing markers, region code the allow-list refuses), warnings what it ignores."""
    refusals = []
    for rel in REGION_FILES:
        text = texts.get(rel)
        if text is None:
            continue  # reported as a missing file
        regions, problems = solution_regions(text)
        refusals += [f"{rel}:{n}: {why}; restore the marker lines as they were given"
                     for n, why in problems]
        course_regions = course["regions"].get(rel, [])
        mine = match_regions([(f, s) for f, s, _ in course_regions], regions)
        for (function, section, bound), region in zip(course_regions, mine):
            if region is None:
                refusals.append(f"{rel}: the answer region of {function} (section "
                                f"{section!r}) is missing: its marker lines were deleted or "
                                f"changed; restore them, with your code between them")
                continue
            for r in check_region(region.body(text.splitlines()), set(bound),
                                  region.begin + 1):
                refusals.append(f"{rel}:{r.line}: {r.why}: {r.text[:80]!r} "
                                f"(the grader would not run this region)")
    return refusals, outside_differences(texts, notebooks, course)


def outside_differences(texts, notebooks, course):
    """Every change outside the answer regions of the package files and the notebooks'
    code cells, and files the course lacks, as sentences with file and line."""
    found = []
    for rel, text in sorted(texts.items()):
        if rel not in course["files"]:
            found.append(f"{rel}: not a file of the course (not graded)")
            continue
        diffs = diff_skeletons(rel, course["files"][rel], skeleton(text))
        found += [str(d) for d in diffs[:MAX_LISTED]]
        if len(diffs) > MAX_LISTED:
            found.append(f"{rel}: ... and {len(diffs) - MAX_LISTED} more changes")
    for name, nb in sorted(notebooks.items()):
        if name not in course["notebooks"]:
            continue
        code, heads = code_cells(nb), headings(nb)
        keys = [cell_skeleton(nb.cells[i].source) for i in code]
        matcher = difflib.SequenceMatcher(None, course["notebooks"][name], keys,
                                          autojunk=False)
        for op, c1, c2, s1, s2 in matcher.get_opcodes():
            for k in range(s1, s2) if op != "equal" else ():
                what = "changed" if k - s1 < c2 - c1 else "added"
                found.append(f"{name}: {cell_label(nb, code[k], heads)}: {what} outside "
                             f"the answer regions (not graded)")
            if c2 - c1 > s2 - s1:
                found.append(f"{name}: {c2 - c1 - (s2 - s1)} course code cell(s) deleted")
    return found
