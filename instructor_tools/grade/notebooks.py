"""What a submitted notebook shows, checked without trusting it.

Static checks (grader process, the notebook parsed as data with nbformat, never run here):
- never run: code cells without execution count, or no code cell with any output;
- run out of order (counts not 1, 2, 3, ...);
- errors shown, and errors hidden by a ``raises-exception`` tag or an
  ``NBVAL_RAISES_EXCEPTION`` comment (the course notebooks carry neither);
- the written answers, per question (labelled by the nearest heading above each answer
  region in the course's notebook: 'Inline Question 1', or a derivation's section such as
  'Batch normalization: backward pass'): answered, empty, still the prompt, or deleted;
  their texts are kept for the TAs' pages (written.py).

Re-execution (sandboxed, see grade.py and build.py): nbval runs the COURSE's notebook, with
the student's answer regions and stored outputs, and compares every cell's stored outputs
with fresh ones, with the course's sanitizer and the course's tags only: a tag or marker
the student added never reaches the run. ``parse_junit`` turns nbval's junit XML into the
list of differing cells.
"""
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from instructor_tools.grade import bounded
from student_tools.markers import ANSWER_BEGIN, ANSWER_PROMPT, answer_blocks

MAX_NOTEBOOK_BYTES = 20 * 2**20
MAX_CELLS = 2000

RAISES_TAG = "raises-exception"
_RAISES_COMMENT = re.compile(r"^\s*#\s*NBVAL_RAISES_EXCEPTION", re.MULTILINE)
_ANSI = re.compile(r"\x1b\[[0-9;]*m|#x1B\[[0-9;]*m")


@dataclass
class NotebookReport:
    name: str
    readable: bool = True
    problems: list = field(default_factory=list)  # human sentences, student text escaped later
    answers: list = field(default_factory=list)  # (question label, state, detail)
    texts: dict = field(default_factory=dict)  # question label -> answer text (or None)
    never_run: bool = False
    code_cells: list = field(default_factory=list)  # global cell index of each code cell


def _first_line(source, width=60):
    line = next((l.strip() for l in source.splitlines() if l.strip()), "")
    return line if len(line) <= width else line[: width - 3] + "..."


# A markdown ATX heading as the notebook shows it: '### Inline Question 1:' -> 'Inline
# Question 1' (the #s, a closing run of #s and a trailing colon are not part of its text).
_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+(?P<text>.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_PART = re.compile(r" \(part \d+\)$")
MAX_ANSWER_CHARS = 20000  # of one answer's text kept in the result (for the TAs' pages)


def heading_text(line):
    """The text of a markdown heading line, or None: '## Setup' -> 'Setup'."""
    match = _HEADING.match(line)
    if not match:
        return None
    return (match["text"] or "").strip().rstrip(":").strip() or None


@dataclass
class AnswerRegion:
    """One answer region of a notebook: the heading it belongs to (the nearest heading
    above its BEGIN marker; '<heading> (part 2)' for a second region under one heading),
    its text (None: never closed) and the markdown from that heading to the marker (the
    question as the notebook asks it)."""
    label: str | None
    text: str | None
    prompt: str


def _spans(lines, events):
    """(begin, end) line numbers (1-based, inclusive) of the answer regions of one cell,
    from answer_blocks' events: a region begins at the last BEGIN marker before its END."""
    begins = [n for n, line in enumerate(lines, start=1) if line.strip() == ANSWER_BEGIN]
    spans = []
    for event, lineno, _ in events:
        if event == "answer":
            spans.append((max(b for b in begins if b < lineno), lineno))
        elif event == "unclosed":
            spans.append((lineno, len(lines)))
    return spans


def answer_regions_full(nb, known=None):
    """[AnswerRegion] of a notebook, in order.

    Each region belongs to the nearest heading above it, in its own cell or an earlier
    markdown cell (the derivations sit under their section's heading, the inline questions
    under their own). Headings inside an answer region or a fenced code block do not count.
    known: the headings that may label a region (a student's notebook is read with the
    course's: a heading the student added does not move an answer off its question).
    """
    regions, label, prompt, seen = [], None, [], {}
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        lines = cell.source.splitlines()
        events = list(answer_blocks(cell.source))
        spans = {begin: (begin, end) for begin, end in _spans(lines, events)}
        texts = iter(text for event, _, text in events if event in ("answer", "unclosed"))
        inside_until, fenced = 0, False
        for lineno, line in enumerate(lines, start=1):
            if lineno in spans:
                inside_until = spans[lineno][1]
                regions.append(AnswerRegion(_part(label, seen), next(texts),
                                            "\n".join(prompt).strip()[:MAX_ANSWER_CHARS]))
            if lineno <= inside_until:
                continue
            if _FENCE.match(line):
                fenced = not fenced
            found = None if fenced else heading_text(line)
            if found and (known is None or found in known):
                label, prompt = found, [line]
            elif label is not None:
                prompt.append(line)
    return regions


def answer_regions(nb, known=None):
    """[(heading label or None, text between the markers or None if unclosed)]."""
    return [(r.label, r.text) for r in answer_regions_full(nb, known)]


def _part(label, seen):
    if label is None:
        return None
    seen[label] = seen.get(label, 0) + 1
    return label if seen[label] == 1 else f"{label} (part {seen[label]})"


def course_questions(course_notebook):
    """The question labels of a course notebook, in order: the heading of each answer
    region (inline questions and derivations alike)."""
    nb = nbformat.read(course_notebook, as_version=4)
    return [label for label, _ in answer_regions(nb) if label]


def check_notebook(path, questions):
    """Static report of one submitted notebook (path may be missing)."""
    report = NotebookReport(Path(path).name)
    if not os.path.lexists(path):
        report.readable = False
        report.problems.append("missing from the submission")
        report.answers = [(q, "missing", "notebook missing") for q in questions]
        return report
    try:
        nb = bounded.read_notebook(path, max_bytes=MAX_NOTEBOOK_BYTES, max_cells=MAX_CELLS)
        nbformat.validate(nb)
    except Exception as exc:  # Unreadable, and nbformat raises many types
        report.readable = False
        report.problems.append(f"not a valid notebook: {type(exc).__name__}: "
                               f"{str(exc)[:200]}")
        report.answers = [(q, "missing", "notebook unreadable") for q in questions]
        return report

    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    report.code_cells = [i for i, _ in code]
    with_source = [(i, c) for i, c in code if c.source.strip()]
    unrun = [i for i, c in with_source if c.get("execution_count") is None]
    has_output = any(c.get("outputs") for _, c in with_source)
    if with_source and (not has_output or len(unrun) == len(with_source)):
        report.never_run = True
        report.problems.append("never run: no code cell shows any output" if not has_output
                               else "never run: no code cell has an execution count")
    elif unrun:
        report.problems.append(f"{len(unrun)} code cell(s) never run (first: cell {unrun[0] + 1})")
    counts = [c.get("execution_count") for _, c in with_source
              if c.get("execution_count") is not None]
    if counts and counts != list(range(1, len(counts) + 1)):
        report.problems.append("execution counts are not 1, 2, 3, ... (not one top-to-bottom "
                               "run in a fresh kernel)")
    for i, cell in code:
        tagged = RAISES_TAG in cell.metadata.get("tags", []) or bool(
            _RAISES_COMMENT.search(cell.source))
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        label = f"cell {i + 1} ({_first_line(cell.source)!r})"
        if tagged and errors:
            report.problems.append(
                f"{label}: error hidden by a raises-exception tag: "
                f"{errors[0].get('ename', '')}: {str(errors[0].get('evalue', ''))[:150]}")
        elif tagged:
            report.problems.append(f"{label}: carries a raises-exception tag the course "
                                   f"notebook does not have")
        elif errors:
            report.problems.append(f"{label}: shows an error: {errors[0].get('ename', '')}: "
                                   f"{str(errors[0].get('evalue', ''))[:150]}")

    found = {}
    known = {_PART.sub("", q) for q in questions}
    for label, text in answer_regions(nb, known):
        if label is not None and label not in found:
            found[label] = text
    report.texts = {q: None if found.get(q) is None else found[q][:MAX_ANSWER_CHARS]
                    for q in questions if q in found}
    for q in questions:
        if q not in found:
            report.answers.append((q, "missing", "no answer region under this heading "
                                   "(answer cell deleted, or the heading changed)"))
        elif found[q] is None:
            report.answers.append((q, "broken", "answer markers not closed"))
        elif not found[q]:
            report.answers.append((q, "empty", "nothing between the answer markers"))
        elif ANSWER_PROMPT in found[q]:
            report.answers.append((q, "unanswered", "still the prompt"))
        else:
            report.answers.append((q, "answered", f"{len(found[q].split())} words"))
    return report


def parse_junit(xml, labels):
    """(cells run, [(cell label, first line of nbval's message)]) from nbval's junit XML.

    xml: the report's bytes. nbval names test cases 'Cell K' with K counting code cells
    from 0; labels[K] says how the student finds that cell (build.Built.labels).
    """
    root = ET.fromstring(xml)
    run, differ = 0, []
    for case in root.iter("testcase"):
        match = re.fullmatch(r"Cell (\d+)", case.get("name", ""))
        if not match:
            continue
        run += 1
        k = int(match.group(1))
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        if failure is None:
            continue
        label = labels[k] if k < len(labels) else f"code cell {k + 1}"
        text = _ANSI.sub("", failure.get("message", "") or failure.text or "")
        lines = [l.strip() for l in text.splitlines() if l.strip()]
        why = next((l for l in lines if "mismatch" in l or "Unexpected" in l
                    or "differ" in l.lower() or "Error" in l), lines[0] if lines else "")
        detail = [l for l in lines if l.startswith(("-", "+")) and len(l) > 1][:4]
        differ.append((label, (why + (" | " + " ".join(detail) if detail else ""))
                       [:300]))
    return run, differ
