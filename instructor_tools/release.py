"""Generate the student release: solution code and answers replaced, outputs cleared.

    python -m instructor_tools.release [--out DIR] [--name NAME] [--root DIR]

writes DIR/NAME/ (default release/cs231n-student/) and DIR/NAME.zip.

What happens to the project's files (``git ls-files`` in a git checkout, otherwise a walk
that leaves out .venv, the installed data set, release/ and caches):

- In every ``.py`` file and every notebook code cell, each solution region (a comment line
  ``### BEGIN SOLUTION (<notebook>: "<section>")``, the solution statements, a comment line
  ``### END SOLUTION``) becomes, at the BEGIN line's indentation, a ``# TODO:`` comment
  and ``raise NotImplementedError("<function>: not implemented yet; see <notebook>,
  section "<section>"")``. <section> must be a markdown heading of <notebook>.
- In notebook markdown cells, the text between ``<!-- BEGIN ANSWER -->`` and
  ``<!-- END ANSWER -->`` becomes ANSWER_PROMPT; the two marker lines stay, so that
  ``student_tools.submission`` can find the student's answer.
- Notebook outputs, execution counts and timing metadata are cleared.

Nothing is written unless every marker in the tree is well formed: markers are paired and
not nested, a .py region lies inside a function and holds complete statements, and the
section it names exists. After writing, the release is searched for every line of every
solution region and answer (the lines that occur nowhere else in the project) and is
discarded if one is found.

What the release guarantees when run (checked by tests/test_release.py on the real tree):
its package imports; its unit tests fail with NotImplementedError and nothing else; executed
top to bottom, the first cell of each notebook that fails raises NotImplementedError (the
cells after it may then fail with NameError, because a failed cell defines nothing).
"""
import argparse
import ast
import difflib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tokenize
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from student_tools.markers import (
    ANSWER_BEGIN,
    ANSWER_END,
    ANSWER_PROMPT,
    ANSWER_WORD_RE as _ANSWER_WORD_RE,
    SOLUTION_BEGIN_RE,
    SOLUTION_BEGIN_TEMPLATE,
    SOLUTION_END,
    SOLUTION_END_RE,
    SOLUTION_WORD_RE as _SOLUTION_WORD_RE,
)

DEFAULT_OUT = "release"
DEFAULT_NAME = "cs231n-student"
# Written into an output directory on creation: only such a directory is ever overwritten.
OUT_MARKER = ".cs231n-release"

# Never shipped, even if tracked: environments, installed data, generated output, caches.
_EXCLUDED_DIR_NAMES = {
    ".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".hypothesis",
    ".ipynb_checkpoints", "build", ".mypy_cache", ".ruff_cache",
}
_EXCLUDED_TOP_PATHS = ("release", "datasets/cifar-10-batches-py")
_EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".tar.gz", ".egg-info")

# A region line shorter than this is too generic ("else:", "pass") to prove a leak.
_MIN_SENTINEL_CHARS = 6


class ReleaseError(Exception):
    """The tree cannot be released; ``problems`` lists every reason found."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass
class SolutionRegion:
    """One solution region. Lines are 1-based, within the file or notebook cell."""

    path: str
    cell: int | None  # notebook cell index, None for a .py file
    begin: int
    end: int
    indent: str
    notebook: str
    section: str
    function: str = ""
    body: list = field(default_factory=list)  # the lines strictly between the markers

    def where(self):
        cell = f" cell {self.cell}" if self.cell is not None else ""
        return f"{self.path}{cell} line {self.begin}"


@dataclass
class AnswerRegion:
    path: str
    cell: int
    body: list  # the lines strictly between the markers


@dataclass
class ReleasePlan:
    """Everything the release will contain, computed before anything is written."""

    root: Path
    files: list  # relative paths (str, POSIX) to ship
    contents: dict  # relative path -> bytes of the released file
    regions: list
    answers: list
    source_text: dict  # relative path -> searchable text outside regions and answers


# ---------------------------------------------------------------------------
# Finding markers
# ---------------------------------------------------------------------------


def _pair_solution_markers(marker_lines, path, cell, problems):
    """Pair (lineno, line) comment lines into SolutionRegion objects (body not yet filled).

    Collects malformed, nested and unbalanced markers into problems.
    """
    where = f"{path}" + (f" cell {cell}" if cell is not None else "")
    regions, open_region = [], None
    for lineno, line in marker_lines:
        begin, end = SOLUTION_BEGIN_RE.match(line), SOLUTION_END_RE.match(line)
        if begin:
            if open_region is not None:
                problems.append(
                    f"{where} line {lineno}: solution region opened inside the region opened "
                    f"at line {open_region.begin} (regions cannot nest)"
                )
                continue
            open_region = SolutionRegion(
                path, cell, lineno, 0, begin["indent"], begin["notebook"].strip(),
                begin["section"],
            )
        elif end:
            if open_region is None:
                problems.append(f"{where} line {lineno}: END marker without a BEGIN marker")
                continue
            if end["indent"] != open_region.indent:
                problems.append(
                    f"{where} line {lineno}: END marker indented differently from its BEGIN "
                    f"marker at line {open_region.begin}"
                )
            open_region.end = lineno
            regions.append(open_region)
            open_region = None
        else:
            problems.append(
                f"{where} line {lineno}: malformed solution marker {line.strip()!r}; expected "
                f"'{SOLUTION_BEGIN_TEMPLATE}' or '{SOLUTION_END}'"
            )
    if open_region is not None:
        problems.append(
            f"{where} line {open_region.begin}: BEGIN marker never closed by an END marker"
        )
    return regions


def _comment_marker_lines_py(text, path, problems):
    """Marker-like comment lines of Python source, found with tokenize.

    tokenize sees only real comments, so marker text inside strings (docstrings, this
    module's own regexes, test fixtures) is never mistaken for a region.
    """
    found = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError) as exc:
        if _SOLUTION_WORD_RE.search(text):
            problems.append(f"{path}: cannot tokenize ({exc}), so its markers cannot be read")
        return found
    for tok in tokens:
        if tok.type != tokenize.COMMENT or not _SOLUTION_WORD_RE.search(tok.string):
            continue
        line = tok.line.rstrip("\r\n")
        if line.strip() != tok.string.strip():
            problems.append(
                f"{path} line {tok.start[0]}: a solution marker must be alone on its line"
            )
            continue
        found.append((tok.start[0], line))
    return found


def _comment_marker_lines_cell(source):
    """Marker-like comment lines of a notebook code cell (may hold IPython magics)."""
    return [
        (i, line)
        for i, line in enumerate(source.splitlines(), start=1)
        if line.lstrip().startswith("#") and _SOLUTION_WORD_RE.search(line)
    ]


def _functions_by_span(tree):
    """(qualified name, def node) for every function in an ast, outermost first."""
    found = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                found.append((name, child))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def _check_region_in_function(region, tree, problems):
    """Set region.function from the enclosing def; check the region is whole statements.

    Whole statements: no statement starts inside the region and ends outside it, a
    statement that starts before it and reaches into it is a compound one (if/for/with...)
    holding it, and the region's outermost statements all belong to one block.
    """
    enclosing = [
        (name, node)
        for name, node in _functions_by_span(tree)
        if node.lineno < region.begin and region.end <= node.end_lineno
    ]
    if not enclosing:
        problems.append(
            f"{region.where()}: solution region outside a function (the release replaces it "
            f"by a raise, which must sit inside the function the student writes)"
        )
        return
    region.function, func = enclosing[-1]
    begin, end = region.begin, region.end
    for node in ast.walk(func):
        if not isinstance(node, ast.stmt) or node is func:
            continue
        starts_inside = begin < node.lineno < end
        cut = (starts_inside and node.end_lineno > end) or (
            node.lineno < begin and node.end_lineno >= begin and not hasattr(node, "body")
        )
        if cut:
            problems.append(
                f"{region.where()}: the region cuts the statement at line {node.lineno} in "
                f"two; a region must hold complete statements"
            )
            return
    outermost = {}  # id(block) -> statements of that block inside the region
    for owner in ast.walk(func):
        if owner is not func and getattr(owner, "lineno", begin) > begin:
            continue  # a block nested in one of the region's own statements
        for attr in ("body", "orelse", "finalbody"):
            block = getattr(owner, attr, None)
            if not isinstance(block, list):
                continue
            inside = [s for s in block if isinstance(s, ast.stmt) and begin < s.lineno < end]
            if inside:
                outermost[id(block)] = inside
    if not outermost:
        problems.append(f"{region.where()}: solution region holds no code")
        return
    if len(outermost) > 1:
        problems.append(
            f"{region.where()}: the region spans two blocks (e.g. an if and its else); "
            f"it must hold statements of one block"
        )
        return
    (statements,) = outermost.values()
    if statements[0].col_offset != len(region.indent.expandtabs()):
        problems.append(
            f"{region.where()}: the BEGIN marker is indented {len(region.indent)} columns but "
            f"the region's code {statements[0].col_offset}; the raise that replaces it would "
            f"land in another block"
        )


def _enclosing_def_by_indentation(lines, begin, indent):
    """Qualified name of the def enclosing line ``begin`` (1-based), from indentation."""
    width = len(indent.expandtabs())
    names = []
    for line in reversed(lines[: begin - 1]):
        if not line.strip():
            continue
        line_width = len(line) - len(line.lstrip())
        match = re.match(r"\s*(?:async\s+)?(def|class)\s+(\w+)", line)
        if match and line_width < width:
            if match[1] == "def" or names:
                names.append(match[2])
            width = line_width
    return ".".join(reversed(names)) or "this cell"


def _replacement_lines(region):
    message = (
        f'{region.function}: not implemented yet; see {region.notebook}, '
        f'section "{region.section}"'
    )
    return [
        f"{region.indent}# TODO: your code here, in place of this raise.",
        f"{region.indent}raise NotImplementedError({message!r})",
    ]


def _apply_solution_regions(lines, regions):
    """The lines with every region (markers included) replaced; also fills region.body."""
    out, previous_end = [], 0
    for region in sorted(regions, key=lambda r: r.begin):
        region.body = lines[region.begin : region.end - 1]
        out.extend(lines[previous_end : region.begin - 1])
        out.extend(_replacement_lines(region))
        previous_end = region.end
    out.extend(lines[previous_end:])
    return out


def _outside_regions(lines, regions):
    """The lines not inside any region (markers count as inside)."""
    inside = set()
    for region in regions:
        inside.update(range(region.begin, region.end + 1))
    return [line for i, line in enumerate(lines, start=1) if i not in inside]


def _ends_with_newline(text):
    return text.endswith("\n")


def _process_python(path, text, problems):
    """(released text, regions, text outside regions) of one .py file."""
    marker_lines = _comment_marker_lines_py(text, path, problems)
    if not marker_lines:
        return text, [], text
    n_problems = len(problems)
    regions = _pair_solution_markers(marker_lines, path, None, problems)
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError as exc:
        problems.append(f"{path}: does not parse ({exc.msg}, line {exc.lineno})")
        return text, regions, text
    for region in regions:
        _check_region_in_function(region, tree, problems)
    lines = text.splitlines()
    released = _apply_solution_regions(lines, regions)
    released_text = "\n".join(released) + ("\n" if _ends_with_newline(text) else "")
    if len(problems) == n_problems:
        try:
            compile(released_text, path, "exec")
        except SyntaxError as exc:
            problems.append(
                f"{path}: the released file would not parse ({exc.msg}, line {exc.lineno}); "
                f"check that every region holds complete statements"
            )
    return released_text, regions, "\n".join(_outside_regions(lines, regions))


def _compile_cell(source):
    """Compile a code cell as IPython would see it (magics turned into Python)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # no IPython: compile only cells without magics
        if re.search(r"^\s*[%!]", source, re.MULTILINE):
            return
        transformed = source
    else:
        transformed = TransformerManager().transform_cell(source)
    compile(transformed, "<cell>", "exec")


def _answer_regions_in_markdown(source, path, cell, problems):
    """(released source, answer regions) of one markdown cell."""
    lines = source.splitlines()
    out, regions, open_at, body = [], [], None, []
    for lineno, line in enumerate(lines, start=1):
        stripped = line.strip()
        if _ANSWER_WORD_RE.search(line) and stripped not in (ANSWER_BEGIN, ANSWER_END):
            problems.append(
                f"{path} cell {cell} line {lineno}: malformed answer marker {stripped!r}; "
                f"expected a line {ANSWER_BEGIN!r} or {ANSWER_END!r}"
            )
        if stripped == ANSWER_BEGIN:
            if open_at is not None:
                problems.append(
                    f"{path} cell {cell} line {lineno}: answer region opened inside the one "
                    f"opened at line {open_at} (regions cannot nest)"
                )
                continue
            open_at, body = lineno, []
            out.extend([line, ANSWER_PROMPT])
        elif stripped == ANSWER_END:
            if open_at is None:
                problems.append(
                    f"{path} cell {cell} line {lineno}: {ANSWER_END} without {ANSWER_BEGIN}"
                )
                continue
            regions.append(AnswerRegion(path, cell, body))
            open_at = None
            out.append(line)
        elif open_at is not None:
            body.append(line)
        else:
            out.append(line)
    if open_at is not None:
        problems.append(
            f"{path} cell {cell} line {open_at}: {ANSWER_BEGIN} never closed by {ANSWER_END}"
        )
    return "\n".join(out), regions


def _markdown_headings(nb):
    """The text of every markdown heading (ATX style, outside code fences) of a notebook."""
    headings = []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        in_fence = False
        for line in cell.source.splitlines():
            if re.match(r"^\s{0,3}(```|~~~)", line):
                in_fence = not in_fence
                continue
            match = re.match(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
            if match and not in_fence:
                headings.append(match[1].strip())
    return headings


def _process_notebook(path, raw, problems):
    """(released notebook bytes, solution regions, answer regions, text outside them)."""
    try:
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types for bad files
        problems.append(f"{path}: not a readable notebook ({type(exc).__name__}: {exc})")
        return raw, [], [], ""
    regions, answers, outside = [], [], []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            source = cell.source
            marker_lines = _comment_marker_lines_cell(source)
            cell_regions = _pair_solution_markers(marker_lines, path, index, problems)
            lines = source.splitlines()
            for region in cell_regions:
                region.function = _enclosing_def_by_indentation(
                    lines, region.begin, region.indent
                )
                if not any(
                    line.strip() and not line.lstrip().startswith("#")
                    for line in lines[region.begin : region.end - 1]
                ):
                    problems.append(f"{region.where()}: solution region holds no code")
            released = "\n".join(_apply_solution_regions(lines, cell_regions))
            if cell_regions:
                try:
                    _compile_cell(released)
                except SyntaxError as exc:
                    problems.append(
                        f"{path} cell {index}: the released cell would not parse "
                        f"({exc.msg}, line {exc.lineno}); a region must hold complete "
                        f"statements"
                    )
            outside.extend(_outside_regions(lines, cell_regions))
            regions.extend(cell_regions)
            cell.source = released
            cell.outputs = []
            cell.execution_count = None
            for key in ("execution", "collapsed", "scrolled", "ExecuteTime"):
                cell.metadata.pop(key, None)
        elif cell.cell_type == "markdown":
            released, cell_answers = _answer_regions_in_markdown(
                cell.source, path, index, problems
            )
            answers.extend(cell_answers)
            cell.source = released
            outside.extend(
                line for line in released.splitlines() if line.strip() != ANSWER_PROMPT
            )
        else:
            outside.extend(cell.source.splitlines())
    nb.metadata.pop("widgets", None)
    text = nbformat.writes(nb) + "\n"
    return text.encode("utf-8"), regions, answers, "\n".join(outside)


# ---------------------------------------------------------------------------
# Planning, writing, verifying
# ---------------------------------------------------------------------------


def _is_excluded(rel):
    parts = rel.split("/")
    if any(part in _EXCLUDED_DIR_NAMES or part.endswith(".egg-info") for part in parts[:-1]):
        return True
    if any(rel == top or rel.startswith(top + "/") for top in _EXCLUDED_TOP_PATHS):
        return True
    return rel.endswith(_EXCLUDED_SUFFIXES) or parts[-1] == ".DS_Store"


def _git_files(root):
    """Tracked files relative to root, or None when root is not in a git work tree."""
    try:
        inside = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--is-inside-work-tree"],
            capture_output=True, text=True, check=False,
        )
        if inside.returncode != 0 or inside.stdout.strip() != "true":
            return None
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z"],
            capture_output=True, check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return [p for p in listed.stdout.decode("utf-8").split("\0") if p]


def _walk_files(root, skip_dirs):
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames
            if d not in _EXCLUDED_DIR_NAMES and not d.endswith(".egg-info")
            and (here / d).resolve() not in skip_dirs
        )
        for name in sorted(filenames):
            found.append((here / name).relative_to(root).as_posix())
    return found


def project_files(root, skip_dirs=()):
    """The files a release ships: tracked ones in a git checkout, else a filtered walk."""
    root = Path(root)
    files = _git_files(root)
    if files is None:
        files = _walk_files(root, {Path(d).resolve() for d in skip_dirs})
    # A tracked file deleted in the working tree is not shipped (and not an error).
    return sorted(
        rel for rel in files
        if not _is_excluded(rel) and (root / rel).is_file() and not (root / rel).is_symlink()
    )


def plan_release(root, skip_dirs=()):
    """Read and transform the tree in memory. Raises ReleaseError listing every problem."""
    root = Path(root).resolve()
    problems, contents, regions, answers, source_text = [], {}, [], [], {}
    files = project_files(root, skip_dirs)
    notebooks = {}
    for rel in files:
        raw = (root / rel).read_bytes()
        if rel.endswith(".py"):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                problems.append(f"{rel}: not UTF-8 text")
                continue
            released, file_regions, outside = _process_python(rel, text, problems)
            contents[rel] = released.encode("utf-8")
            regions.extend(file_regions)
            source_text[rel] = outside
        elif rel.endswith(".ipynb"):
            released, file_regions, file_answers, outside = _process_notebook(rel, raw, problems)
            contents[rel] = released
            regions.extend(file_regions)
            answers.extend(file_answers)
            source_text[rel] = outside
            notebooks[rel] = released
        else:
            contents[rel] = raw
            try:
                source_text[rel] = raw.decode("utf-8")
            except UnicodeDecodeError:
                pass  # binary: nothing of a region can hide in it, and nothing to search

    headings_cache = {}
    for region in regions:
        if region.notebook not in headings_cache:
            if region.notebook in notebooks:
                nb = nbformat.reads(notebooks[region.notebook].decode("utf-8"), as_version=4)
                headings_cache[region.notebook] = _markdown_headings(nb)
            else:
                headings_cache[region.notebook] = None
        headings = headings_cache[region.notebook]
        if headings is None:
            problems.append(
                f"{region.where()}: names notebook {region.notebook!r}, which is not in the "
                f"project"
            )
        elif region.section not in headings:
            close = difflib.get_close_matches(region.section, headings, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(
                f"{region.where()}: {region.notebook} has no heading "
                f"{region.section!r}{hint}"
            )
    if problems:
        raise ReleaseError(problems)
    return ReleasePlan(root, files, contents, regions, answers, source_text)


def _sentinels(plan):
    """Lines of regions and answers that occur nowhere else in the project."""
    given = "\n".join(plan.source_text.values())
    bodies = [r.body for r in plan.regions] + [a.body for a in plan.answers]
    sentinels = set()
    for body in bodies:
        for line in body:
            text = line.strip()
            if len(text) >= _MIN_SENTINEL_CHARS and text not in given:
                sentinels.add(text)
    return sorted(sentinels)


def _searchable(rel, data):
    """Text of a released file as a reader sees it (a notebook's cells, not its JSON)."""
    if rel.endswith(".ipynb"):
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        parts = []
        for cell in nb.cells:
            parts.append(cell.source)
            for output in cell.get("outputs", []):
                parts.append(str(output))
        return "\n".join(parts)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # a leak in a binary file is still found


def verify_release(plan, release_dir, zip_path, name):
    """Problems with a written release (empty list when it is clean)."""
    release_dir = Path(release_dir)
    problems = []
    written = sorted(
        p.relative_to(release_dir).as_posix() for p in release_dir.rglob("*") if p.is_file()
    )
    if written != sorted(plan.files):
        problems.append(
            f"release files differ from the plan: extra {sorted(set(written) - set(plan.files))},"
            f" missing {sorted(set(plan.files) - set(written))}"
        )
    sentinels = _sentinels(plan)
    for rel in written:
        data = (release_dir / rel).read_bytes()
        text = _searchable(rel, data)
        for sentinel in sentinels:
            if sentinel in text:
                problems.append(f"{rel}: contains solution or answer text {sentinel!r}")
        if rel.endswith(".ipynb"):
            nb = nbformat.reads(data.decode("utf-8"), as_version=4)
            for index, cell in enumerate(nb.cells):
                if cell.cell_type == "code" and (cell.outputs or cell.execution_count):
                    problems.append(f"{rel} cell {index}: outputs not cleared")
    with zipfile.ZipFile(zip_path) as archive:
        members = sorted(archive.namelist())
        expected = sorted(f"{name}/{rel}" for rel in written)
        if members != expected:
            problems.append(f"{zip_path.name}: members differ from {release_dir.name}/")
        else:
            for rel in written:
                if archive.read(f"{name}/{rel}") != (release_dir / rel).read_bytes():
                    problems.append(f"{zip_path.name}: {rel} differs from the release directory")
    return problems


def _write_zip(zip_path, release_dir, name):
    # Fixed timestamps and sorted members: the same tree gives the same zip.
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in release_dir.rglob("*") if p.is_file()):
            rel = path.relative_to(release_dir).as_posix()
            info = zipfile.ZipInfo(f"{name}/{rel}", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | (path.stat().st_mode & 0o777)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())


def _check_out_dir(root, out):
    """Refuse output directories that would touch the source tree or foreign files."""
    release_home = root / DEFAULT_OUT
    if out == root or out in root.parents:
        raise ReleaseError([f"--out {out}: would contain the project itself; choose another"])
    if root in out.parents and not (out == release_home or release_home in out.parents):
        raise ReleaseError([
            f"--out {out}: inside the project but not under {release_home}; the release "
            f"never writes into the source tree"
        ])
    if out.exists():
        if not out.is_dir():
            raise ReleaseError([f"--out {out}: exists and is not a directory"])
        if not (out / OUT_MARKER).is_file() and any(out.iterdir()):
            raise ReleaseError([
                f"--out {out}: exists, is not empty and was not created by instructor_tools.release "
                f"(no {OUT_MARKER} file in it); choose another directory"
            ])


def build_release(root, out=None, name=DEFAULT_NAME):
    """Write out/name/ and out/name.zip; return (release_dir, zip_path, plan).

    Raises ReleaseError (and writes no release) when the tree or the result is not clean.
    """
    root = Path(root).resolve()
    if not (root / "cs231n").is_dir():
        # E.g. a non-editable install, where the package's parent is site-packages.
        raise ReleaseError([f"--root {root}: not a project folder (no cs231n/ package in it)"])
    out = (root / DEFAULT_OUT if out is None else Path(out)).resolve()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ReleaseError([f"--name {name!r}: expected letters, digits, '.', '_' or '-'"])
    _check_out_dir(root, out)
    plan = plan_release(root, skip_dirs=[out])

    out.mkdir(parents=True, exist_ok=True)
    (out / OUT_MARKER).write_text("created by python -m instructor_tools.release\n")
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=out))
    try:
        staged_dir = staging / name
        for rel in plan.files:
            target = staged_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(plan.contents[rel])
            shutil.copymode(root / rel, target)
        staged_zip = staging / f"{name}.zip"
        _write_zip(staged_zip, staged_dir, name)
        problems = verify_release(plan, staged_dir, staged_zip, name)
        if problems:
            raise ReleaseError(["the written release failed verification:"] + problems)
        release_dir, zip_path = out / name, out / f"{name}.zip"
        if release_dir.exists():
            shutil.rmtree(release_dir)
        staged_dir.rename(release_dir)
        os.replace(staged_zip, zip_path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return release_dir, zip_path, plan


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m instructor_tools.release",
        description="Write the student version of the project: solution regions replaced "
        "by NotImplementedError, answers by a prompt, notebook outputs cleared.",
    )
    default_root = Path(__file__).resolve().parent.parent
    parser.add_argument("--root", type=Path, default=default_root,
                        help="project to release (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output directory (default: ROOT/release)")
    parser.add_argument("--name", default=DEFAULT_NAME,
                        help="name of the release folder and zip (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        release_dir, zip_path, plan = build_release(args.root, args.out, args.name)
    except ReleaseError as exc:
        print("release: refused, nothing written:", file=sys.stderr)
        for i, problem in enumerate(exc.problems, start=1):
            print(f"  {i}. {problem}", file=sys.stderr)
        return 1
    files_with_regions = sorted({r.path for r in plan.regions})
    print(f"release: {len(plan.files)} files -> {release_dir}")
    print(f"         zip -> {zip_path}")
    print(f"         {len(plan.regions)} solution regions replaced in "
          f"{', '.join(files_with_regions) or 'no file'}")
    print(f"         {len(plan.answers)} answers replaced by the prompt")
    if not plan.regions:
        print("release: warning: no solution regions found; is this already a release?")
    return 0


if __name__ == "__main__":
    sys.exit(main())
