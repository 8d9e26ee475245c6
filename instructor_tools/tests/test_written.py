"""The written part: every answer region has a rubric question, the TAs get one page per
question (sanitized, math by a local MathJax only) and a CSV to fill in, and their points
come back into the gradebook and the feedback, or are refused with every bad row named and
nothing written.

The grading runs here use --no-notebooks (2-3 s a submission); the page and CSV tests that
need no code run build result dicts directly.
"""
import csv
import html.parser
import shutil

import nbformat
import pytest

from instructor_tools.grade import cli, feedback, notebooks, written, written_pages
from instructor_tools.grade.rubric import load_rubric
from grade_fixtures import PROJECT, committed, solution_files, write_zip
from test_grade import _course_folder, course_notebooks  # noqa: F401 (a fixture)

RUBRIC = load_rubric()
IQ1 = "Inline Question 1"


# ---------------------------------------------------------------------------
# The rubric's written questions
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["committed", "working tree"])
def test_every_answer_region_has_exactly_one_written_question(where):
    regions = []
    for name in ("BatchNormalization.ipynb", "Dropout.ipynb"):
        data = committed(name) if where == "committed" else (PROJECT / name).read_bytes()
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        regions += [(name, label) for label, _ in notebooks.answer_regions(nb)]
    questions = [(q.notebook, q.heading) for q in RUBRIC.written]
    assert None not in {label for _, label in regions}
    assert not any("(part" in label for _, label in regions)  # every region has its heading
    assert sorted(regions) == sorted(questions) and len(set(questions)) == len(questions)
    assert len(regions) == 10 and RUBRIC.written_max == sum(q.points for q in RUBRIC.written)
    assert ("BatchNormalization.ipynb", "Layer normalization: implementation") in regions


def test_a_heading_the_student_adds_does_not_move_an_answer(tmp_path):
    nb = nbformat.reads(committed("Dropout.ipynb").decode("utf-8"), as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "BEGIN ANSWER" in c.source)
    nb.cells.insert(at, nbformat.v4.new_markdown_cell("## My own notes\n\nscratch"))
    nb.cells[at + 1].source = "### Working\n" + nb.cells[at + 1].source
    path = tmp_path / "Dropout.ipynb"
    nbformat.write(nb, path)
    questions = [q.heading for q in RUBRIC.written if q.notebook == "Dropout.ipynb"]
    report = notebooks.check_notebook(path, questions)
    assert [(q, state) for q, state, _ in report.answers] == [(q, "answered") for q in questions]
    assert report.texts[IQ1].startswith("**Answer.**")


def test_points_given_for_an_earlier_zip_are_not_counted(tmp_path):
    old, new = _result("zoe", {}), dict(_result("zoe", {}), sha256="resubmitted")
    points = {"zoe": {"sha256": None, "questions": {"dropout_iq1": {"points": 3.0,
                                                                    "comment": "ok"}}}}
    written.store_points(tmp_path, [old], points, "filled.csv")
    kept = written.load_points(tmp_path)
    assert written.gradebook_cells(old, RUBRIC, kept)["written_score"] == "3"
    assert written.gradebook_cells(new, RUBRIC, kept)["written_score"] == "0"
    assert written.stale([new], kept) == ["zoe"] and written.stale([old], kept) == []


def test_written_questions_stay_out_of_the_code_fingerprint(tmp_path):
    text = (PROJECT / "instructor_tools/grade/rubric.toml").read_text(encoding="utf-8")
    changed = tmp_path / "rubric.toml"
    changed.write_text(text.replace("points = 4\nguide", "points = 5\nguide", 1),
                       encoding="utf-8")
    other = load_rubric(changed)
    assert other.written_max == RUBRIC.written_max + 1
    assert other.digest != RUBRIC.digest and other.code_digest == RUBRIC.code_digest


BAD_WRITTEN = {
    "id": ('id = "Bad-Id"', "id"),
    "field": ('colour = "red"', "unknown field"),
    "notebook": ('notebook = "Other.ipynb"', "notebook"),
    "points": ("points = 0", "points"),
    "guide": ('guide = " "', "guide"),
}


GOOD_WRITTEN = {"id": 'id = "q1"', "notebook": 'notebook = "Dropout.ipynb"',
                "heading": 'heading = "Inline Question 1"', "points": "points = 2",
                "guide": 'guide = "what earns the points"'}
ONE_ITEM = '[[item]]\nid = "x"\npoints = 1\ntests = ["bn_test"]\n'


@pytest.mark.parametrize("kind", sorted(BAD_WRITTEN))
def test_bad_written_entries_are_refused(tmp_path, kind):
    line, match = BAD_WRITTEN[kind]
    fields = dict(GOOD_WRITTEN, **{kind if kind in GOOD_WRITTEN else "extra": line})
    path = tmp_path / "rubric.toml"
    path.write_text(ONE_ITEM + "[[written]]\n" + "\n".join(fields.values()) + "\n",
                    encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        load_rubric(path)


def test_two_written_entries_for_one_heading_are_refused(tmp_path):
    twice = "\n".join(GOOD_WRITTEN[k] for k in ("notebook", "heading", "points", "guide"))
    path = tmp_path / "rubric.toml"
    path.write_text(ONE_ITEM + f'[[written]]\nid = "a"\n{twice}\n[[written]]\nid = "b"\n'
                    f"{twice}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="two"):
        load_rubric(path)


# ---------------------------------------------------------------------------
# Grading two submissions, then merging the TAs' points
# ---------------------------------------------------------------------------

ANSWERS = {"alice": "ALICE says: without $1/p$ the mean is $p\\,x$.",
           "bob": "BOB says: the activations shrink by a factor $p$ at training time."}


def _with_answer(files, text):
    nb = nbformat.reads(files["Dropout.ipynb"].decode("utf-8"), as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "markdown" and "BEGIN ANSWER" in c.source)
    cell.source = f"<!-- BEGIN ANSWER -->\n{text}\n<!-- END ANSWER -->"
    return dict(files, **{"Dropout.ipynb": nbformat.writes(nb).encode("utf-8")})


@pytest.fixture(scope="module")
def graded(tmp_path_factory, _course_folder):  # noqa: F811
    """(subs, OUT) after one --no-notebooks run over alice and bob."""
    root = tmp_path_factory.mktemp("written")
    subs, out = root / "subs", root / "out"
    subs.mkdir()
    solution = solution_files()
    for name, text in ANSWERS.items():
        write_zip(subs / f"{name}.zip", _with_answer(solution, text))
    assert cli.main(_args(subs, out)) == 0
    return subs, out


def _args(subs, out, *extra):
    return [str(subs), "--out", str(out), "--no-notebooks", "--no-pdf", "--quiet", "--timeout", "30",
            "--course", str(course_notebooks()), *extra]


def _copy(out, tmp_path):
    target = tmp_path / "out"
    shutil.copytree(out, target)
    return target


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _fill(template, target, changes=None):
    """The TAs' CSV: every row of template with full points and a comment, then changes
    applied: {(submission, question): points}."""
    rows = _rows(template)
    for row in rows:
        row["points"] = row["max_points"]
        row["comment"] = "<script>alert('ta')</script> well argued"
    for (who, qid), value in (changes or {}).items():
        row = next(r for r in rows if (r["submission"], r["question"]) == (who, qid))
        row["points"] = value
    with open(target, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=written.CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return target


def test_pages_and_csv_for_the_tas(graded):
    _, out = graded
    page = (out / "written" / "dropout_iq1.html").read_text(encoding="utf-8")
    assert "ALICE says" in page and "BOB says" in page
    assert "Model answer" in page and "Grading guide" in page
    assert "Without the division by $p$" in page  # the course's model answer
    index = (out / "written" / "index.html").read_text(encoding="utf-8")
    assert all(f"href='{q.id}.html'" in index for q in RUBRIC.written)
    rows = _rows(out / "written.csv")
    assert list(rows[0]) == written.CSV_COLUMNS
    assert len(rows) == 2 * len(RUBRIC.written) == 20
    assert {(r["submission"], r["question"]) for r in rows} == \
        {(s, q.id) for s in ANSWERS for q in RUBRIC.written}
    assert all(r["points"] == "" and r["comment"] == "" for r in rows)
    grades = {r["submission"]: r for r in _rows(out / "grades.csv")}
    for row in grades.values():
        assert row["written_score"] == "0" and row["written_graded"] == "0/10 questions"
        assert row["total"] == row["score"] and row["written_max"] == f"{RUBRIC.written_max:g}"
    feedback = (out / "feedback" / "alice.html").read_text(encoding="utf-8")
    assert "graded by the course staff" in feedback
    for question in RUBRIC.written:
        assert question.heading in feedback
    assert "not graded yet" in feedback and "guide" not in feedback.lower()


def test_full_points_give_the_total_and_reuse_the_code_results(graded, tmp_path, capsys):
    subs, out = graded
    out = _copy(out, tmp_path)
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / "results").iterdir()}
    filled = _fill(out / "written.csv", tmp_path / "filled.csv")
    capsys.readouterr()
    assert cli.main(_args(subs, out, "--written", str(filled))) == 0
    assert "2 reused" in capsys.readouterr().out
    assert {p: (p.stat().st_mtime_ns, p.read_bytes())
            for p in (out / "results").iterdir()} == before
    for row in _rows(out / "grades.csv"):
        assert float(row["written_score"]) == RUBRIC.written_max
        assert float(row["total"]) == float(row["score"]) + RUBRIC.written_max
        assert row["written_graded"] == "10/10 questions"
        assert row["written:dropout_iq1"] == f"{RUBRIC.written[7].points:g}"
    feedback = (out / "feedback" / "bob.html").read_text(encoding="utf-8")
    assert "well argued" in feedback and "<script>" not in feedback
    assert f"Written points: {RUBRIC.written_max:g} / {RUBRIC.written_max:g}" in feedback
    # The points are kept: a run without --written still counts them.
    assert cli.main(_args(subs, out)) == 0
    assert all(float(r["written_score"]) == RUBRIC.written_max
               for r in _rows(out / "grades.csv"))
    assert all(r["points"] for r in _rows(out / "written.csv"))


def test_empty_points_are_not_graded_yet(graded, tmp_path):
    subs, out = graded
    out = _copy(out, tmp_path)
    filled = _fill(out / "written.csv", tmp_path / "filled.csv",
                   {("alice", q.id): "" for q in RUBRIC.written[1:]})
    assert cli.main(_args(subs, out, "--written", str(filled))) == 0
    alice = {r["submission"]: r for r in _rows(out / "grades.csv")}["alice"]
    first = RUBRIC.written[0]
    assert alice["written_graded"] == "1/10 questions"
    assert float(alice["written_score"]) == first.points
    assert alice[f"written:{RUBRIC.written[1].id}"] == ""
    page = (out / "feedback" / "alice.html").read_text(encoding="utf-8")
    assert "not graded yet" in page and "1 of 10 questions graded so far" in page


def _bad(template, target, kind):
    """A filled CSV with one bad row of the given kind; returns its row number."""
    _fill(template, target)
    lines = target.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    cells = lines[3].split(",")  # row 4 as a spreadsheet shows it
    at = {name: header.index(name) for name in header}
    if kind == "over_maximum":
        cells[at["points"]] = str(float(cells[at["max_points"]]) + 1)
    elif kind == "negative":
        cells[at["points"]] = "-1"
    elif kind == "not_a_number":
        cells[at["points"]] = "three"
    elif kind == "unknown_submission":
        cells[at["submission"]] = "mallory"
    elif kind == "unknown_question":
        cells[at["question"]] = "dropout_iq9"
    elif kind == "duplicate":
        lines.append(lines[3])
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return len(lines)
    elif kind == "missing_column":
        lines = [",".join(c for i, c in enumerate(line.split(",")) if i != at["points"])
                 for line in lines]
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return 1
    lines[3] = ",".join(cells)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 4


BAD_KINDS = ["over_maximum", "negative", "not_a_number", "unknown_submission",
             "unknown_question", "duplicate", "missing_column"]
WHY = {"over_maximum": "above the maximum", "negative": "negative",
       "not_a_number": "not a number", "unknown_submission": "unknown submission",
       "unknown_question": "unknown question", "duplicate": "second row",
       "missing_column": "missing column"}


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_a_bad_csv_is_refused_and_nothing_written(graded, tmp_path, capsys, kind):
    subs, out = graded
    filled = tmp_path / "filled.csv"
    row = _bad(out / "written.csv", filled, kind)
    fresh = tmp_path / "fresh"
    assert cli.main(_args(subs, fresh, "--written", str(filled))) == 2
    err = capsys.readouterr().err
    assert f"row {row} " in err and WHY[kind] in err and "nothing was written" in err
    assert not fresh.exists()  # no grades.csv, feedback or results
    # In an OUT graded before, nothing changes either.
    existing = _copy(out, tmp_path)
    before = {p: p.read_bytes() for p in existing.rglob("*") if p.is_file()}
    assert cli.main(_args(subs, existing, "--written", str(filled))) == 2
    assert {p: p.read_bytes() for p in existing.rglob("*") if p.is_file()} == before


def test_every_bad_row_is_named(graded, tmp_path, capsys):
    subs, out = graded
    filled = _fill(out / "written.csv", tmp_path / "filled.csv",
                   {("alice", "dropout_iq1"): "99", ("bob", "bn_iq3"): "x"})
    assert cli.main(_args(subs, tmp_path / "fresh", "--written", str(filled))) == 2
    err = capsys.readouterr().err
    assert "(alice, dropout_iq1): points 99 is above the maximum 3" in err
    assert "(bob, bn_iq3): points 'x' is not a number" in err


def test_merge_of_shards_keeps_the_written_columns(graded, tmp_path, capsys):
    subs, out = graded
    filled = _fill(out / "written.csv", tmp_path / "filled.csv")
    shards = []
    for k, other in ((1, "bob"), (2, "alice")):
        shard = _copy(out, tmp_path / f"s{k}")  # the same zips: code results reused
        (shard / "grades.csv").unlink()
        (shard / "results" / f"{other}.json").unlink()  # graded by the other shard
        assert cli.main(_args(subs, shard, "--shard", f"{k}/2", "--written", str(filled))) == 0
        shards.append(shard)
    merged = tmp_path / "merged"
    capsys.readouterr()
    assert cli.main(["merge", *map(str, shards), "--out", str(merged), "--course",
                     str(course_notebooks())]) == 0
    rows = _rows(merged / "grades.csv")
    assert len(rows) == 2
    assert all(float(r["total"]) == float(r["score"]) + RUBRIC.written_max for r in rows)
    assert (merged / "written" / "dropout_iq1.html").is_file()
    bad = tmp_path / "bad.csv"
    _bad(out / "written.csv", bad, "over_maximum")
    again = tmp_path / "merged-again"
    assert cli.main(["merge", *map(str, shards), "--out", str(again), "--written",
                     str(bad)]) == 2
    assert not again.exists()


# ---------------------------------------------------------------------------
# The pages: hostile markdown, states, MathJax
# ---------------------------------------------------------------------------


def _result(name, answers):
    """A result dict as grade_one makes it, with Dropout's answers {label: (state, text)}."""
    return {"submission": name, "sha256": name, "score": 0, "status": "ok",
            "notebooks": [{"name": "Dropout.ipynb",
                           "answers": [(label, state, "") for label, (state, _) in
                                       answers.items()],
                           "answer_texts": {label: text for label, (_, text) in
                                            answers.items()}}]}


class _Elements(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


HOSTILE = {
    "script": "<script>alert(1)</script>",
    "iframe": '<iframe src="https://evil.example/"></iframe>',
    "javascript_link": "[click](javascript:alert(1)) <a href='javascript:alert(2)'>two</a>",
    "onerror": '<img src=x onerror="alert(1)"> <b onmouseover="alert(2)">bold</b>',
    "file_image": '<img src=file:///etc/passwd> <img src="file:///etc/passwd"> '
                  '![p](file:///etc/passwd) <a href="file:///etc/passwd">f</a>',
    "svg_style_object": "<svg onload=alert(1)></svg><style>body{display:none}</style>"
                        "<object data='file:///etc/passwd'></object>",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_markdown_never_reaches_a_page(tmp_path, kind):
    payload = f"Honest words $x^2$ **bold**.\n\n{HOSTILE[kind]}\n\nMore words."
    result = _result("eve", {IQ1: ("answered", payload)})
    written_pages.write_pages(tmp_path, [result], RUBRIC, course_notebooks(), mathjax=False)
    page = (tmp_path / "written" / "dropout_iq1.html").read_text(encoding="utf-8")
    assert "Honest words $x^2$" in page and "<strong>bold</strong>" in page
    parser = _Elements()
    parser.feed(page)
    tags = {tag for tag, _ in parser.found}
    assert not tags & {"script", "iframe", "img", "svg", "object", "embed"}
    assert [t for t, _ in parser.found].count("style") == 1  # the page's own
    for tag, attrs in parser.found:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        for name in ("href", "src", "data"):
            value = (attrs.get(name) or "").lower()
            assert not value.startswith(("javascript:", "file:")), (tag, attrs)
    for text in ("<script>alert", "<iframe", "<img", "onerror=", "onmouseover=", "onload=",
                 "javascript:", "file:///etc/passwd", "<svg", "<object"):
        assert text not in page, text
    csp = "default-src 'none'; style-src 'unsafe-inline'"
    assert csp in page and "script-src" not in page


EVIL = """<script>alert('x')</script>" onload="alert(2)" &amp;"""


def _evil_result():
    """A result dict with the hostile string in every field a page shows."""
    test = {"function": EVIL, "description": EVIL, "passed": False, "message": EVIL}
    return {
        "submission": EVIL, "score": 1, "max_score": 34, "status": "ok", "status_text": EVIL,
        "status_detail": EVIL, "outputs_reproduce": EVIL, "outside": [EVIL],
        "regions": [{"state": "forbidden", "description": EVIL,
                     "refusals": [{"line": 1, "why": EVIL, "text": EVIL}] * 2}],
        "items": [{"id": "x", "title": EVIL, "points": 1, "earned": 0, "passed": False,
                   "tests": [test], "related": EVIL, "hint": EVIL, "check": EVIL,
                   "check_passed": False}],
        "notebooks": [{"name": "Dropout.ipynb", "problems": [EVIL], "never_run": False,
                       "reexec": {"status": EVIL, "cells_run": 1, "seconds": 1,
                                  "differ": [[EVIL, EVIL]]},
                       "answers": [(IQ1, "answered", EVIL)], "answer_texts": {IQ1: "words"}}],
        "missing": [EVIL], "manifest": [EVIL], "skipped_members": [EVIL], "sha256": "s"}


def test_the_templates_escape_every_value(tmp_path):
    """Fails if the template set's autoescape is turned off: nothing escapes by hand."""
    escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&#34; onload=&#34;alert(2)&#34; " \
              "&amp;amp;"
    rows = [{"notebook": EVIL, "heading": EVIL, "state": EVIL, "detail": EVIL, "max": 2,
             "points": 1, "comment": EVIL}]
    page = feedback.render(_evil_result(), rows)
    written_pages.write_pages(tmp_path, [_evil_result()], RUBRIC, course_notebooks(),
                              points={EVIL: {"sha256": "s", "questions": {
                                  "dropout_iq1": {"points": 1.0, "comment": EVIL}}}},
                              mathjax=False)
    question = (tmp_path / "written" / "dropout_iq1.html").read_text(encoding="utf-8")
    index = (tmp_path / "written" / "index.html").read_text(encoding="utf-8")
    assert feedback.TEMPLATES.autoescape is True
    for text, at_least in ((page, 25), (question, 3)):
        assert "<script" not in text and 'onload="' not in text and "alert('x')" not in text
        assert text.count(escaped) >= at_least
    assert "<script" not in index


def test_every_state_is_shown(tmp_path):
    result = _result("carol", {IQ1: ("unanswered", "*Your answer:* (write here)"),
                               "Inline Question 2": ("empty", "")})
    written_pages.write_pages(tmp_path, [result], RUBRIC, course_notebooks(), mathjax=False)
    folder = tmp_path / "written"
    assert "still the prompt" in (folder / "dropout_iq1.html").read_text(encoding="utf-8")
    assert "empty" in (folder / "dropout_iq2.html").read_text(encoding="utf-8")
    assert "missing" in (folder / "dropout_iq3.html").read_text(encoding="utf-8")
    assert "MathJax was not found" in (folder / "index.html").read_text(encoding="utf-8")


@pytest.mark.skipif(written_pages.find_mathjax() is None, reason="no MathJax 2.7 installed")
def test_a_local_mathjax_is_the_only_script(tmp_path):
    result = _result("dave", {IQ1: ("answered", "$\\frac{1}{p}$ <script>alert(1)</script>")})
    written_pages.write_pages(tmp_path, [result], RUBRIC, course_notebooks())
    folder = tmp_path / "written"
    assert (folder / "mathjax" / "MathJax.js").is_file()
    assert (folder / "mathjax" / "config" / "Safe.js").is_file()
    parser = _Elements()
    parser.feed((folder / "dropout_iq1.html").read_text(encoding="utf-8"))
    scripts = [attrs.get("src", "") for tag, attrs in parser.found if tag == "script"]
    assert scripts[0] == "mathjax-config.js" and len(scripts) == 2
    assert scripts[1].startswith("mathjax/MathJax.js?config=") and scripts[1].endswith(",Safe")
    meta = next(a for t, a in parser.found if a.get("http-equiv") == "Content-Security-Policy")
    assert "script-src 'self';" in meta["content"] and "default-src 'none'" in meta["content"]
