"""The grader prints the submitted notebooks (instructor_tools/grade/pdf.py): a PDF with the
student's answers and outputs, sanitized HTML where Chromium is missing, nothing hostile in
either, Chromium boxed (no root, no network, no host files) and ``--no-pdf``.

The PDF tests need Chromium, MathJax 2.7 and pdftotext (poppler-utils); without them they
skip, unless REQUIRE_PDF_TOOLS=1 (CI), where that is a failure. The HTML fallback and the
flag need none of them.
"""
import html.parser
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from instructor_tools.grade import cli, isolation
from instructor_tools.grade import grade as grading
from instructor_tools.grade import pdf
from instructor_tools.grade.rubric import load_rubric
from instructor_tools.grade.sandbox import Limits, Sandbox, detect
from student_tools import notebook_pdf
from student_tools.markers import ANSWER_BEGIN, ANSWER_END
from grade_fixtures import solution_files, write_course, write_zip

KIND = detect()
RUBRIC = load_rubric()
ANSWER = {"BatchNormalization.ipynb": "Zebras normalize their stripes per mini-batch.",
          "Dropout.ipynb": "Owls drop half their feathers at training time only."}
OUTPUT = "forty-two cells of output"
# document.write of two halves: the escaped source shows the halves, a run the whole.
RAN = ("SCRIPTRAN", "ONERRORRAN", "JSLINKRAN", "OUTPUTSCRIPTRAN", "JAVASCRIPTOUTPUTRAN")
SECRET = "TOP-SECRET-GRADER-FILE-6b1f"


def _require(condition, why):
    if not condition:
        if os.environ.get("REQUIRE_PDF_TOOLS") == "1":
            pytest.fail(f"REQUIRE_PDF_TOOLS=1 but {why}")
        pytest.skip(why)


def _pdf_tools_or_skip():
    browser, mathjax, why = pdf.find_tools()
    _require(browser is not None and mathjax is not None, why or "no Chromium or MathJax")
    _require(shutil.which("pdftotext") is not None, "no pdftotext (apt-get install poppler-utils)")


def pdf_text(path):
    done = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                          text=True, timeout=60, check=True)
    return done.stdout


def notebook(name, extra_markdown="", extra_outputs=()):
    """A small notebook as Restart & Run All leaves it: a heading with math, an answer,
    a code cell with its output."""
    nb = new_notebook(cells=[
        new_markdown_cell(f"# {Path(name).stem}\n\n$\\hat{{x}} = \\frac{{x - \\mu}}{{\\sigma}}$"),
        new_markdown_cell(f"**Question:** why?\n\n{ANSWER_BEGIN}\n{ANSWER[name]}\n{ANSWER_END}"
                          + (f"\n\n{extra_markdown}" if extra_markdown else "")),
        new_code_cell("print('forty-two cells of output')", execution_count=1,
                      outputs=[new_output("stream", name="stdout", text=OUTPUT + "\n"),
                               *extra_outputs]),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nbformat.writes(nb).encode("utf-8")


def hostile_notebooks(secret):
    """What a student (or a notebook from anywhere) could put in to make the grader's PDF or
    HTML show local files or run code: markdown and outputs."""
    url = secret.as_uri()
    markdown = "\n".join([
        "<script>document.write('SCRIPT' + 'RAN')</script>",
        '<iframe src="file:///etc/passwd" width="800" height="400"></iframe>',
        f'<iframe src="{url}" width="800" height="200"></iframe>',
        f"<img src=\"file:///etc/passwd\" onerror=\"document.write('ONERROR' + 'RAN')\">",
        f'<img src="{url}">',
        "<a href=\"javascript:document.write('JSLINK' + 'RAN')\">a javascript link</a>",
        f'<object data="{url}" width="800" height="200"></object>',
        '<meta http-equiv="refresh" content="0; url=file:///etc/passwd">',
    ])
    outputs = [
        new_output("display_data", data={
            "text/html": (f'<iframe src="{url}"></iframe><iframe src="file:///etc/passwd">'
                          "</iframe><script>document.write('OUTPUTSCRIPT' + 'RAN')</script>"
                          "<p>html output survives</p>"),
            "text/plain": "<IPython.core.display.HTML object>"}),
        new_output("display_data", data={
            "application/javascript": "document.write('JAVASCRIPTOUTPUT' + 'RAN')",
            "text/plain": "<IPython.core.display.Javascript object>"}),
    ]
    return {name: notebook(name, markdown, outputs) for name in ANSWER}


def honest_notebooks():
    return {name: notebook(name) for name in ANSWER}


def options(out, **overrides):
    base = dict(out=Path(out), rubric=RUBRIC, run_notebooks=False, pdf=True,
                sandbox=Sandbox(KIND),
                budget=isolation.Budget(memory_bytes=4 * 2**30, deadline_seconds=240),
                limits=Limits(cpu_seconds=20, wall_seconds=30, memory_bytes=2 * 2**30,
                              processes=48),
                op_seconds=5, import_seconds=5)
    base.update(overrides)
    return grading.Options(**base)


def make(tmp_path, files, name="student", verdict="yes"):
    """pdf.make on a zip of files, as grade_one's hook calls it."""
    zip_path = write_zip(tmp_path / f"{name}.zip", files)
    result = {"submission": name, "sha256": "0" * 64, "outputs_reproduce": verdict}
    return pdf.make(zip_path, result, options(tmp_path / "out"))


class _Tags(html.parser.HTMLParser):
    """Every start tag (name, attributes) of a page."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def assert_safe_page(page, mathjax_src=None):
    """No script but MathJax and its configuration, no frame or object, no event handler,
    no file: or javascript: URL but MathJax's own; the hostile markup shown as text."""
    tags = _Tags(page).tags
    scripts = [attrs.get("src") for tag, attrs in tags if tag == "script"]
    assert scripts == ([notebook_pdf.MATHJAX_CONFIG_FILE, mathjax_src] if mathjax_src else [])
    assert not {tag for tag, _ in tags} & {"iframe", "frame", "object", "embed", "link",
                                          "base", "form", "svg", "applet", "portal"}
    for tag, attrs in tags:
        for key, value in attrs.items():
            assert not key.lower().startswith("on"), (tag, key, value)
            if re.search(r"(file|javascript):", value or "", re.IGNORECASE):
                assert (tag, key, value) in (("script", "src", mathjax_src), (
                    "meta", "content", notebook_pdf.CONTENT_SECURITY_POLICY))
    assert ("meta", {"http-equiv": "Content-Security-Policy",
                     "content": notebook_pdf.CONTENT_SECURITY_POLICY}) in tags
    assert "&lt;iframe src=" in page and "&lt;script&gt;" in page
    assert SECRET not in page and "root:x:0:0" not in page


def _secret(tmp_path):
    """A private file of the grading machine that a notebook names by its file: URL."""
    secret = tmp_path / "private" / "grader-key.txt"
    secret.parent.mkdir()
    secret.write_text(SECRET + "\n")
    return secret


# ---------------------------------------------------------------------------
# Through grade_one: OUT/notebooks/<name>.pdf, recorded in the result
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The course as committed (HEAD), as test_grade.py builds it."""
    return write_course(tmp_path_factory.mktemp("course"))


def test_grade_one_prints_the_submitted_notebooks(tmp_path, course):
    _pdf_tools_or_skip()
    files = {**solution_files(notebooks=False), **honest_notebooks()}
    zip_path = write_zip(tmp_path / "ada.zip", files)
    opts = options(tmp_path / "out", course=course, course_notebooks=course)
    result = grading.grade_one(zip_path, opts)
    record = result["pdf"]
    assert record["kind"] == "pdf", record
    assert record["path"] == "notebooks/ada.pdf" and record["why"] == ""
    assert record["outputs_reproduce"] == result["outputs_reproduce"]
    assert set(record["notebooks"]) == set(ANSWER) and record["pages"] >= 2
    assert record["sha256"] == result["sha256"]
    text = pdf_text(tmp_path / "out" / "notebooks" / "ada.pdf")
    flat = " ".join(text.split())
    for sentence in ANSWER.values():  # both notebooks' answers, merged in one PDF
        assert sentence in flat
    assert OUTPUT in flat
    assert f"Outputs reproduce: {result['outputs_reproduce']}" in flat
    assert "\\frac" not in text and "\\hat" not in text  # MathJax typeset the math
    # The result JSON on disk says so, for the TAs, next to the verdict.
    saved = json.loads((tmp_path / "out" / "results" / "ada.json").read_text())
    assert saved["pdf"]["path"] == "notebooks/ada.pdf" and "cached" not in saved
    assert "Notebook PDFs (notebooks/): 1 printed" == pdf.summary([saved])
    # A re-run reuses the result and its PDF; a PDF gone missing is printed again.
    again = grading.grade_one(zip_path, opts)
    assert again.get("cached") and again["pdf"]["seconds"] == record["seconds"]
    (tmp_path / "out" / "notebooks" / "ada.pdf").unlink()
    again = grading.grade_one(zip_path, opts)
    assert again.get("cached") and (tmp_path / "out" / "notebooks" / "ada.pdf").is_file()


def test_options_default_and_no_pdf_flag(tmp_path, monkeypatch):
    """Options.pdf is off unless the command line turns it on; --no-pdf turns it off."""
    assert grading.Options(out=tmp_path, rubric=RUBRIC).pdf is False
    subs = tmp_path / "subs"
    subs.mkdir()

    class Stop(Exception):
        pass

    def grade_folder(zips, opts, **kwargs):
        raise Stop(opts)

    monkeypatch.setattr(cli, "grade_folder", grade_folder)
    monkeypatch.setattr(cli, "preflight", lambda opts: [])
    for flags, wanted in (([], True), (["--no-pdf"], False)):
        with pytest.raises(Stop) as stopped:
            cli.main([str(subs), "--out", str(tmp_path / "out"), "--quiet", *flags])
        assert stopped.value.args[0].pdf is wanted


# ---------------------------------------------------------------------------
# Without Chromium: the sanitized HTML, and the result says why
# ---------------------------------------------------------------------------


def test_without_chromium_the_sanitized_html_is_written_and_said(tmp_path, monkeypatch):
    missing = tmp_path / "no-such-chromium"
    monkeypatch.setenv(notebook_pdf.BROWSER_ENV, str(missing))  # the lookup finds nothing
    # The verdict can quote what a notebook printed: it is shown as text, like the rest.
    verdict = "no (Dropout.ipynb: <script>document.write('BANNER' + 'RAN')</script>)"
    record = make(tmp_path, honest_notebooks(), verdict=verdict)
    assert record["kind"] == "html" and record["path"] == "notebooks/student.html"
    assert record["why"].startswith("HTML instead of a PDF: ")
    assert f"{notebook_pdf.BROWSER_ENV} {str(missing)!r}" in record["why"]
    folder = tmp_path / "out" / "notebooks"
    assert sorted(p.name for p in folder.iterdir()) == [notebook_pdf.MATHJAX_CONFIG_FILE,
                                                        "student.html"]
    assert (folder / notebook_pdf.MATHJAX_CONFIG_FILE).read_text() == \
        notebook_pdf.MATHJAX_CONFIG_JS
    page = (folder / "student.html").read_text(encoding="utf-8")
    for sentence in ANSWER.values():
        assert sentence in page
    assert OUTPUT in page
    assert "Outputs reproduce: no (Dropout.ipynb: &lt;script&gt;document.write(" in page
    _, mathjax, _ = pdf.find_tools()
    scripts = [attrs.get("src") for tag, attrs in _Tags(page).tags if tag == "script"]
    assert scripts == ([notebook_pdf.MATHJAX_CONFIG_FILE, notebook_pdf.mathjax_src(mathjax)]
                       if mathjax else [])
    summary = pdf.summary([{"pdf": record}])
    assert summary.startswith("Notebook PDFs (notebooks/): 0 printed; 1 as sanitized HTML only")
    assert notebook_pdf.BROWSER_ENV in summary


def test_without_mathjax_the_html_has_no_script_at_all(tmp_path, monkeypatch):
    monkeypatch.setenv(notebook_pdf.MATHJAX_ENV, str(tmp_path / "no-such-mathjax"))
    record = make(tmp_path, honest_notebooks())
    assert record["kind"] == "html" and notebook_pdf.MATHJAX_ENV in record["why"]
    page = (tmp_path / "out" / record["path"]).read_text(encoding="utf-8")
    assert [tag for tag, _ in _Tags(page).tags if tag == "script"] == []
    assert ANSWER["Dropout.ipynb"] in page and "\\frac" in page  # the TeX as written


def test_a_notebook_that_cannot_be_read_is_left_out_and_named(tmp_path, monkeypatch):
    monkeypatch.setenv(notebook_pdf.BROWSER_ENV, str(tmp_path / "no-such-chromium"))
    files = {**honest_notebooks(), "BatchNormalization.ipynb": b"{not a notebook"}
    record = make(tmp_path, files)
    assert record["kind"] == "html"
    assert "not printed: BatchNormalization.ipynb: " in record["why"]
    page = (tmp_path / "out" / record["path"]).read_text(encoding="utf-8")
    assert ANSWER["Dropout.ipynb"] in page and ANSWER["BatchNormalization.ipynb"] not in page


def test_a_refused_zip_has_nothing_to_print(tmp_path):
    (tmp_path / "broken.zip").write_bytes(b"not a zip")
    record = pdf.make(tmp_path / "broken.zip", {"submission": "broken"},
                      options(tmp_path / "out"))
    assert record["kind"] == "none" and "corrupt_zip" in record["why"]
    assert not (tmp_path / "out" / "notebooks").exists()


# ---------------------------------------------------------------------------
# Hostile notebooks
# ---------------------------------------------------------------------------


def test_hostile_content_reaches_neither_the_html(tmp_path, monkeypatch):
    monkeypatch.setenv(notebook_pdf.BROWSER_ENV, str(tmp_path / "no-such-chromium"))
    record = make(tmp_path, hostile_notebooks(_secret(tmp_path)))
    assert record["kind"] == "html", record
    page = (tmp_path / "out" / record["path"]).read_text(encoding="utf-8")
    _, mathjax, _ = pdf.find_tools()
    assert_safe_page(page, notebook_pdf.mathjax_src(mathjax) if mathjax else None)
    assert "html output survives" in page and "a javascript link" in page
    for marker in RAN:  # escaped source shows the halves, never the whole
        assert marker not in page


def test_hostile_content_reaches_neither_the_pdf(tmp_path):
    _pdf_tools_or_skip()
    record = make(tmp_path, hostile_notebooks(_secret(tmp_path)))
    assert record["kind"] == "pdf", record
    text = pdf_text(tmp_path / "out" / record["path"])
    compact = re.sub(r"\s+", "", text)  # a marker broken over two lines is still found
    assert "root:x:0:0" not in text and "root:" not in text
    assert SECRET not in compact
    for marker in RAN:
        assert marker not in compact, marker
    # The rest is printed as usual, the hostile markup as the text it is.
    flat = " ".join(text.split())
    assert ANSWER["Dropout.ipynb"] in flat and "html output survives" in flat
    assert "<iframe" in text and "a javascript link" in text


# ---------------------------------------------------------------------------
# Chromium's box
# ---------------------------------------------------------------------------


@pytest.mark.skipif(KIND != "bwrap", reason="needs bubblewrap as root")
def test_chromium_runs_boxed_without_root_network_or_host_files(tmp_path, monkeypatch):
    """A stand-in browser reports where it runs and fails, so the report lands in why."""
    place = Path(tempfile.mkdtemp(prefix="fake-chromium-"))
    try:
        place.chmod(0o755)
        browser = place / "chromium"
        browser.write_text(
            "#!/bin/sh\n"
            'echo "uid=$(id -u) ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d \' \' '
            '| tr \'\\n\' ,) passwd=$(test -e /etc/passwd && echo yes || echo no) '
            f'home=$HOME secret=$(test -e {_secret(tmp_path)} && echo yes || echo no) '
            f'grader=$(test -e {pdf.__file__} && echo yes || echo no)" >&2\n'
            "exit 3\n")
        browser.chmod(0o755)
        monkeypatch.setenv(notebook_pdf.BROWSER_ENV, str(browser))
        _, mathjax, _ = pdf.find_tools()
        if mathjax is None:
            pytest.skip("no MathJax 2.7: Chromium is not started without it")
        record = make(tmp_path, honest_notebooks())
    finally:
        shutil.rmtree(place)
    assert record["kind"] == "html"
    found = dict(re.findall(r"(\w+)=(\S*)", record["why"].split("(exit 3): ", 1)[1]))
    assert int(found["uid"]) >= isolation.UID_FIRST  # a fresh uid, not root
    assert found["ifaces"] == "lo,"  # its own network namespace: the loopback only
    # The host's files are absent: its passwd, a private file, the grader's own code.
    assert (found["passwd"], found["secret"], found["grader"]) == ("no", "no", "no")
    assert found["home"] == "/tmp/home"  # the box's own tmpfs
    assert record["isolation"][0] == pdf.describe("bwrap")
    assert any(line.startswith("uid: fresh uid") for line in record["isolation"])
