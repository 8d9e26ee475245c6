"""Solution and answer regions: found, checked and replaced in .py files and notebooks.

The grammar is student_tools.markers', and its scanners are the only ones:
``solution_regions`` for solution regions (package ``.py`` files, notebook code cells),
``answer_blocks`` for answer regions (notebook markdown cells). On top the release checks
more than the grammar, because it rewrites what it finds:

- in a ``.py`` file a marker is a real comment, alone on its line, found with tokenize:
  marker text in a string (a docstring, a regex, a test fixture) is no region;
- an END marker is indented as its BEGIN marker;
- a region of a ``.py`` file lies in a function and holds whole statements of one block,
  at the BEGIN marker's indentation (ast); a notebook region holds code; the released
  file or cell still compiles;
- a comment or markdown line naming the marker words but not a marker is refused.

What the release makes of them:

- each solution region keeps its two marker lines, unchanged; the statements between them
  become, at the BEGIN line's indentation, TODO_COMMENT and ``raise
  NotImplementedError("<function>: not implemented yet; see <notebook>, section
  "<section>"")``. The grader runs only what a student writes between the markers,
  spliced into the course's own files;
- the text of each answer region becomes ANSWER_PROMPT, its marker lines kept, so that
  ``student_tools.submission`` can find the student's answer;
- notebook outputs and execution counts are cleared (nbconvert's ClearOutputPreprocessor),
  and each cell's metadata too but for the tags on KEPT_CELL_TAGS (nbconvert's
  ClearMetadataPreprocessor, on every cell): metadata is invisible in JupyterLab, so
  nothing hidden there ships. The notebook's own metadata loses its widget state only.
"""
import ast
import io
import math
import re
import tokenize
from dataclasses import dataclass, field

import nbformat
from nbconvert.preprocessors import ClearMetadataPreprocessor, ClearOutputPreprocessor

from student_tools.markers import (
    ANSWER_BEGIN,
    ANSWER_END,
    ANSWER_PROMPT,
    ANSWER_WORD_RE as _ANSWER_WORD_RE,
    SOLUTION_END_RE,
    SOLUTION_WORD_RE as _SOLUTION_WORD_RE,
    answer_blocks,
    solution_regions,
)

# Notebook cell metadata in a release: nothing but these tags, the markers nbval (`make
# test`) and nbclient obey. A cell's metadata is invisible in JupyterLab, so anything else
# in it (timings, extension state, text hidden there) is dropped.
KEPT_CELL_TAGS = ("nbval-ignore-output", "nbval-check-output", "nbval-raises-exception",
                  "nbval-skip", "raises-exception", "skip-execution")

# The first line the student finds between a region's markers.
TODO_COMMENT = ("# TODO: your code here, in place of this raise. Only code between the markers "
                "is graded.")


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


# ---------------------------------------------------------------------------
# Finding solution regions: student_tools.markers, with the release's checks on top
# ---------------------------------------------------------------------------


def _in_line_order(found):
    """The messages of [(lineno or math.inf, message)], by line (stable): a problem found
    at the end of the text (a region never closed) comes last."""
    return [message for _, message in sorted(found, key=lambda item: item[0])]


def _scan_solution_regions(text, path, cell, problems):
    """SolutionRegion objects (body not yet filled) of text, by markers.solution_regions;
    its problems, and END markers indented unlike their BEGIN, go to problems."""
    where = f"{path}" + (f" cell {cell}" if cell is not None else "")
    found, said = solution_regions(text)
    problems.extend(f"{where} line {lineno}: {sentence}" for lineno, sentence in said)
    lines = text.splitlines()
    regions = []
    for region in found:
        if SOLUTION_END_RE.match(lines[region.end - 1])["indent"] != region.indent:
            problems.append(f"{where} line {region.end}: END marker indented differently "
                            f"from its BEGIN marker at line {region.begin}")
        regions.append(SolutionRegion(path, cell, region.begin, region.end, region.indent,
                                      region.notebook, region.section, region.function or ""))
    return regions


def _python_marker_text(text, path, problems):
    """text with every line that names the marker words but is not a comment alone on its
    line (a docstring, a string literal, code with a trailing comment) blanked, for
    markers.solution_regions: tokenize sees only real comments. None when the text has no
    marker words."""
    if not _SOLUTION_WORD_RE.search(text):
        return None
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError) as exc:
        problems.append(f"{path}: cannot tokenize ({exc}), so its markers cannot be read")
        return None
    comments = set()
    for tok in tokens:
        if tok.type == tokenize.COMMENT and _SOLUTION_WORD_RE.search(tok.string):
            if tok.line.strip() == tok.string.strip():
                comments.add(tok.start[0])
            else:
                problems.append(
                    f"{path} line {tok.start[0]}: a solution marker must be alone on its line")
    lines = text.splitlines()
    return "\n".join(line if n in comments or not _SOLUTION_WORD_RE.search(line) else ""
                     for n, line in enumerate(lines, start=1))


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


# ---------------------------------------------------------------------------
# Replacing solution regions
# ---------------------------------------------------------------------------


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


def _process_python(path, text, problems):
    """(released text, regions) of one .py file."""
    n_problems = len(problems)
    marker_text = _python_marker_text(text, path, problems)
    regions = [] if marker_text is None else _scan_solution_regions(marker_text, path, None,
                                                                     problems)
    if not regions:
        return text, []
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
    released_text = "\n".join(released) + ("\n" if text.endswith("\n") else "")
    if len(problems) == n_problems:
        try:
            compile(released_text, path, "exec")
        except SyntaxError as exc:
            problems.append(
                f"{path}: the released file would not parse ({exc.msg}, line {exc.lineno}); "
                f"check that every region holds complete statements"
            )
    return released_text, regions


# ---------------------------------------------------------------------------
# Notebooks: code cells, answer regions in markdown, outputs and metadata
# ---------------------------------------------------------------------------


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


def _process_code_cell(source, path, index, problems):
    """(released source, solution regions) of one notebook code cell."""
    cell_regions = _scan_solution_regions(source, path, index, problems)
    lines = source.splitlines()
    for region in cell_regions:
        region.source = source
        region.function = region.function or "this cell"
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
                f"({exc.msg}, line {exc.lineno}); a region must hold complete statements"
            )
    return released, cell_regions


def _answer_regions_in_markdown(source, path, cell, problems):
    """(released source, answer regions) of one markdown cell, by markers.answer_blocks;
    a line naming the marker words that is no marker is refused too."""
    where = f"{path} cell {cell}"
    lines = source.splitlines()
    begins = [n for n, line in enumerate(lines, start=1) if line.strip() == ANSWER_BEGIN]
    found, regions, inside, opened = [], [], set(), set()
    for lineno, line in enumerate(lines, start=1):
        stripped = line.strip()
        if _ANSWER_WORD_RE.search(line) and stripped not in (ANSWER_BEGIN, ANSWER_END):
            found.append((lineno, f"{where} line {lineno}: malformed answer marker "
                                  f"{stripped!r}; expected a line {ANSWER_BEGIN!r} or "
                                  f"{ANSWER_END!r}"))
    for event, lineno, _ in answer_blocks(source):
        if event == "answer":  # it began at the last BEGIN before its END
            begin = max(n for n in begins if n < lineno)
            regions.append(AnswerRegion(path, cell, lines[begin : lineno - 1], begin))
            opened.add(begin)
            inside.update(range(begin + 1, lineno))
        elif event == "begin_twice":
            before = max(n for n in begins if n < lineno)
            found.append((lineno, f"{where} line {lineno}: answer region opened inside the "
                                  f"one opened at line {before} (regions cannot nest)"))
        elif event == "end_without_begin":
            found.append((lineno, f"{where} line {lineno}: {ANSWER_END} without "
                                  f"{ANSWER_BEGIN}"))
        elif event == "unclosed":
            found.append((math.inf, f"{where} line {lineno}: {ANSWER_BEGIN} never closed by "
                                    f"{ANSWER_END}"))
            opened.add(lineno)
            inside.update(range(lineno + 1, len(lines) + 1))
    problems.extend(_in_line_order(found))
    out = []  # each region's body replaced by the prompt, its marker lines kept
    for lineno, line in enumerate(lines, start=1):
        if lineno not in inside:
            out.append(line)
            if lineno in opened:
                out.append(ANSWER_PROMPT)
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


class _ClearCellMetadata(ClearMetadataPreprocessor):
    """nbconvert's ClearMetadataPreprocessor on every cell (its own clears code cells
    only; a markdown cell's metadata is as invisible), keeping a cell's tags on
    KEPT_CELL_TAGS alone; the notebook's own metadata is left to _process_notebook."""

    def __init__(self, **kwargs):
        super().__init__(clear_cell_metadata=True, clear_notebook_metadata=False,
                         preserve_cell_metadata_mask={"tags"}, **kwargs)

    def preprocess_cell(self, cell, resources, cell_index):
        kept = dict(self.nested_filter(cell.metadata.items(),
                                       self.preserve_cell_metadata_mask))
        tags = kept.get("tags")
        tags = [t for t in tags if t in KEPT_CELL_TAGS] if isinstance(tags, list) else []
        cell.metadata = nbformat.from_dict({"tags": tags} if tags else {})
        return cell, resources


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
            cell.source, cell_regions = _process_code_cell(cell.source, path, index, problems)
            regions.extend(cell_regions)
        elif cell.cell_type == "markdown":
            cell.source, cell_answers = _answer_regions_in_markdown(
                cell.source, path, index, problems
            )
            answers.extend(cell_answers)
    # Outputs and execution counts (code cells), then every cell's metadata but its kept
    # tags; the notebook's metadata keeps all but the widgets' saved state.
    for preprocessor in (ClearOutputPreprocessor(), _ClearCellMetadata()):
        nb, _ = preprocessor.preprocess(nb, {})
    nb.metadata.pop("widgets", None)
    text = nbformat.writes(nb) + "\n"
    return text.encode("utf-8"), regions, answers
