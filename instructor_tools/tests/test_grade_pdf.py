"""The grader prints the submitted notebooks (instructor_tools/grade/pdf.py): a PDF with the
student's answers and outputs, sanitized HTML where Chromium is missing, nothing hostile in
either, Chromium boxed (no root, no network, no host files) and ``--no-pdf``.

The PDF tests need Chromium, MathJax 2.7 and pdftotext (poppler-utils); without them they
skip, unless REQUIRE_PDF_TOOLS=1 (CI), where that is a failure. The HTML fallback and the
flag need none of them.
"""
import ast
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import (new_code_cell, new_markdown_cell, new_notebook, new_output,
                         new_raw_cell)

from instructor_tools.grade import cli, isolation
from instructor_tools.grade import grade as grading
from instructor_tools.grade import pdf, pdf_page
from instructor_tools.grade.rubric import load_rubric
from instructor_tools.grade.sandbox import Limits, Sandbox, detect
from student_tools.markers import ANSWER_BEGIN, ANSWER_END
from grade_fixtures import solution_files, write_course, write_zip

KIND = detect()
RUBRIC = load_rubric()
ANSWER = {"BatchNormalization.ipynb": "Zebras normalize their stripes per mini-batch.",
          "Dropout.ipynb": "Owls drop half their feathers at training time only."}
OUTPUT = "forty-two cells of output"
# document.write of two halves (see _ran): the escaped source shows the halves, a run the whole.
RAN = ("SCRIPTRAN", "ONERRORRAN", "JSLINKRAN", "SVGRAN", "OUTPUTSCRIPTRAN",
       "JAVASCRIPTOUTPUTRAN", "MERMAIDRAN", "MARKDOWNOUTPUTRAN", "WIDGETRAN", "RAWCELLRAN",
       "TITLERAN")
SECRET = "TOP-SECRET-GRADER-FILE-6b1f"
# A 1x1 PNG, as matplotlib's outputs are embedded: it must survive sanitizing.
PNG_1X1 = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJ"
           "RU5ErkJggg==")
WEB_LINK = '<a href="https://arxiv.org/abs/1502.03167">web link</a>'


def _ran(marker):
    """Script that writes marker when it runs; its source never holds marker whole."""
    return f"document.write('{marker[:-3]}' + 'RAN')"


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


def notebook(name, extra_markdown="", extra_outputs=(), extra_cells=(), title=None):
    """A small notebook as Restart & Run All leaves it: a heading with math, an answer,
    a code cell with its output."""
    nb = new_notebook(cells=[
        new_markdown_cell(f"# {Path(name).stem}\n\n$\\hat{{x}} = \\frac{{x - \\mu}}{{\\sigma}}$"),
        new_markdown_cell(f"**Question:** why?\n\n{ANSWER_BEGIN}\n{ANSWER[name]}\n{ANSWER_END}"
                          + (f"\n\n{extra_markdown}" if extra_markdown else "")),
        new_code_cell("print('forty-two cells of output')", execution_count=1,
                      outputs=[new_output("stream", name="stdout", text=OUTPUT + "\n"),
                               *extra_outputs]),
        *extra_cells,
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    if title is not None:
        nb.metadata["title"] = title
    return nbformat.writes(nb).encode("utf-8")


def hostile_notebooks(secret):
    """What a student (or a notebook from anywhere) could put in to make the grader's PDF or
    HTML show local files or run code: markdown, outputs of every kind, a raw HTML cell and
    the metadata; next to formatting, a web link and an image that must survive."""
    url = secret.as_uri()
    markdown = "\n".join([
        f"<script>{_ran('SCRIPTRAN')}</script>",
        '<iframe src="file:///etc/passwd" width="800" height="400"></iframe>',
        f'<iframe src="{url}" width="800" height="200"></iframe>',
        f"<img src=\"file:///etc/passwd\" onerror=\"{_ran('ONERRORRAN')}\">",
        f'<img src="{url}">',
        f"<a href=\"javascript:{_ran('JSLINKRAN')}\">a javascript link</a>",
        f'<object data="{url}" width="800" height="200"></object>',
        f'<embed src="{url}" width="800" height="200">',
        f'<link rel="stylesheet" href="{url}">',
        '<meta http-equiv="refresh" content="0; url=file:///etc/passwd">',
        f"<svg><script>{_ran('SVGRAN')}</script></svg>",
        "",
        "<b>bold survives</b> and a [web link](https://arxiv.org/abs/1502.03167) too.",
    ])
    outputs = [new_output("display_data", data=data) for data in (
        {"text/html": (f'<iframe src="{url}"></iframe><iframe src="file:///etc/passwd">'
                       f"</iframe><script>{_ran('OUTPUTSCRIPTRAN')}</script>"
                       "<p>html output survives</p>"),
         "text/plain": "<IPython.core.display.HTML object>"},
        {"application/javascript": _ran("JAVASCRIPTOUTPUTRAN"),
         "text/plain": "<IPython.core.display.Javascript object>"},
        {"text/vnd.mermaid": f"<script>{_ran('MERMAIDRAN')}</script>"},
        {"text/markdown": f"<script>{_ran('MARKDOWNOUTPUTRAN')}</script>"},
        {"application/vnd.jupyter.widget-view+json": {"model_id": "x"},
         "text/html": f"<script>{_ran('WIDGETRAN')}</script>"},
        {"image/png": PNG_1X1, "text/plain": "<Figure>"},
    )]
    raw = new_raw_cell(f"<script>{_ran('RAWCELLRAN')}</script>",
                       metadata={"raw_mimetype": "text/html"})
    title = f"</title><script>{_ran('TITLERAN')}</script>"
    return {name: notebook(name, markdown, outputs, [raw], title) for name in ANSWER}


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
    assert scripts == ([pdf_page.MATHJAX_CONFIG_FILE, mathjax_src] if mathjax_src else [])
    assert not {tag for tag, _ in tags} & {"iframe", "frame", "object", "embed", "link",
                                          "base", "form", "svg", "applet", "portal"}
    for tag, attrs in tags:
        for key, value in attrs.items():
            assert not key.lower().startswith("on"), (tag, key, value)
            if re.search(r"(file|javascript):", value or "", re.IGNORECASE):
                assert (tag, key, value) in (("script", "src", mathjax_src), (
                    "meta", "content", pdf_page.CONTENT_SECURITY_POLICY))
    assert ("meta", {"http-equiv": "Content-Security-Policy",
                     "content": pdf_page.CONTENT_SECURITY_POLICY}) in tags
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
    monkeypatch.setenv(pdf.BROWSER_ENV, str(missing))  # the lookup finds nothing
    # The verdict can quote what a notebook printed: it is shown as text, like the rest.
    verdict = "no (Dropout.ipynb: <script>document.write('BANNER' + 'RAN')</script>)"
    record = make(tmp_path, honest_notebooks(), verdict=verdict)
    assert record["kind"] == "html" and record["path"] == "notebooks/student.html"
    assert record["why"].startswith("HTML instead of a PDF: ")
    assert f"{pdf.BROWSER_ENV} {str(missing)!r}" in record["why"]
    folder = tmp_path / "out" / "notebooks"
    assert sorted(p.name for p in folder.iterdir()) == [pdf_page.MATHJAX_CONFIG_FILE,
                                                        "student.html"]
    assert (folder / pdf_page.MATHJAX_CONFIG_FILE).read_text() == \
        pdf_page.MATHJAX_CONFIG_JS
    page = (folder / "student.html").read_text(encoding="utf-8")
    for sentence in ANSWER.values():
        assert sentence in page
    assert OUTPUT in page
    assert "Outputs reproduce: no (Dropout.ipynb: &lt;script&gt;document.write(" in page
    _, mathjax, _ = pdf.find_tools()
    scripts = [attrs.get("src") for tag, attrs in _Tags(page).tags if tag == "script"]
    assert scripts == ([pdf_page.MATHJAX_CONFIG_FILE, pdf_page.mathjax_src(mathjax)]
                       if mathjax else [])
    summary = pdf.summary([{"pdf": record}])
    assert summary.startswith("Notebook PDFs (notebooks/): 0 printed; 1 as sanitized HTML only")
    assert pdf.BROWSER_ENV in summary


def test_without_mathjax_the_html_has_no_script_at_all(tmp_path, monkeypatch):
    monkeypatch.setenv(pdf.MATHJAX_ENV, str(tmp_path / "no-such-mathjax"))
    record = make(tmp_path, honest_notebooks())
    assert record["kind"] == "html" and pdf.MATHJAX_ENV in record["why"]
    page = (tmp_path / "out" / record["path"]).read_text(encoding="utf-8")
    assert [tag for tag, _ in _Tags(page).tags if tag == "script"] == []
    assert ANSWER["Dropout.ipynb"] in page and "\\frac" in page  # the TeX as written


def test_a_notebook_that_cannot_be_read_is_left_out_and_named(tmp_path, monkeypatch):
    monkeypatch.setenv(pdf.BROWSER_ENV, str(tmp_path / "no-such-chromium"))
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
    monkeypatch.setenv(pdf.BROWSER_ENV, str(tmp_path / "no-such-chromium"))
    record = make(tmp_path, hostile_notebooks(_secret(tmp_path)))
    assert record["kind"] == "html", record
    page = (tmp_path / "out" / record["path"]).read_text(encoding="utf-8")
    _, mathjax, _ = pdf.find_tools()
    assert_safe_page(page, pdf_page.mathjax_src(mathjax) if mathjax else None)
    for marker in RAN:  # escaped source shows the halves, never the whole
        assert marker not in page
    # Scripts only by src (none inline); the policy first in <head>, governing all after it.
    assert not "".join(re.findall(r"<script\b[^>]*>(.*?)</script>", page, re.S)).strip()
    tags = _Tags(page).tags
    assert tags[tags.index(("head", {})) + 1] == (
        "meta", {"http-equiv": "Content-Security-Policy",
                 "content": pdf_page.CONTENT_SECURITY_POLICY})
    assert "default-src 'none'" in pdf_page.CONTENT_SECURITY_POLICY
    assert "img-src data:;" in pdf_page.CONTENT_SECURITY_POLICY
    # What the student wrote is still there: formatting rendered, hostile markup as text.
    assert "<b>bold survives</b>" in page and WEB_LINK in page
    assert "html output survives" in page and "a javascript link" in page
    assert f"data:image/png;base64,{PNG_1X1}" in page


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
    assert "bold survives" in flat and "<iframe" in text and "a javascript link" in text
    assert "\\frac" not in text  # MathJax still typesets the math


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
        monkeypatch.setenv(pdf.BROWSER_ENV, str(browser))
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


# ---------------------------------------------------------------------------
# Where Chromium and MathJax come from; the sandboxed script stands alone
# ---------------------------------------------------------------------------


def _mathjax_dir(folder, config=pdf_page.MATHJAX_CONFIGS[0]):
    """A MathJax 2.7 tree as much as the lookup looks at: MathJax.js and one config file."""
    (folder / "config").mkdir(parents=True)
    (folder / "MathJax.js").write_text('MathJax.version="2.7.9";\n')
    (folder / "config" / f"{config}.js").write_text("")
    return folder / "MathJax.js"


def _not_executable(folder):
    (folder / "chrome").write_text("#!/bin/sh\n")
    return folder / "chrome"


BAD_PATHS = [
    pytest.param(pdf.BROWSER_ENV, lambda t: t / "Google Chrome", "there is no such file",
                 id="browser-missing"),
    pytest.param(pdf.BROWSER_ENV, lambda t: t, "it is a folder", id="browser-folder"),
    pytest.param(pdf.BROWSER_ENV, _not_executable, "it is not executable",
                 id="browser-not-executable"),
    pytest.param(pdf.MATHJAX_ENV, lambda t: t / "MathJax.js", "there is no such file",
                 id="mathjax-missing"),
    pytest.param(pdf.MATHJAX_ENV, lambda t: t, "that folder has no MathJax.js",
                 id="mathjax-folder-without-it"),
    pytest.param(pdf.MATHJAX_ENV, lambda t: _mathjax_dir(t / "mj").parent / "config" /
                 f"{pdf_page.MATHJAX_CONFIGS[0]}.js",
                 f"it is '{pdf_page.MATHJAX_CONFIGS[0]}.js'", id="mathjax-wrong-file"),
    pytest.param(pdf.MATHJAX_ENV, lambda t: (t / "MathJax.js").write_text("") or t / "MathJax.js",
                 "its folder has neither config/TeX-AMS_CHTML-full.js nor "
                 "config/TeX-AMS-MML_HTMLorMML-full.js", id="mathjax-without-config"),
]


@pytest.mark.parametrize("variable, make_path, why", BAD_PATHS)
def test_a_variable_naming_a_wrong_path_is_said_and_that_tool_missing(tmp_path, variable,
                                                                      make_path, why):
    path = make_path(tmp_path)
    browser, mathjax, said = pdf.find_tools({variable: str(path)})
    assert (browser if variable == pdf.BROWSER_ENV else mathjax) is None
    expected = ("the path of a Chrome, Chromium or Edge executable"
                if variable == pdf.BROWSER_ENV else "MathJax 2.7's MathJax.js")
    assert f"{variable} {str(path)!r}: expected {expected}" in said
    assert f", but {why}" in said, said


def test_tools_named_by_the_environment_win_over_the_usual_places(tmp_path, monkeypatch):
    browser = tmp_path / "bin" / "my-chromium"
    browser.parent.mkdir()
    browser.write_text("#!/bin/sh\n")
    browser.chmod(0o755)
    mathjax = _mathjax_dir(tmp_path / "my-mathjax")
    monkeypatch.setenv("PATH", str(browser.parent))  # a command name is looked up on PATH
    for named in (str(mathjax), str(mathjax.parent)):  # MathJax.js or its folder
        assert pdf.find_tools({pdf.BROWSER_ENV: browser.name, pdf.MATHJAX_ENV: named}) == (
            str(browser), mathjax.resolve(), "")


def test_nothing_found_names_the_install_and_both_variables(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(pdf, "MATHJAX_SYSTEM_PATHS", ())
    monkeypatch.setattr(pdf, "_pip_mathjax", lambda: None)
    browser, mathjax, why = pdf.find_tools({})
    assert (browser, mathjax) == (None, None)
    assert why == (f"no Chromium browser and no MathJax 2.7 found on the grading machine "
                   f"(install with `{pdf.INSTALL_HINT}`, or set {pdf.BROWSER_ENV} / "
                   f"{pdf.MATHJAX_ENV})")


def test_mathjax_from_the_pip_package_is_found_and_configured(tmp_path, monkeypatch):
    """jupyter-server-mathjax ships a trimmed MathJax 2.7 with only the HTML-CSS config."""
    static = tmp_path / "site" / pdf.MATHJAX_PIP_PACKAGE / "static"
    mathjax = _mathjax_dir(static, config=pdf_page.MATHJAX_CONFIGS[1])
    (static.parent / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    # A copy imported earlier in this process (the grader's TA pages use it) would win.
    monkeypatch.delitem(sys.modules, pdf.MATHJAX_PIP_PACKAGE, raising=False)
    monkeypatch.setattr(pdf, "MATHJAX_SYSTEM_PATHS", ())
    assert pdf.find_tools({})[1] == mathjax
    assert pdf_page.mathjax_src(mathjax) == (
        mathjax.resolve().as_uri() + f"?config={pdf_page.MATHJAX_CONFIGS[1]},Safe")


def test_the_sandboxed_script_imports_nothing_of_the_project():
    """pdf.py runs pdf_page.py as a script in a box where the project is hidden."""
    tree = ast.parse(Path(pdf_page.__file__).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert imported <= {"argparse", "copy", "sys", "pathlib", "bleach", "bs4", "nbformat",
                        "nbconvert", "traitlets", "pypdf"}, imported
