"""Build the student release from the last commit: exercises, not answers.

    python -m instructor_tools.release [--out DIR] [--name NAME] [--root DIR]

writes DIR/NAME/ (default ROOT/release/cs231n-student/) and DIR/NAME.zip.

What ships. ROOT must be the top of a git work tree. The release is made of the files
committed at HEAD (read from git, not from the working tree) whose paths match
SHIPPED_PATTERNS, and nothing matching NEVER_SHIPPED_DIRS, _NAMES or _SUFFIXES
(instructor_tools/, .ci/, requirements-ci.txt, archives, PDFs, pickles, data). Its
README.md is STUDENT_README, a README written for students; the project's own README
(instructor commands included) stays home. Refused, with the files named, when a file
that would ship (or STUDENT_README) has uncommitted changes, staged or not: the release
is always exactly a commit. Untracked and ignored files never ship; untracked files that
match SHIPPED_PATTERNS are listed, in case one was forgotten.

What happens to the shipped files:

- In every ``.py`` file and every notebook code cell, each solution region (a comment line
  ``### BEGIN SOLUTION (<notebook>: "<section>")``, the solution statements, a comment line
  ``### END SOLUTION``; the grammar is in student_tools.markers) keeps its two marker lines,
  unchanged; the statements between them become, at the BEGIN line's indentation,
  TODO_COMMENT and ``raise NotImplementedError("<function>: not implemented yet; see
  <notebook>, section "<section>"")``. The grader runs only what a student writes between
  the markers, spliced into the course's own files. <section> must be a markdown heading
  of <notebook>.
- In notebook markdown cells, the text between ``<!-- BEGIN ANSWER -->`` and
  ``<!-- END ANSWER -->`` (an answer to an inline question, or a derivation the student is
  asked to write) becomes ANSWER_PROMPT; the marker lines stay, so that
  ``student_tools.submission`` can find the student's answer.
- Notebook outputs and execution counts are cleared, and each cell's metadata too but for
  the tags on KEPT_CELL_TAGS (nbval's markers): metadata is invisible in JupyterLab, so
  nothing hidden there ships.

Leak check, before anything is written and again on the written release, over the text
of every shipped file (notebooks: every string of the JSON, i.e. cell sources, outputs,
metadata, attachments decoded; archives: every member, recursively). Marker lines are
not region text: they ship by design. Two parts:

Lines. Each text is cut into lines, each compared after ``_normalize`` (whitespace
collapsed, comment and prompt prefixes dropped, blank lines skipped; a string literal's
``\n`` escapes also read as line breaks). Refused:

- a run of RUN_LINES consecutive lines of one solution region appearing as consecutive
  lines anywhere (a region shorter than that: the whole region), unless the run is shorter
  than MIN_RUN_CHARS characters (``)``, ``else:``, ``pass`` prove nothing);
- the same for answer regions, and any single answer line of at least
  MIN_ANSWER_LINE_CHARS characters found inside any line.

No exemption for text that also occurs elsewhere in the project: a test file holding a
copy of a region leaks it.

Tokens (solution regions only): a copy that was renamed, reformatted or joined with ';'.
A region's code is read with tokenize; any text of the release with a regex giving the
same tokens (on Python, token for token what tokenize gives), twice: all of it, and with
its ``#`` comments blanked out (a copy that kept the region's comments). Every name
becomes one placeholder, ANY_NAME, except keywords, attribute names (``.sum``,
``np.einsum``: the API a copy must call) and keyword-argument names (``axis=``); numbers
are compared by value; operators stay; line breaks, indentation, ``;``, backslashes,
quotes and comment marks are no tokens, so statements compare as token sequences
whatever their layout, and a string literal's content reads as code. Refused:

- WINDOW_TOKENS (K = 32) consecutive tokens of a region's code anywhere. K is about three
  lines of code: long enough that structure alone never matches by chance (on this
  project 24 already matched an Adam update in tests/test_optim.py against batch norm's
  running averages, two exponential moving averages in a row), short enough that every
  region of three lines or more is covered. A region with fewer tokens counts whole if it
  is decisive;
- a decisive statement alone: a statement of a region, or the text of one of its comments
  (split at ';'; the region's formulas often live there), of at least STATEMENT_TOKENS
  (M = 12) tokens with at least STATEMENT_OPERATORS (3) arithmetic or comparison
  operators, and, in a comment, operators for at least COMMENT_OPERATOR_SHARE of its
  tokens. Such a line is the solution in one line: batch norm's closed-form ``dx = (gamma
  * inv_std / N) * (N * dout - dbeta - x_hat * dgamma)``, dropout's ``mask = (... < p) /
  p``. Without the operator condition calls (``np.subtract(dout, dx, out=dx)``), plumbing
  (``dout, dW, db, dgamma, dbeta = affine_norm_relu_backward(dout, cache)``) and prose
  comments match ordinary lines of the release.

Runs and statements that also occur in the course's given code are skipped everywhere:
they prove nothing (``db = dout.sum(axis=0)`` of a given backward pass, a running-average
formula a given docstring states). The given code is the text (code, comments,
docstrings) of the files and notebook cells that hold regions, less the regions' bodies:
the code the student's is spliced into. So a copy of given code passes, and a renamed
copy of a region is refused wherever it is: a test, a notebook cell, an output, metadata,
an archive member.

Out of reach: code in images or screenshots; deliberate obfuscation, such as a formula
rewritten algebraically (``x_hat * dgamma`` as ``dgamma * x_hat``, a factor moved into a
bracket), statements reordered or split into other steps, or code cut into pieces across
strings; a renamed copy of region code inside the given code of a file that holds
regions (exempt, as that code is; verbatim copies there are still refused line by line);
and short statements (under M tokens, or under three operators: ``dx = dout * mask``)
that are not verbatim.

Nothing is written unless all of this holds; the release is staged in a temporary
directory beside the output and renamed into place only when it verifies.

What the release guarantees when run (checked by instructor_tools/tests/test_release.py
on this project's own last commit): its package imports; its unit tests fail with
NotImplementedError naming the function and notebook section, and nothing else; executed
top to bottom, the first cell of each notebook that fails raises NotImplementedError.
"""
import argparse
import ast
import base64
import binascii
import bz2
import difflib
import gzip
import io
import json
import keyword
import lzma
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import tokenize
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from student_tools import contract
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

# What a release may hold: committed files matching one of these (``**/`` is any number of
# directories, ``*`` anything but '/'). Everything else stays home.
SHIPPED_PATTERNS = (
    "cs231n/**/*.py",              # the student's package
    "student_tools/**/*.py",       # data installer, submission packer, markers
    "tests/**/*.py",               # tests of the student's work and of the given code
    "tests/nbval_sanitize.cfg",
    "BatchNormalization.ipynb",
    "Dropout.ipynb",
    "cs231n.jupyterlab-workspace",  # make lab opens both notebooks from it
    "datasets/get_datasets.sh",
    "Makefile",
    "pyproject.toml",
    "requirements.txt",
    "collectSubmission.sh",
    ".gitignore",
)
# Never shipped, whatever SHIPPED_PATTERNS says (a second lock, should the list grow).
NEVER_SHIPPED_DIRS = ("instructor_tools/", ".ci/", ".git/", "release/", "datasets/cifar-10")
NEVER_SHIPPED_NAMES = ("requirements-ci.txt", "README.md")
NEVER_SHIPPED_SUFFIXES = (
    ".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".pdf", ".pkl", ".pickle",
    ".npy", ".npz", ".h5", ".pt", ".pth", ".pyc",
)
# Committed, written for students; shipped as the release's README.md.
STUDENT_README = "instructor_tools/release_README.md"
# A Makefile target that depends on this one is for instructors (it needs
# instructor_tools/): the student README must not send students to it.
INSTRUCTORS_ONLY_TARGET = "instructors-only"

# Notebook cell metadata in a release: nothing but these tags, the markers nbval (`make
# test`) and nbclient obey. A cell's metadata is invisible in JupyterLab, so anything else
# in it (timings, extension state, text hidden there) is dropped.
KEPT_CELL_TAGS = ("nbval-ignore-output", "nbval-check-output", "nbval-raises-exception",
                  "nbval-skip", "raises-exception", "skip-execution")

# Leak check: see the module docstring.
RUN_LINES = 3
MIN_RUN_CHARS = 12
MIN_ANSWER_LINE_CHARS = 25
WINDOW_TOKENS = 32  # K: a run of this many tokens of a region's code is a copy of it
STATEMENT_TOKENS = 12  # M: a decisive statement has at least this many tokens...
STATEMENT_OPERATORS = 3  # ...this many arithmetic or comparison operators among them...
COMMENT_OPERATOR_SHARE = 0.3  # ...and, in a comment, operators for this share of them
# Archives inside the release are opened this deep, and at most this much is unpacked.
_MAX_ARCHIVE_DEPTH = 4
_MAX_UNPACKED_BYTES = 512 * 2**20


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
    # The whole text of the file or cell before release: outside the regions it is the
    # course's given code, which the token check of find_leaks exempts.
    source: str = field(default="", repr=False)

    def where(self):
        cell = f" cell {self.cell}" if self.cell is not None else ""
        return f"{self.path}{cell} line {self.begin}"


@dataclass
class AnswerRegion:
    path: str
    cell: int
    body: list  # the lines strictly between the markers
    begin: int = 0  # line of the BEGIN marker in the cell

    def where(self):
        return f"{self.path} cell {self.cell} line {self.begin}"


@dataclass
class ReleasePlan:
    """Everything the release will contain, computed before anything is written."""

    root: Path
    commit: str  # the commit released
    files: list  # relative paths (str, POSIX) to ship
    contents: dict  # relative path -> bytes of the released file
    modes: dict  # relative path -> permission bits (0o644 or 0o755)
    regions: list
    answers: list
    notes: list = field(default_factory=list)  # things not shipped that an instructor may miss


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
    # The END marker may follow the function's last statement (a region ending in its
    # return): ast's end_lineno stops at that statement, so only BEGIN must lie inside.
    enclosing = [
        (name, node)
        for name, node in _functions_by_span(tree)
        if node.lineno < region.begin <= node.end_lineno
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


# The first line the student finds between a region's markers.
TODO_COMMENT = ("# TODO: your code here, in place of this raise. Only code between the markers "
                "is graded.")


def _replacement_lines(region):
    """What the release puts between a region's two marker lines, at the BEGIN line's
    indentation."""
    message = (
        f'{region.function}: not implemented yet; see {region.notebook}, '
        f'section "{region.section}"'
    )
    return [
        f"{region.indent}{TODO_COMMENT}",
        f"{region.indent}raise NotImplementedError({message!r})",
    ]


def _apply_solution_regions(lines, regions):
    """The lines with every region's body replaced, its two marker lines kept unchanged;
    also fills region.body."""
    out, previous_end = [], 0
    for region in sorted(regions, key=lambda r: r.begin):
        region.body = lines[region.begin : region.end - 1]
        out.extend(lines[previous_end : region.begin])  # up to the BEGIN line, included
        out.extend(_replacement_lines(region))
        previous_end = region.end - 1  # from the END line, included
    out.extend(lines[previous_end:])
    return out


def _ends_with_newline(text):
    return text.endswith("\n")


def _process_python(path, text, problems):
    """(released text, regions) of one .py file."""
    marker_lines = _comment_marker_lines_py(text, path, problems)
    if not marker_lines:
        return text, []
    n_problems = len(problems)
    regions = _pair_solution_markers(marker_lines, path, None, problems)
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError as exc:
        problems.append(f"{path}: does not parse ({exc.msg}, line {exc.lineno})")
        return text, regions
    for region in regions:
        region.source = text
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
    return released_text, regions


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
            regions.append(AnswerRegion(path, cell, body, open_at))
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


def _released_cell_metadata(metadata):
    """A cell's metadata in the release: only its tags on KEPT_CELL_TAGS."""
    tags = metadata.get("tags")
    kept = [t for t in tags if t in KEPT_CELL_TAGS] if isinstance(tags, list) else []
    return nbformat.from_dict({"tags": kept} if kept else {})


def _process_notebook(path, raw, problems):
    """(released notebook bytes, solution regions, answer regions)."""
    try:
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types for bad files
        problems.append(f"{path}: not a readable notebook ({type(exc).__name__}: {exc})")
        return raw, [], []
    regions, answers = [], []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            source = cell.source
            marker_lines = _comment_marker_lines_cell(source)
            cell_regions = _pair_solution_markers(marker_lines, path, index, problems)
            lines = source.splitlines()
            for region in cell_regions:
                region.source = source
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
            regions.extend(cell_regions)
            cell.source = released
            cell.outputs = []
            cell.execution_count = None
        elif cell.cell_type == "markdown":
            released, cell_answers = _answer_regions_in_markdown(
                cell.source, path, index, problems
            )
            answers.extend(cell_answers)
            cell.source = released
        cell.metadata = _released_cell_metadata(cell.metadata)
    nb.metadata.pop("widgets", None)
    text = nbformat.writes(nb) + "\n"
    return text.encode("utf-8"), regions, answers


# ---------------------------------------------------------------------------
# What ships: committed files on the allow-list
# ---------------------------------------------------------------------------


def _pattern_re(pattern):
    """A compiled regex for one SHIPPED_PATTERNS entry (``**/``: any directories)."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


_SHIPPED_RES = tuple(_pattern_re(p) for p in SHIPPED_PATTERNS)


def is_shipped(rel):
    """Whether the committed file at POSIX path ``rel`` belongs in a release."""
    parts = rel.split("/")
    if rel.startswith(NEVER_SHIPPED_DIRS) or parts[-1] in NEVER_SHIPPED_NAMES:
        return False
    if rel.lower().endswith(NEVER_SHIPPED_SUFFIXES):
        return False
    # Caches and editor/Jupyter folders (.ipynb_checkpoints/...), even if committed.
    if any(p == "__pycache__" or p.endswith(".egg-info") or p.startswith(".")
           for p in parts[:-1]):
        return False
    return any(r.match(rel) for r in _SHIPPED_RES)


# Set by git hooks and some tools: they would point git at another repository or index
# than the one in --root.
_GIT_REDIRECTS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
                  "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE")


def _run_git(root, *args, stdin=None, text=False):
    """The finished ``git -C root ARGS`` (a CompletedProcess); ReleaseError without git."""
    env = {k: v for k, v in os.environ.items() if k not in _GIT_REDIRECTS}
    try:
        return subprocess.run(["git", "-C", str(root), *args], input=stdin, text=text,
                              capture_output=True, check=False, env=env)
    except OSError as exc:
        raise ReleaseError([f"cannot run git ({exc}); the release is built from a git "
                            f"checkout, so git must be installed"]) from None


def _git(root, *args, stdin=None):
    """stdout (bytes) of ``git -C root ARGS``; ReleaseError naming the command if it fails."""
    done = _run_git(root, *args, stdin=stdin)
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()
        raise ReleaseError([f"git {' '.join(args)} failed in {root}: {message}"])
    return done.stdout


def _paths(raw):
    """NUL-separated paths from git's -z output."""
    return [p.decode("utf-8", "surrogateescape") for p in raw.split(b"\0") if p]


def _check_git_top(root):
    """Refuse unless root is the top of a git work tree with at least one commit."""
    done = _run_git(root, "rev-parse", "--show-toplevel", text=True)
    if done.returncode != 0:
        said = done.stderr.strip()
        said = "" if "not a git repository" in said else f" (git: {said})"
        raise ReleaseError([
            f"--root {root}: not a git checkout{said}. The release is built from committed "
            f"files only, so that nothing stray (a solved submission zip, a PDF, data) can "
            f"ship; run it in a clone of the project"
        ])
    top = Path(done.stdout.strip()).resolve()
    if top != root:
        raise ReleaseError([
            f"--root {root}: not the top of its git work tree ({top}); the project must be "
            f"a repository of its own"
        ])
    head = _run_git(root, "rev-parse", "--verify", "-q", "HEAD^{commit}", text=True)
    if head.returncode != 0:
        raise ReleaseError([f"--root {root}: no commit yet; the release is built from HEAD"])
    return head.stdout.strip()


def _committed_files(root, commit):
    """{path: (mode, type, object id)} of every entry in the commit's tree."""
    entries = {}
    for entry in _git(root, "ls-tree", "-r", "-z", "--full-tree", commit).split(b"\0"):
        if entry:
            meta, path = entry.split(b"\t", 1)
            mode, kind, sha = meta.decode("ascii").split()
            entries[path.decode("utf-8", "surrogateescape")] = (mode, kind, sha)
    return entries


def _read_blobs(root, shas):
    """{object id: bytes}, read with one ``git cat-file --batch``."""
    shas = sorted(set(shas))
    if not shas:
        return {}
    out = _git(root, "cat-file", "--batch", stdin="".join(s + "\n" for s in shas).encode())
    blobs, pos = {}, 0
    for sha in shas:
        header_end = out.index(b"\n", pos)
        _, _, size = out[pos:header_end].decode("ascii").split()
        start = header_end + 1
        blobs[sha] = out[start : start + int(size)]
        pos = start + int(size) + 1  # cat-file ends each object with a newline
    return blobs


_STATUS_WORDS = {"M": "modified", "A": "added", "D": "deleted", "R": "renamed",
                 "C": "copied", "T": "type changed", "U": "unmerged"}


def _describe_status(xy):
    x, y = xy[0], xy[1]
    said = []
    if x not in " ?":
        said.append(f"{_STATUS_WORDS.get(x, x)}, staged")
    if y not in " ?":
        said.append(f"{_STATUS_WORDS.get(y, y)}, not staged")
    return "; ".join(said)


def _work_tree_status(root):
    """({path: XY status} of tracked paths changed against HEAD, [untracked paths])."""
    # --no-optional-locks: a read-only look that never takes the index lock of a checkout
    # others may be committing in.
    out = _git(root, "--no-optional-locks", "status", "--porcelain=v1", "-z",
               "--untracked-files=all")
    entries = out.split(b"\0")
    changed, untracked, i = {}, [], 0
    while i < len(entries):
        entry, i = entries[i], i + 1
        if not entry:
            continue
        xy, path = entry[:2].decode("ascii"), entry[3:].decode("utf-8", "surrogateescape")
        if xy == "??":
            untracked.append(path)
            continue
        if xy == "!!":
            continue
        changed[path] = xy
        if "R" in xy or "C" in xy:  # -z: the source path follows as its own entry
            changed[entries[i].decode("utf-8", "surrogateescape")] = xy
            i += 1
    return changed, untracked


# ---------------------------------------------------------------------------
# Leak check
# ---------------------------------------------------------------------------

# Comment marks and prompts in front of a copied line do not hide it.
_LEADING_MARKS_RE = re.compile(r"^(?:(?:#+|>>>|\.\.\.|>+)\s*)+")


def _normalize(line):
    """A line as the leak check compares it: whitespace collapsed, leading #, >>>, ...
    and > dropped."""
    return _LEADING_MARKS_RE.sub("", " ".join(line.split()))


def _lines(text):
    """The normalized non-blank lines of text."""
    return [n for n in map(_normalize, text.splitlines()) if n]


@dataclass
class _Needles:
    """What counts as leaked: runs of lines, and long answer lines (substrings)."""

    runs: dict = field(default_factory=dict)  # tuple of normalized lines -> description
    lines: dict = field(default_factory=dict)  # normalized answer line -> description

    @property
    def run_lengths(self):
        return sorted({len(run) for run in self.runs})


def _needles(regions, answers):
    needles = _Needles()
    bodies = [(f"the solution region at {r.where()}", r.body) for r in regions]
    bodies += [(f"the answer at {a.where()}", a.body) for a in answers]
    for described, body in bodies:
        lines = _lines("\n".join(body))
        run = min(RUN_LINES, len(lines))
        if run == 0:
            continue
        for i in range(len(lines) - run + 1):
            window = tuple(lines[i : i + run])
            if sum(map(len, window)) >= MIN_RUN_CHARS:
                needles.runs.setdefault(window, described)
    for answer in answers:
        for line in _lines("\n".join(answer.body)):
            if len(line) >= MIN_ANSWER_LINE_CHARS:
                needles.lines.setdefault(line, f"the answer at {answer.where()}")
    return needles


class _Budget:
    """Bytes that may still be unpacked from archives (a zip bomb stops the check)."""

    def __init__(self, limit=_MAX_UNPACKED_BYTES):
        self.left = limit

    def take(self, size, location):
        self.left -= size
        if self.left < 0:
            raise ReleaseError([f"{location}: more than {_MAX_UNPACKED_BYTES // 2**20} MiB "
                                f"to unpack; cannot check it for leaks"])


def _json_strings(value, path=""):
    """(JSON path, string) for every string in a parsed JSON document.

    A list of strings is one string: nbformat stores multi-line text as its lines, each
    but the last ending with a newline; other lists of strings are taken one per line.
    """
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        if value and all(isinstance(v, str) for v in value):
            if all(v.endswith("\n") for v in value[:-1]):
                yield path, "".join(value)
            else:
                yield path, "\n".join(value)
        else:
            for i, item in enumerate(value):
                yield from _json_strings(item, f"{path}/{i}")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _json_strings(item, f"{path}/{key}")


_BASE64_RE = re.compile(rb"[A-Za-z0-9+/=\s]{24,}\Z")


def _decompressed(data, opener, location, budget):
    with opener(io.BytesIO(data)) as stream:
        out = stream.read(max(budget.left, 0) + 1)
    budget.take(len(out), location)
    return out


def _texts(location, data, budget, depth=0):
    """(location, text) of everything a reader can get out of one file's bytes.

    Archives (zip, tar, gzip/bz2/xz streams) are opened whatever their name; notebooks
    give every string of their JSON, and base64 payloads (images, attachments) decoded.
    """
    if depth > _MAX_ARCHIVE_DEPTH:
        raise ReleaseError([f"{location}: archives nested too deep to check for leaks"])
    try:
        if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for info in archive.infolist():
                    if not info.is_dir():
                        budget.take(info.file_size, location)
                        yield from _texts(f"{location}!{info.filename}", archive.read(info),
                                          budget, depth + 1)
            return
        if len(data) >= 512 and data[257:262] == b"ustar":
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
                for member in archive.getmembers():
                    if member.isfile():
                        budget.take(member.size, location)
                        yield from _texts(f"{location}!{member.name}",
                                          archive.extractfile(member).read(), budget, depth + 1)
            return
        for magic, opener in ((b"\x1f\x8b", lambda f: gzip.GzipFile(fileobj=f)),
                              (b"BZh", bz2.BZ2File), (b"\xfd7zXZ", lzma.LZMAFile)):
            if data.startswith(magic):
                inner = _decompressed(data, opener, location, budget)
                yield from _texts(location, inner, budget, depth + 1)
                return
    except ReleaseError:
        raise
    except Exception as exc:  # a damaged archive: refuse rather than ship it unchecked
        raise ReleaseError([f"{location}: looks like an archive but cannot be read "
                            f"({type(exc).__name__}: {exc}); cannot check it for leaks"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # a leak in a binary file is still found
    if location.endswith(".ipynb"):
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if document is not None:
            for path, string in _json_strings(document):
                yield f"{location} {path}", string
                raw = string.encode("utf-8", "surrogatepass")
                if _BASE64_RE.match(raw):
                    try:
                        decoded = base64.b64decode(re.sub(rb"\s", b"", raw), validate=True)
                    except (binascii.Error, ValueError):
                        continue
                    yield from _texts(f"{location} {path} (base64)", decoded, budget, depth + 1)
            return
    yield location, text


def _leaks_in_text(text, needles):
    """{description: first line of the first run found} for the needles in text."""
    found = {}
    variants = [text]
    if "\\n" in text:  # a string literal holding several lines as \n escapes
        unescaped = text.replace("\\n", "\n")
        variants += [unescaped, re.sub(r"[\"']", "\n", unescaped)]
    for variant in variants:
        lines = _lines(variant)
        for run in needles.run_lengths:
            for i in range(len(lines) - run + 1):
                described = needles.runs.get(tuple(lines[i : i + run]))
                if described is not None:
                    found.setdefault(described, (run, lines[i]))
        joined = "\n".join(lines)
        for line, described in needles.lines.items():
            if line in joined:
                found.setdefault(described, (1, line))
    return found


# ---------------------------------------------------------------------------
# Leak check, second part: region code as tokens, names and layout aside
# ---------------------------------------------------------------------------

# Every name that is not a keyword, an attribute (after '.') or the name of a keyword
# argument (``axis=`` inside brackets) reads as this one placeholder: renaming changes
# nothing, while the API a copy must call (np.einsum, .sum, axis=) still shows.
ANY_NAME = "$"
_OPERATORS = frozenset(
    "**= //= >>= <<= ... -> := ** // << >> <= >= == != += -= *= /= %= @= &= |= ^= "
    "+ - * / % @ & | ^ ~ < > ( ) [ ] { } , : . =".split()
)
# What makes a statement a computation rather than plumbing (a call, a dict, a return).
_ARITHMETIC = frozenset(
    "+ - * / // % ** @ & | ^ ~ << >> < > <= >= == != += -= *= /= //= %= **= @= &= |= ^= "
    "<<= >>=".split()
)
# Python's tokens, found in any text: numbers, names, operators. Not tokens: white space,
# ';', '#', quotes, backslashes (line continuations; the escapes \n \t \r \" \' \\ are
# skipped whole), the prefixes of string literals (f"...", rb'...'), prompts (>>>, ...)
# at the start of a line, and any other character.
_TOKEN_RE = re.compile(r"""
    (?P<skip>
        ^[ \t]*(?:\#+[ \t]*)*(?:>>>|\.\.\.)(?=[ \t\r]|$)
      | \\[ntr"'\\]
      | (?<![\w'"])[rRbBuUfF]{1,2}(?=['"])
    )
  | (?P<number>
        0[xX][0-9a-fA-F_]+ | 0[oO][0-7_]+ | 0[bB][01_]+
      | (?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?[jJ]?
    )
  | (?P<name>[^\W\d]\w*)
  | (?P<op>
        \*\*= | //= | >>= | <<= | \.\.\. | -> | := | \*\* | // | << | >> | <= | >= | == | !=
      | [-+*/%@&|^]= | [-+*/%@&|^~<>()\[\]{},:.=]
    )
""", re.VERBOSE | re.MULTILINE)
# A comment: '#' to the end of its line outside string literals. Strings are matched only
# to be stepped over; a quote not closed on its line (prose: "don't") opens no string.
_COMMENT_RE = re.compile(r"""
    (?s)('''|\"\"\").*?\1
  | "(?:[^"\\\n]|\\.)*"
  | '(?:[^'\\\n]|\\.)*'
  | (?P<comment>\#[^\n]*)
""", re.VERBOSE)
# A string literal, or the parts of an f-string (Python 3.12+ splits them).
_STRING_TOKENS = frozenset(
    getattr(tokenize, name) for name in ("STRING", "FSTRING_START", "FSTRING_MIDDLE",
                                         "FSTRING_END") if hasattr(tokenize, name)
)


def _regex_raw(text, base=0):
    """Raw tokens (kind, text, start, end) of any text, by _TOKEN_RE."""
    return [(m.lastgroup, m[0], base + m.start(), base + m.end())
            for m in _TOKEN_RE.finditer(text) if m.lastgroup != "skip"]


def _blank_comments(text):
    """text with its comments blanked out (same length, so offsets stay valid)."""
    return _COMMENT_RE.sub(lambda m: " " * len(m[0]) if m["comment"] else m[0], text)


def _python_raw(text):
    """(raw tokens, statement boundaries, comments) of Python source by tokenize, or None
    when it does not tokenize.

    A string literal is read with _TOKEN_RE, as in any other text (so its content counts,
    and both readings agree); a boundary is the index of the first token after a NEWLINE
    or a ';'; comments are their text.
    """
    offsets = [0] + [m.end() for m in re.finditer("\n", text)]
    raw, bounds, comments = [], [], []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            kind, string, (row, column) = tok.type, tok.string, tok.start
            start = offsets[row - 1] + column if row <= len(offsets) else len(text)
            if kind == tokenize.NAME:
                raw.append(("name", string, start, start + len(string)))
            elif kind == tokenize.NUMBER:
                raw.append(("number", string, start, start + len(string)))
            elif kind == tokenize.OP:
                if string == ";":
                    bounds.append(len(raw))
                elif string in _OPERATORS:
                    raw.append(("op", string, start, start + len(string)))
            elif kind in _STRING_TOKENS:
                raw.extend(_regex_raw(string, start))
            elif kind == tokenize.NEWLINE:
                bounds.append(len(raw))
            elif kind == tokenize.COMMENT:
                comments.append(string)
    except (tokenize.TokenError, SyntaxError):
        return None
    return raw, bounds, comments


def _number(text):
    """A number by its value: 1, 1.0 and 1. are one token, as are 1e-5 and 0.00001."""
    plain = text.replace("_", "").lower()
    try:
        value = int(plain, 0) if plain[:2] in ("0x", "0o", "0b") else float(plain)
        return repr(float(value))
    except (ValueError, OverflowError):
        return plain


def _normal_tokens(raw):
    """The tokens compared: ANY_NAME for names but keywords, attributes and keyword
    arguments; numbers by value; operators as they are."""
    tokens, depth = [], 0
    for i, (kind, text, _, _) in enumerate(raw):
        if kind == "op":
            if text in ("(", "[", "{"):
                depth += 1
            elif text in (")", "]", "}"):
                depth = max(depth - 1, 0)
            tokens.append(text)
        elif kind == "number":
            tokens.append(_number(text))
        elif keyword.iskeyword(text) or (i and raw[i - 1][:2] == ("op", ".")):
            tokens.append(text)
        elif (depth and i and i + 1 < len(raw) and raw[i + 1][:2] == ("op", "=")
              and raw[i - 1][:2] in (("op", "("), ("op", ","))):
            tokens.append(text)
        else:
            tokens.append(ANY_NAME)
    return tuple(tokens)


def _token_streams(text):
    """(normalized tokens, raw tokens) of any text, read two ways: all of it (comments and
    string literals read as code) and, when it has a '#', its code alone (comments blanked).

    On Python source the code alone is token for token what tokenize gives (a test checks
    it on the project's files); a regex, because in a release Python also hides in strings,
    markdown, outputs and metadata, which tokenize cannot read.
    """
    full = _regex_raw(text)
    streams = [(_normal_tokens(full), full)]
    if "#" in text:
        code = _regex_raw(_blank_comments(text))
        if len(code) != len(full):
            streams.append((_normal_tokens(code), code))
    return streams


@dataclass
class _TokenNeedle:
    tokens: tuple
    described: str
    statement: str = ""  # a decisive statement's own text; "" for a run of tokens


def _decisive(tokens, comment):
    """Whether a statement (or the text of a comment) gives a solution away alone: at least
    STATEMENT_TOKENS tokens, STATEMENT_OPERATORS arithmetic or comparison operators among
    them (a computation, not a call, a dict or a return), and, in a comment, operators for
    at least COMMENT_OPERATOR_SHARE of its tokens (a formula, not prose)."""
    if len(tokens) < STATEMENT_TOKENS:
        return False
    if sum(t in _ARITHMETIC for t in tokens) < STATEMENT_OPERATORS:
        return False
    operators = sum(t in _OPERATORS and t not in (".", ",") for t in tokens)
    return not comment or operators >= COMMENT_OPERATOR_SHARE * len(tokens)


def _region_tokens(region):
    """(normalized tokens of the code, [(tokens, text, is_comment)] of its statements and
    comments (a comment split at ';')) of a region's body."""
    text = textwrap.dedent("\n".join(region.body))
    python = _python_raw(text)
    if python is not None:
        raw, bounds, comments = python
    else:  # a notebook cell's region that tokenize cannot read: a statement a line
        raw, bounds, comments, base = [], [], [], 0
        for line in text.split("\n"):
            bounds.append(len(raw))
            raw.extend(_regex_raw(_blank_comments(line), base))
            comments.extend(m[0] for m in _COMMENT_RE.finditer(line) if m["comment"])
            base += len(line) + 1
    tokens = _normal_tokens(raw)
    statements = []
    edges = sorted({0, len(raw), *bounds})
    for start, end in zip(edges, edges[1:]):
        said = " ".join(text[raw[start][2] : raw[end - 1][3]].split())
        statements.append((tokens[start:end], said, False))
    for comment in comments:
        for piece in comment.lstrip("#").split(";"):
            statements.append((_normal_tokens(_regex_raw(piece)), " ".join(piece.split()),
                               True))
    return tokens, statements


def _given_texts(regions):
    """The course's given code around the regions: the text of each file or cell that holds
    a region, cut where its regions' bodies are (marker lines kept)."""
    sources = {}
    for region in regions:
        sources.setdefault((region.path, region.cell), (region.source, []))[1].append(region)
    for source, held in sources.values():
        inside = set()
        for region in held:
            inside.update(range(region.begin + 1, region.end))
        segment = []
        for lineno, line in enumerate(source.split("\n"), start=1):
            if lineno not in inside:
                segment.append(line)
            elif segment:
                yield "\n".join(segment)
                segment = []
        if segment:
            yield "\n".join(segment)


def _token_index(needles):
    """{first STATEMENT_TOKENS tokens: [needles]}: every needle is at least that long."""
    index = {}
    for needle in needles:
        index.setdefault(needle.tokens[:STATEMENT_TOKENS], []).append(needle)
    return index


def _token_matches(tokens, index):
    """(needle, position) for every needle of index in a stream of tokens."""
    size = STATEMENT_TOKENS
    for i in range(len(tokens) - size + 1):
        for needle in index.get(tokens[i : i + size], ()):
            if tokens[i : i + len(needle.tokens)] == needle.tokens:
                yield needle, i


def _token_needles(regions):
    """The token index of the solution regions: every run of WINDOW_TOKENS tokens of a
    region's code (of a shorter region, all of its code if that is decisive), every
    decisive statement and comment; less what occurs in the given code."""
    needles = {}
    for region in regions:
        described = f"the solution region at {region.where()}"
        tokens, statements = _region_tokens(region)
        if len(tokens) >= WINDOW_TOKENS:
            runs = [tokens[i : i + WINDOW_TOKENS]
                    for i in range(len(tokens) - WINDOW_TOKENS + 1)]
        else:
            runs = [tokens] if _decisive(tokens, comment=False) else []
        for run in runs:
            needles.setdefault(run, _TokenNeedle(run, described))
        for statement, said, comment in statements:
            if _decisive(statement, comment) and statement not in needles:
                needles[statement] = _TokenNeedle(statement, described, said)
    index = _token_index(needles.values())
    given = set()
    for text in _given_texts(regions):
        for tokens, _ in _token_streams(text):
            given.update(needle.tokens for needle, _ in _token_matches(tokens, index))
    return _token_index(n for n in needles.values() if n.tokens not in given)


def _token_leaks_in_text(text, index):
    """{description: what was found} for the token needles (an index) in text."""
    found = {}
    if not index:
        return found
    for tokens, raw in _token_streams(text):
        for needle, i in _token_matches(tokens, index):
            if needle.described in found:
                continue
            copy = " ".join(text[raw[i][2] : raw[i + len(needle.tokens) - 1][3]].split())
            if needle.statement:
                found[needle.described] = (
                    f"the statement {needle.statement[:80]!r} of {needle.described} (names "
                    f"and layout aside), as {copy[:80]!r}")
            else:
                found[needle.described] = (
                    f"{len(needle.tokens)} tokens in a row of {needle.described} (names and "
                    f"layout aside), from {copy[:80]!r}")
    return found


def find_leaks(files, regions, answers):
    """Problems (strings) for solution or answer text in ``files`` ({path: bytes}).

    See the module docstring for what counts as a leak.
    """
    needles, token_needles = _needles(regions, answers), _token_needles(regions)
    budget, problems = _Budget(), []
    for rel in sorted(files):
        reported = set()
        for location, text in _texts(rel, files[rel], budget):
            for described, (run, first) in _leaks_in_text(text, needles).items():
                if (location, described) in reported:
                    continue
                reported.add((location, described))
                what = (f"{run} consecutive lines" if run > 1 else "a line") + f" of {described}"
                problems.append(f"{location}: holds {what}, from {first[:80]!r}")
            # Found as lines already: not again as tokens.
            for described, what in _token_leaks_in_text(text, token_needles).items():
                if (location, described) not in reported:
                    reported.add((location, described))
                    problems.append(f"{location}: holds {what}")
    return problems


# ---------------------------------------------------------------------------
# The student README must not send students to what the release lacks
# ---------------------------------------------------------------------------


def _makefile_targets(text):
    """{target: [prerequisites]} of a Makefile's rule lines."""
    targets = {}
    for match in re.finditer(r"^([A-Za-z0-9_.%/$()-][^:=#\n]*?)\s*:(?![=:])([^\n]*)$", text,
                             re.MULTILINE):
        prerequisites = match[2].split("#")[0].split(";")[0].split()
        for target in match[1].split():
            targets.setdefault(target, []).extend(prerequisites)
    return targets


def readme_code(readme):
    """The code of a markdown text: its fenced blocks and inline `code` spans (prose such as
    "without make" names no command)."""
    fenced = re.findall(r"^\s*(?:```|~~~)[^\n]*\n(.*?)^\s*(?:```|~~~)", readme,
                        re.MULTILINE | re.DOTALL)
    unfenced = re.sub(r"^\s*(?:```|~~~).*?^\s*(?:```|~~~)", "", readme,
                      flags=re.MULTILINE | re.DOTALL)
    return "\n".join(fenced + re.findall(r"`([^`\n]+)`", unfenced))


MAKE_COMMAND_RE = re.compile(r"\bmake[ \t]+([A-Za-z_][\w-]*)")


def _check_student_readme(contents):
    """Problems with the release's README.md: commands or files the release lacks."""
    code = readme_code(contents["README.md"].decode("utf-8", "replace"))
    problems = []
    targets = _makefile_targets(contents.get("Makefile", b"").decode("utf-8", "replace"))
    for target in sorted(set(MAKE_COMMAND_RE.findall(code))):
        if target not in targets:
            problems.append(f"README.md (from {STUDENT_README}): names `make {target}`, which "
                            f"the release's Makefile lacks")
        elif INSTRUCTORS_ONLY_TARGET in targets[target]:
            problems.append(f"README.md (from {STUDENT_README}): names `make {target}`, which "
                            f"is for instructors only")
    tops = {rel.split("/")[0] for rel in contents if "/" in rel} | {"instructor_tools"}
    for module in sorted(set(re.findall(r"\bpython3?[ \t]+-m[ \t]+([\w.]+)", code))):
        if module.split(".")[0] not in tops:
            continue  # pip, pytest, venv...
        base = module.replace(".", "/")
        if f"{base}.py" not in contents and f"{base}/__main__.py" not in contents:
            problems.append(f"README.md (from {STUDENT_README}): names `python -m {module}`, "
                            f"which is not in the release")
    for name in sorted(set(re.findall(r"[\w./-]*\w\.(?:py|ipynb|sh|cfg|toml|txt)\b", code))):
        name = name.lstrip("./")
        if not any(rel == name or rel.endswith("/" + name) for rel in contents):
            problems.append(f"README.md (from {STUDENT_README}): names {name}, which is not in "
                            f"the release")
    return problems


# ---------------------------------------------------------------------------
# Planning, writing, verifying
# ---------------------------------------------------------------------------


def _fingerprint(contents):
    """student_tools.contract's fingerprint of the released package and notebooks."""
    texts = {rel: data.decode("utf-8") for rel, data in contents.items()
             if rel.startswith(contract.PACKAGE + "/") and rel.endswith(".py")}
    notebooks = {rel: nbformat.reads(data.decode("utf-8"), as_version=4)
                 for rel, data in contents.items() if rel in contract.NOTEBOOKS}
    return json.dumps(contract.fingerprint_texts(texts, notebooks), indent=0, sort_keys=True)


def plan_release(root):
    """Read HEAD and transform it in memory. Raises ReleaseError listing every problem."""
    root = Path(root).resolve()
    commit = _check_git_top(root)
    tree = _committed_files(root, commit)
    changed, untracked = _work_tree_status(root)
    dirty = sorted(p for p in changed if is_shipped(p) or p == STUDENT_README)
    if dirty:
        raise ReleaseError([
            f"{rel}: uncommitted changes ({_describe_status(changed[rel])}); the release is "
            f"built from the last commit, so commit (or undo) them first"
            for rel in dirty
        ])
    notes = []
    forgotten = sorted(p for p in untracked if is_shipped(p))
    if forgotten:
        notes.append(f"untracked, so not shipped: {', '.join(forgotten)}")
    ignored = set(_paths(_git(root, "ls-files", "-z", "-c", "-i", "--exclude-standard")))

    problems, files = [], []
    for rel, (mode, kind, _) in sorted(tree.items()):
        if not is_shipped(rel):
            continue
        if rel in ignored:
            notes.append(f"committed but matched by .gitignore, so not shipped: {rel}")
        elif kind != "blob" or mode not in ("100644", "100755"):
            what = "a symbolic link" if mode == "120000" else f"not a regular file ({mode})"
            problems.append(f"{rel}: {what} in git; the release ships regular files only")
        else:
            files.append(rel)
    if STUDENT_README not in tree:
        problems.append(f"{STUDENT_README}: not committed; it becomes the release's README.md "
                        f"(the project's README.md, with instructor commands, is not shipped)")
    if not any(rel.startswith("cs231n/") for rel in files):
        problems.append(f"{root}: commit {commit[:12]} has no cs231n/ package files to release")
    blobs = _read_blobs(root, [tree[rel][2] for rel in files + [STUDENT_README] if rel in tree])

    contents, modes, regions, answers, notebooks = {}, {}, [], [], {}
    for rel in files:
        raw = blobs[tree[rel][2]]
        modes[rel] = 0o755 if tree[rel][0] == "100755" else 0o644
        if rel.endswith(".py"):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                problems.append(f"{rel}: not UTF-8 text")
                continue
            released, file_regions = _process_python(rel, text, problems)
            contents[rel] = released.encode("utf-8")
            regions.extend(file_regions)
        elif rel.endswith(".ipynb"):
            released, file_regions, file_answers = _process_notebook(rel, raw, problems)
            contents[rel] = released
            regions.extend(file_regions)
            answers.extend(file_answers)
            notebooks[rel] = released
        else:
            contents[rel] = raw
    if STUDENT_README in tree:
        contents["README.md"] = blobs[tree[STUDENT_README][2]]
        modes["README.md"] = 0o644
        problems.extend(_check_student_readme(contents))

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
                f"release"
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
    # The course's skeleton hashes: the packer compares a student's files with them to
    # warn about changes outside the answer regions (student_tools.contract).
    contents[contract.FINGERPRINT] = _fingerprint(contents).encode("utf-8")
    modes[contract.FINGERPRINT] = 0o644
    leaks = find_leaks(contents, regions, answers)
    if leaks:
        raise ReleaseError(["solution or answer text would ship:"] + leaks)
    return ReleasePlan(root, commit, sorted(contents), contents, modes, regions, answers, notes)


def verify_release(plan, release_dir, zip_path, name):
    """Problems with a written release (empty list when it is clean)."""
    release_dir = Path(release_dir)
    problems = []
    written = {
        p.relative_to(release_dir).as_posix(): p.read_bytes()
        for p in sorted(release_dir.rglob("*")) if p.is_file()
    }
    if sorted(written) != plan.files:
        problems.append(
            f"release files differ from the plan: extra {sorted(set(written) - set(plan.files))},"
            f" missing {sorted(set(plan.files) - set(written))}"
        )
    problems.extend(f"{rel}: differs from the plan" for rel in sorted(written)
                    if rel in plan.contents and written[rel] != plan.contents[rel])
    for rel, data in written.items():
        if rel.endswith(".ipynb"):
            nb = nbformat.reads(data.decode("utf-8"), as_version=4)
            for index, cell in enumerate(nb.cells):
                if cell.cell_type == "code" and (cell.outputs or cell.execution_count):
                    problems.append(f"{rel} cell {index}: outputs not cleared")
    zip_bytes = Path(zip_path).read_bytes()
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        members = sorted(archive.namelist())
        if members != sorted(f"{name}/{rel}" for rel in written):
            problems.append(f"{Path(zip_path).name}: members differ from {release_dir.name}/")
        else:
            problems.extend(
                f"{Path(zip_path).name}: {rel} differs from the release directory"
                for rel in sorted(written) if archive.read(f"{name}/{rel}") != written[rel]
            )
    written[Path(zip_path).name] = zip_bytes
    problems.extend(find_leaks(written, plan.regions, plan.answers))
    return problems


def _write_zip(zip_path, release_dir, name):
    # Fixed timestamps and sorted members: the same commit gives the same zip.
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
                f"--out {out}: exists, is not empty and was not created by "
                f"instructor_tools.release (no {OUT_MARKER} file in it); choose another "
                f"directory"
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
    plan = plan_release(root)

    out.mkdir(parents=True, exist_ok=True)
    (out / OUT_MARKER).write_text("created by python -m instructor_tools.release\n")
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=out))
    try:
        staged_dir = staging / name
        for rel in plan.files:
            target = staged_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(plan.contents[rel])
            target.chmod(plan.modes[rel])
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
        description="Write the student version of the project's last commit: solution "
        "regions replaced by NotImplementedError, answers by a prompt, notebook outputs "
        "cleared, only the files on the allow-list.",
    )
    default_root = Path(__file__).resolve().parent.parent
    parser.add_argument("--root", type=Path, default=default_root,
                        help="top of the project's git work tree (default: %(default)s)")
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
    print(f"release: {len(plan.files)} files of commit {plan.commit[:12]} -> {release_dir}")
    print(f"         zip -> {zip_path}")
    print(f"         {len(plan.regions)} solution regions replaced in "
          f"{', '.join(files_with_regions) or 'no file'}")
    print(f"         {len(plan.answers)} answers replaced by the prompt")
    for note in plan.notes:
        print(f"release: note: {note}")
    if not plan.regions:
        print("release: warning: no solution regions found; is this already a release?")
    return 0


if __name__ == "__main__":
    sys.exit(main())
