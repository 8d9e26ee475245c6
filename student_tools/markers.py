"""The marker grammar shared by the release builder, the submission packer and the grader.

Solution regions (package ``.py`` files and notebook code cells)::

    ### BEGIN SOLUTION (<notebook>.ipynb: "<section>")
    ... the solution's statements ...
    ### END SOLUTION

Answer regions (notebook markdown cells): the lines between ANSWER_BEGIN and ANSWER_END.
In the student release they hold ANSWER_PROMPT, which a submission must replace.

The marker words are assembled from parts so that no line of this file reads as a marker.
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
    """Scan one markdown cell for answer regions, in order.

    Yields (event, lineno, text), lineno 1-based:
    - ("answer", line of the END marker, the stripped text between the markers);
    - ("begin_twice", line of the second BEGIN): a region opened inside an open one; the
      text collected so far is dropped and the region starts again there;
    - ("end_without_begin", line of the END, None): nothing open, the END is ignored;
    - ("unclosed", line of the BEGIN, None): the cell ends inside a region.
    Marker lines match after stripping white space.
    """
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
