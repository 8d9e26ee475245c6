"""OUT/feedback/<submission>.html: one self-contained page per submission.

The pages of the grader (this one and the TAs' pages, written_pages.py) render through one
Jinja2 template set, ``templates/``, with autoescape: every string that came from a
submission (file names, error messages, hints computed on the student's code, notebook
text, attempt details) and every TA comment is HTML-escaped unless it is ``Markup``. The
feedback page has no script and no external resource.

The written part (inline questions and derivations) is graded by the course staff: the page
lists every written question by its notebook heading with the state of the student's
answer, and the points and comment once the TAs' points are merged (written.py).
"""
from pathlib import Path

import jinja2

from instructor_tools.grade.written import STATE_TEXT
from student_tools.atomic import write_atomic


def _num(value):
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=True, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
TEMPLATES.filters["num"] = _num
TEMPLATES.globals["state_text"] = STATE_TEXT


def render(result, written_rows=None):
    """The feedback page of one result dict (see grade.grade_one).

    written_rows: written.rows() of this result (the rubric's questions with their points
    and comments); None: the questions found in the result, without points."""
    if written_rows is None:
        written_rows = [{"notebook": nb["name"], "heading": label, "state": state,
                         "detail": detail, "max": None, "points": None, "comment": ""}
                        for nb in result.get("notebooks", [])
                        for label, state, detail in nb["answers"]]
    scored = [r for r in written_rows if r["max"] is not None]
    graded = [r["points"] for r in scored if r["points"] is not None]
    notes = []
    if result.get("missing"):
        notes.append("Missing files: " + ", ".join(result["missing"]))
    notes += [f"MANIFEST: {m}" for m in result.get("manifest", [])]
    if result.get("skipped_members"):
        notes.append("Not part of a submission, ignored: " + ", ".join(result["skipped_members"]))
    written = {"rows": written_rows, "graded": graded, "earned": sum(graded),
               "max": sum(r["max"] for r in scored)}
    regions = [r for r in result.get("regions", []) if r["state"] != "ok"]
    return TEMPLATES.get_template("feedback.html").render(
        result=result, written=written, regions=regions, notes=notes)


def write_feedback(path, result, written_rows=None):
    write_atomic(path, render(result, written_rows))
