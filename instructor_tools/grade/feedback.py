"""OUT/feedback/<submission>.html: one self-contained page per submission.

Every string that came from a submission (file names, error messages, hints computed on
the student's code, notebook text, attempt details) and every TA comment is escaped with
html.escape; the page has no script and no external resource.

The written part (inline questions and derivations) is graded by the course staff: the page
lists every written question by its notebook heading with the state of the student's
answer, and the points and comment once the TAs' points are merged (written.py).
"""
import html

from instructor_tools.grade.written import STATE_TEXT
from student_tools.atomic import write_atomic

_CSS = """
body { font-family: sans-serif; max-width: 60em; margin: 2em auto; color: #222; }
table { border-collapse: collapse; width: 100%; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 0.3em 0.5em; vertical-align: top; text-align: left; }
.pass { color: #1a7f37; font-weight: bold; } .fail { color: #b42318; font-weight: bold; }
.small { font-size: 85%; color: #555; } code, pre { white-space: pre-wrap; }
"""


def _e(value):
    return html.escape(str(value), quote=True)


def _mark(passed):
    return '<span class="pass">PASS</span>' if passed else '<span class="fail">FAIL</span>'


def render(result, written_rows=None):
    """The feedback page of one result dict (see grade.grade_one).

    written_rows: written.rows() of this result (the rubric's questions with their points
    and comments); None: the questions found in the result, without points."""
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">",
        f"<title>Feedback: {_e(result['submission'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>Feedback: {_e(result['submission'])}</h1>",
        f"<p><b>Score: {_e(_num(result['score']))} / {_e(_num(result['max_score']))}</b> "
        f"&middot; status: <b>{_e(result['status'])}</b> ({_e(result.get('status_text', ''))})</p>",
    ]
    rows = [r for r in written_rows or [] if r["max"] is not None]
    done = [r["points"] for r in rows if r["points"] is not None]
    if done:  # once the course staff has graded some of the written answers
        parts.append(f"<p>Written answers (graded by the course staff): "
                     f"{_e(_num(sum(done)))} / {_e(_num(sum(r['max'] for r in rows)))} "
                     f"({len(done)} of {len(rows)} questions graded) &middot; <b>total: "
                     f"{_e(_num(result['score'] + sum(done)))} / "
                     f"{_e(_num(result['max_score'] + sum(r['max'] for r in rows)))}</b></p>")
    if result.get("status_detail"):
        parts.append(f"<p class='small'>Details: <code>{_e(result['status_detail'])}</code></p>")
    # Instructor-only details (zip hash, isolation, paths) stay in results/<name>.json.
    parts.append(f"<p class='small'>Notebook outputs reproduce: "
                 f"{_e(result['outputs_reproduce'])}.</p>")
    parts.append("<p class='small'>Only the code between the solution markers (<code>### "
                 "BEGIN SOLUTION</code> ... <code>### END SOLUTION</code>) is graded; it runs "
                 "inside the course's own files.</p>")
    regions = [r for r in result.get("regions", []) if r["state"] != "ok"]
    if regions:
        parts.append("<h2>Answer regions not run</h2><ul>")
        for region in regions:
            parts.append(f"<li>{_e(region['description'])}")
            if len(region.get("refusals", [])) > 1:
                parts.append("<ul>" + "".join(
                    f"<li>line {_e(r['line'])}: {_e(r['why'])}: <code>{_e(r['text'])}</code>"
                    f"</li>" for r in region["refusals"][1:]) + "</ul>")
            parts.append("</li>")
        parts.append("</ul>")
    if result.get("outside"):
        parts.append("<h2>Changed outside the answer regions: not graded</h2><ul>")
        parts.extend(f"<li><code>{_e(line)}</code></li>" for line in result["outside"])
        parts.append("</ul>")

    parts.append("<h2>Graded items</h2>")
    if not result["items"]:
        parts.append("<p>No item could be graded: the code was not run "
                     f"({_e(result.get('status_text', result['status']))}).</p>")
    if result["items"]:
        parts.append("<table><tr><th>item</th><th>points</th><th>result</th>"
                     "<th>what was checked / why it failed</th></tr>")
        for item in result["items"]:
            rows = []
            for test in item["tests"]:
                line = f"{_mark(test['passed'])} {_e(test['function'])}: {_e(test['description'])}"
                if not test["passed"]:
                    line += f"<br><code>{_e(test['message'])}</code>"
                rows.append(line)
            if not item["passed"] and item.get("related"):
                rows.append(f"<span class='small'>{_e(item['related'])}</span>")
            if not item["passed"] and item.get("hint"):
                state = ("self-check passes" if item.get("check_passed")
                         else "self-check fails")
                rows.append(f"<span class='small'>Self-check <code>{_e(item['check'])}</code> "
                            f"({state}): {_e(item['hint'])}</span>")
            parts.append(
                f"<tr><td>{_e(item['title'])}</td><td>{_e(_num(item['earned']))} / "
                f"{_e(_num(item['points']))}</td><td>{_mark(item['passed'])}</td>"
                f"<td>{'<br>'.join(rows)}</td></tr>")
        parts.append("</table>")

    parts.append("<h2>Notebooks</h2>")
    for nb in result["notebooks"]:
        parts.append(f"<h3>{_e(nb['name'])}</h3>")
        rx = nb.get("reexec")
        if rx is None:
            parts.append("<p>Not re-executed.</p>")
        else:
            parts.append(f"<p>Re-executed against your code: {_e(rx['status'])} "
                         f"({_e(rx['cells_run'])} code cells compared, {_e(rx['seconds'])} s).</p>")
            if rx["differ"]:
                parts.append("<p>Cells whose saved output differs from what your code "
                             "prints now:</p><ul>")
                parts.extend(f"<li>{_e(cell)}: <code>{_e(why)}</code></li>"
                             for cell, why in rx["differ"][:40])
                parts.append("</ul>")
        if nb["problems"]:
            parts.append("<ul>" + "".join(f"<li>{_e(p)}</li>" for p in nb["problems"]) + "</ul>")

    parts += _written_section(result, written_rows)
    notes = []
    if result.get("missing"):
        notes.append("Missing files: " + ", ".join(result["missing"]))
    notes += [f"MANIFEST: {m}" for m in result.get("manifest", [])]
    if result.get("skipped_members"):
        notes.append("Not part of a submission, ignored: " + ", ".join(result["skipped_members"]))
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes)
                     + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _written_section(result, rows):
    """The written questions: who grades them, each one's state, points and comment."""
    if rows is None:
        rows = [{"notebook": nb["name"], "heading": label, "state": state, "detail": detail,
                 "max": None, "points": None, "comment": ""}
                for nb in result.get("notebooks", []) for label, state, detail in nb["answers"]]
    parts = ["<h2>Written answers</h2>",
             "<p>The written answers (inline questions and derivations) are graded by the "
             "course staff, not by this grader.</p>"]
    graded = [r for r in rows if r["points"] is not None]
    if rows and rows[0]["max"] is not None:
        total = sum(r["max"] for r in rows)
        parts.append(f"<p><b>Written points: {_e(_num(sum(r['points'] for r in graded)))} / "
                     f"{_e(_num(total))}</b> ({len(graded)} of {len(rows)} questions graded"
                     f"{'' if len(graded) == len(rows) else ' so far'}).</p>")
    if not rows:
        return parts + ["<p>None of your notebooks could be read.</p>"]
    parts.append("<table><tr><th>notebook</th><th>question</th><th>your answer</th>"
                 "<th>points</th><th>comment</th></tr>")
    for row in rows:
        ok = row["state"] == "answered"
        state = STATE_TEXT.get(row["state"], row["state"])
        if row["points"] is not None:
            points = f"{_e(_num(row['points']))} / {_e(_num(row['max']))}"
        else:
            points = "not graded yet" + (f" (of {_e(_num(row['max']))})"
                                         if row["max"] is not None else "")
        parts.append(f"<tr><td>{_e(row['notebook'])}</td><td>{_e(row['heading'])}</td><td>"
                     f"<span class='{'pass' if ok else 'fail'}'>{_e(state)}</span> "
                     f"{_e(row['detail'])}</td><td>{points}</td>"
                     f"<td>{_e(row['comment'])}</td></tr>")
    parts.append("</table>")
    return parts


def _num(value):
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def write_feedback(path, result, written_rows=None):
    write_atomic(path, render(result, written_rows))
