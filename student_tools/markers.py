"""The marker grammar shared by the release builder, the submission packer and the grader.

Solution regions (``.py`` files, notebook code cells): the lines between
``### BEGIN SOLUTION (<notebook>.ipynb: "<section>")`` and ``### END SOLUTION``. Answer
regions (markdown cells): the lines between ANSWER_BEGIN and ANSWER_END; a release puts
ANSWER_PROMPT there, which a submission must replace. The marker words are assembled from
parts so that no line of this file reads as a marker.
"""
import re

_SOLUTION = "SOLUTION"
SOLUTION_BEGIN_RE = re.compile(
    r"^(?P<indent>[ \t]*)### BEGIN " + _SOLUTION
    + r' \((?P<notebook>[^:()"]+\.ipynb): "(?P<section>[^"]+)"\)[ \t]*$'
)
SOLUTION_END_RE = re.compile(r"^(?P<indent>[ \t]*)### END " + _SOLUTION + r"[ \t]*$")
# A comment that mentions a marker but does not parse as one is an error, not code.
SOLUTION_WORD_RE = re.compile(r"\b(BEGIN|END)[ _]" + _SOLUTION + r"\b", re.IGNORECASE)
SOLUTION_BEGIN_TEMPLATE = '### BEGIN ' + _SOLUTION + ' (<notebook>.ipynb: "<section>")'
SOLUTION_END = "### END " + _SOLUTION

ANSWER_BEGIN = "<!-- BEGIN " + "ANSWER -->"
ANSWER_END = "<!-- END " + "ANSWER -->"
ANSWER_WORD_RE = re.compile(r"\b(BEGIN|END)[ _]ANSWER\b", re.IGNORECASE)
# What the student finds between the answer markers; the submission packer refuses it.
ANSWER_PROMPT = "*Your answer:* (write here)"


def answer_blocks(markdown):
    """The answer regions of one markdown cell, in order, as (event, lineno, text):
    ("answer", END line, the stripped text between the markers); ("begin_twice", second
    BEGIN line, None): the text so far is dropped, the region starts again there;
    ("end_without_begin", END line, None): ignored; ("unclosed", BEGIN line, None): the cell
    ends inside a region. Marker lines match after stripping white space."""
    body, opened_at = None, None
    for lineno, line in enumerate(markdown.splitlines(), start=1):
        stripped = line.strip()
        if stripped == ANSWER_BEGIN:
            if body is not None:
                yield "begin_twice", lineno, None
            body, opened_at = [], lineno
        elif stripped == ANSWER_END:
            if body is None:
                yield "end_without_begin", lineno, None
                continue
            yield "answer", lineno, "\n".join(body).strip()
            body = None
        elif body is not None:
            body.append(line)
    if body is not None:
        yield "unclosed", opened_at, None


class SolutionRegion:
    """One solution region of a text: marker lines ``begin`` and ``end`` (1-based), the
    BEGIN line's ``indent``, ``notebook`` and ``section``, and ``function``: the qualified
    name of the def it lies in (from indentation; None at the top level of a file or cell).
    The body is lines begin+1 .. end-1."""

    __slots__ = ("begin", "end", "indent", "notebook", "section", "function")

    def __init__(self, begin, end, indent, notebook, section, function):
        self.begin, self.end, self.indent = begin, end, indent
        self.notebook, self.section, self.function = notebook, section, function

    @property
    def key(self):
        """What identifies a region across the course's and a student's copy of a file."""
        return (self.function, self.section)

    def body(self, lines):
        return lines[self.begin:self.end - 1]


def enclosing_function(lines, lineno, indent):
    """Qualified name of the def enclosing line ``lineno`` (1-based) from indentation, or
    None. Works on text that does not parse (a student's file half-way through)."""
    width = len(indent.expandtabs())
    names = []
    for line in reversed(lines[:lineno - 1]):
        if not line.strip():
            continue
        line_width = len(line.expandtabs()) - len(line.expandtabs().lstrip())
        match = re.match(r"\s*(?:async\s+)?(def|class)\s+(\w+)", line)
        if match and line_width < width:
            if match[1] == "def" or names:
                names.append(match[2])
            width = line_width
    return ".".join(reversed(names)) or None


def solution_regions(text):
    """(regions, problems) of one text (a .py file or a code cell), regions in order;
    problems are ``(lineno, sentence)``: a comment naming the marker words that is not a
    marker, a BEGIN inside an open region, an END without BEGIN, a region never closed."""
    lines = text.splitlines()
    regions, problems, open_at = [], [], None
    for lineno, line in enumerate(lines, start=1):
        begin, end = SOLUTION_BEGIN_RE.match(line), SOLUTION_END_RE.match(line)
        if begin:
            if open_at is not None:
                problems.append((lineno, f"a solution region opens inside the one opened at "
                                         f"line {open_at[0]} (regions cannot nest)"))
            open_at = (lineno, begin)
        elif end:
            if open_at is None:
                problems.append((lineno, "END marker without a BEGIN marker"))
                continue
            at, match = open_at
            regions.append(SolutionRegion(
                at, lineno, match["indent"], match["notebook"].strip(), match["section"],
                enclosing_function(lines, at, match["indent"])))
            open_at = None
        elif SOLUTION_WORD_RE.search(line) and line.lstrip().startswith("#"):
            problems.append((lineno, f"a damaged solution marker: {line.strip()[:80]!r}; "
                                     f"expected '{SOLUTION_BEGIN_TEMPLATE}' or "
                                     f"'{SOLUTION_END}'"))
    if open_at is not None:
        problems.append((open_at[0], "BEGIN marker never closed by an END marker"))
    return regions, problems
