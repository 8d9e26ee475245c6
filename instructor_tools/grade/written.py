"""The written part (inline questions and derivations): graded by people, merged here.

The grader never scores a written answer. It keeps each answer's text in the result
(notebooks.check_notebook), lays the answers out for the TAs (written_pages.py: one page
per question, and OUT/written.csv to fill in), and merges the points the TAs give back:

- ``read_points``: the TAs' CSV (``--written FILE``, columns ``submission, question,
  max_points, points, comment``), checked row by row. A bad CSV is refused as a whole,
  with every bad row named, before anything is written (``WrittenCSVError``).
- ``store_points`` / ``load_points``: the accepted points live in
  ``OUT/written/points/<submission>.json`` (one file per submission, so shards sharing one
  OUT never write the same file) together with the sha256 of the zip they were given for;
  later runs and ``merge`` reuse them, and points given for an earlier zip are not counted.
  The results in OUT/results/ are never touched: the code is not re-run for them.
- ``rows``: one submission's written questions (state, points, comment), for the
  gradebook (``gradebook_cells``), the student's feedback page and the TAs' pages.

A question maps to an answer by (notebook, heading): the rubric's ``[[written]]`` heading is
the label notebooks.py gives the answer region (its nearest heading above).
"""
import csv
import io
import json
import math
from pathlib import Path

from instructor_tools.grade import bounded
from student_tools.atomic import write_atomic

CSV_COLUMNS = ["submission", "question", "max_points", "points", "comment"]
REQUIRED_COLUMNS = ("submission", "question", "points")
GRADEBOOK_COLUMNS = ["written_score", "written_max", "written_graded", "total"]
MAX_CSV_BYTES = 32 * 2**20
POINTS_DIR = Path("written") / "points"
# What the student and the TAs read for each state of an answer (notebooks.check_notebook).
STATE_TEXT = {"answered": "answered", "empty": "empty", "unanswered": "still the prompt",
              "missing": "missing", "broken": "answer markers not closed"}


class WrittenCSVError(ValueError):
    """A TAs' CSV that cannot be merged; ``problems`` lists every bad row."""

    def __init__(self, path, problems):
        self.path, self.problems = path, list(problems)
        super().__init__(f"the written points in {path} were refused; nothing was written:\n"
                         + "\n".join(f"- {p}" for p in self.problems))


def _num(value):
    return f"{value:g}"


def csv_safe(value):
    """Cells a spreadsheet would run as a formula are prefixed with a quote (numbers are
    left alone), in grades.csv and written.csv."""
    text = str(value)
    try:
        float(text)
        return text
    except ValueError:
        return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _unquote(text):
    """A cell as typed: csv_safe's quote removed, surrounding spaces dropped."""
    text = text.strip()
    return text[1:] if text[:2] in ("'=", "'+", "'-", "'@") else text


# ---------------------------------------------------------------------------
# The TAs' CSV
# ---------------------------------------------------------------------------


def read_points(path, rubric, submissions):
    """{submission: {"sha256": None, "questions": {question id: {"points": float or None,
    "comment": str}}}} from the TAs' CSV at path.

    submissions: the names that may appear (the zips of the SUBMISSIONS folder, or the
    results being merged). Raises WrittenCSVError listing every bad row (row numbers as a
    spreadsheet shows them, the header being row 1): a missing column, an unknown
    submission or question, points that are not a number, negative or above the
    question's maximum, a second row for the same submission and question. Empty points:
    not graded yet. Rows with every cell empty are skipped.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:  # the instructor's own file: a symlink is fine
            data = handle.read(MAX_CSV_BYTES + 1)
        if len(data) > MAX_CSV_BYTES:
            raise ValueError(f"over {MAX_CSV_BYTES} bytes")
        text = data.decode("utf-8-sig")
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise WrittenCSVError(path, [f"cannot read it: {exc}"]) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [cell.strip().lower() for cell in next(reader, [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise WrittenCSVError(path, [f"row 1 (the header): missing column(s) "
                                     f"{', '.join(missing)}; expected {','.join(CSV_COLUMNS)}"])
    at = {name: header.index(name) for name in CSV_COLUMNS if name in header}
    questions = {q.id: q for q in rubric.written}
    names = set(submissions)
    points, problems, first_row = {}, [], {}
    for row_number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        cell = {name: _unquote(row[i]) if i < len(row) else "" for name, i in at.items()}
        who, qid, value = cell["submission"], cell["question"], cell["points"]
        where = f"row {row_number} ({who or '?'}, {qid or '?'})"
        bad = []
        if who not in names:
            bad.append(f"unknown submission {who!r}" if who else "no submission")
        if qid not in questions:
            bad.append(f"unknown question {qid!r}; the rubric's: {', '.join(questions)}"
                       if qid else "no question")
        earned = None
        if value:
            try:
                earned = float(value)
            except ValueError:
                bad.append(f"points {value!r} is not a number")
            else:
                if not math.isfinite(earned):
                    bad.append(f"points {value!r} is not a number")
                elif earned < 0:
                    bad.append(f"points {value} is negative")
                elif qid in questions and earned > questions[qid].points:
                    bad.append(f"points {value} is above the maximum "
                               f"{_num(questions[qid].points)} of {qid}")
        if (who, qid) in first_row:
            bad.append(f"a second row for this submission and question (first: row "
                       f"{first_row[who, qid]})")
        else:
            first_row[who, qid] = row_number
        if bad:
            problems.append(f"{where}: " + "; ".join(bad))
            continue
        entry = points.setdefault(who, {"sha256": None, "questions": {}})
        entry["questions"][qid] = {"points": earned, "comment": cell.get("comment", "")}
    if problems:
        raise WrittenCSVError(path, problems)
    return points


# ---------------------------------------------------------------------------
# Points kept in OUT (one file per submission)
# ---------------------------------------------------------------------------


def write_json_atomic(path, data):
    write_atomic(path, json.dumps(data, indent=1, sort_keys=True))


def store_points(out, results, points, source):
    """Keep the accepted points of each of results (the CSV replaces what an earlier one
    gave: a submission without rows gets an empty file), tied to its zip's sha256."""
    for result in results:
        entry = points.get(result["submission"], {"questions": {}})
        write_json_atomic(Path(out) / POINTS_DIR / f"{result['submission']}.json", {
            "submission": result["submission"], "sha256": result.get("sha256", ""),
            "source": str(source), "questions": entry["questions"]})


def load_points(folder, names=None):
    """{submission: entry} of the points kept in folder (an OUT), each with its sha256."""
    points = {}
    for path in sorted((Path(folder) / POINTS_DIR).glob("*.json")):
        try:
            data = json.loads(bounded.read_regular(path, 2**20).decode("utf-8"))
            name, questions = data["submission"], data["questions"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if names is None or name in names:
            points[name] = {"sha256": data.get("sha256"), "questions": questions,
                            "source": data.get("source", "")}
    return points


def given(result, points):
    """The questions of points that apply to result: {} when none were given, or when they
    were given for another zip of the same name (a resubmission)."""
    entry = (points or {}).get(result["submission"])
    if not entry:
        return {}
    if entry.get("sha256") not in (None, result.get("sha256")):
        return {}
    return entry.get("questions", {})


def stale(results, points):
    """Names of the submissions whose kept points were given for an earlier zip."""
    return sorted(r["submission"] for r in results
                  if (points or {}).get(r["submission"], {}).get("sha256") not in
                  (None, r.get("sha256")))


# ---------------------------------------------------------------------------
# One submission's written questions
# ---------------------------------------------------------------------------


def answer_of(result, question):
    """(state, detail, text) of one question in a result (text None when there is none)."""
    notebook = next((nb for nb in result.get("notebooks", [])
                     if nb.get("name") == question.notebook), None)
    if notebook is None:
        return "missing", f"not read ({result.get('status', 'no result')})", None
    for label, state, detail in notebook.get("answers", []):
        if label == question.heading:
            return state, detail, notebook.get("answer_texts", {}).get(label)
    return "missing", "the course notebook has no answer under this heading", None


def rows(result, rubric, points=None):
    """Per written question of the rubric: a dict with id, notebook, heading, max, state,
    detail, text, points (None: not graded yet) and comment."""
    marks = given(result, points)
    found = []
    for question in rubric.written:
        state, detail, text = answer_of(result, question)
        mark = marks.get(question.id, {})
        found.append({"id": question.id, "notebook": question.notebook,
                      "heading": question.heading, "max": question.points, "state": state,
                      "detail": detail, "text": text, "points": mark.get("points"),
                      "comment": str(mark.get("comment") or "")})
    return found


def gradebook_cells(result, rubric, points=None):
    """The written columns of one gradebook row: written_score (graded questions only),
    written_max, written_graded ('5/10 questions'), total (code score + written_score),
    and written:<id> per question (empty: not graded yet)."""
    found = rows(result, rubric, points)
    graded = [r for r in found if r["points"] is not None]
    score = sum(r["points"] for r in graded)
    cells = {"written_score": _num(score), "written_max": _num(rubric.written_max),
             "written_graded": f"{len(graded)}/{len(found)} questions",
             "total": _num(float(result.get("score", 0)) + score)}
    for r in found:
        cells[f"written:{r['id']}"] = "" if r["points"] is None else _num(r["points"])
    return cells


def graded_count(results, rubric, points):
    """(questions graded, questions in all) over results."""
    found = [r for result in results for r in rows(result, rubric, points)]
    return sum(r["points"] is not None for r in found), len(found)


def write_template(path, results, rubric, points=None):
    """OUT/written.csv: one row per question and submission (question by question, as the
    TAs grade), with the points and comments already given; the rest left empty."""
    ordered = sorted(results, key=lambda r: r["submission"])
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(CSV_COLUMNS)
    for question in rubric.written:
        for result in ordered:
            mark = given(result, points).get(question.id, {})
            earned = mark.get("points")
            writer.writerow([csv_safe(result["submission"]), question.id, _num(question.points),
                             "" if earned is None else _num(earned),
                             csv_safe(mark.get("comment") or "")])
    write_atomic(path, text.getvalue())
