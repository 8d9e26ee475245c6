"""OUT/written/: one page per written question for the TAs, and an index.

Each page shows every submission's answer to one question (answered, empty, still the
prompt, missing), rendered as markdown, beside the question, the grading guide of the
rubric and the model answer of the course's (solution) notebook.

The answers are the students' text, so every page is built like the feedback pages, plus
what markdown needs:
- markdown is rendered by nbconvert's mistune renderer (it leaves $...$ math alone), then
  sanitized by bleach with a short allow-list (``clean``): formatting, lists, tables, code,
  links to the web only. Anything else is stripped: script, iframe, img, style, on*
  attributes, javascript: and file: URLs, ids (which could shadow MathJax's own elements);
- the pages render through the grader's one template set (feedback.TEMPLATES, templates/)
  with autoescape: every other string from a submission is HTML-escaped, and only the
  sanitized markdown is passed on as it is (``|safe`` in written_question.html);
- the only script is a local MathJax 2.7 (``find_mathjax``: CS231N_MATHJAX, the pip package
  jupyter-server-mathjax, or Debian's libjs-mathjax), copied next to the pages (so OUT can
  be moved or served as it is) with its configuration in a file, and with its Safe
  extension (no \\href to javascript: in math). The Content-Security-Policy allows scripts
  from the pages' own folder only ('self'), no inline script, no frame, no image but data:
  URLs. Without MathJax the pages have no script at all and say that math is shown as TeX.
"""
import html
import os
import shutil
from pathlib import Path

import nbformat

from instructor_tools.grade import notebooks, written
from instructor_tools.grade.pdf import MATHJAX_ENV, MATHJAX_SYSTEM_PATHS, _pip_mathjax
from instructor_tools.grade.pdf_page import MATHJAX_CONFIG_JS, mathjax_config
from instructor_tools.grade.feedback import TEMPLATES
from student_tools.atomic import write_atomic

# What of a MathJax tree the pages need (not its tests, unpacked sources or other configs).
MATHJAX_PARTS = ("extensions", "fonts", "jax", "localization")
_TAGS = frozenset({"a", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em",
                   "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "li", "ol", "p", "pre", "s",
                   "span", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead",
                   "tr", "u", "ul"})
_ATTRIBUTES = {"a": ("href", "title"), "td": ("align", "colspan", "rowspan"),
               "th": ("align", "colspan", "rowspan"), "ol": ("start",),
               "span": ("class",), "div": ("class",), "code": ("class",), "pre": ("class",)}
def _href_allowed(value):
    return value.strip().lower().startswith(("http://", "https://", "mailto:"))


def _attribute_allowed(tag, name, value):
    if name not in _ATTRIBUTES.get(tag, ()):
        return False
    return _href_allowed(value) if name == "href" else True


def clean(fragment):
    """A piece of untrusted HTML with only the allow-listed tags and attributes left."""
    import bleach

    return bleach.clean(fragment, tags=_TAGS, attributes=_attribute_allowed,
                        protocols={"http", "https", "mailto"}, strip=True,
                        strip_comments=True)


def render_markdown(text):
    """Untrusted markdown as sanitized HTML (math left as TeX, for MathJax or to read)."""
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    try:  # nbconvert's markdown2html_mistune, without the headings' anchor links
        rendered = MarkdownWithMath(renderer=IPythonRenderer(
            escape=False, exclude_anchor_links=True, allow_harmful_protocols=False)).render(text)
    except Exception:  # a renderer bug must not lose the answer: show it as text
        rendered = f"<pre>{html.escape(text)}</pre>"
    return clean(rendered)


# ---------------------------------------------------------------------------
# MathJax, local only
# ---------------------------------------------------------------------------


def _config_of(mathjax_js):
    """pdf_page.mathjax_config, and the Safe extension the pages load beside it."""
    if not (Path(mathjax_js).parent / "config" / "Safe.js").is_file():
        return None
    return mathjax_config(mathjax_js)


def find_mathjax(environ=None):
    """MathJax 2.7's MathJax.js with a usable configuration, or None: CS231N_MATHJAX (the
    file or its folder), else the pip package jupyter-server-mathjax (the smaller tree to
    copy), else Debian's libjs-mathjax and the other usual places."""
    environ = os.environ if environ is None else environ
    candidates = []
    if environ.get(MATHJAX_ENV):
        named = Path(environ[MATHJAX_ENV]).expanduser()
        candidates.append(named / "MathJax.js" if named.is_dir() else named)
    candidates += [_pip_mathjax(), *MATHJAX_SYSTEM_PATHS]
    return next((p for p in candidates if p is not None and p.is_file() and _config_of(p)),
                None)


def install_mathjax(folder, mathjax_js):
    """Copy what the pages need of the MathJax at mathjax_js to folder/mathjax (once: a copy
    from the same place is kept); returns the script src with its query."""
    mathjax_js = Path(mathjax_js).resolve()
    config = _config_of(mathjax_js)
    target = Path(folder) / "mathjax"
    stamp = target / ".copied-from"
    if not (stamp.is_file() and stamp.read_text(encoding="utf-8") == str(mathjax_js)):
        shutil.rmtree(target, ignore_errors=True)
        (target / "config").mkdir(parents=True)
        shutil.copy2(mathjax_js, target / "MathJax.js")
        for name in (config, "Safe"):  # the configuration and the Safe extension's
            shutil.copy2(mathjax_js.parent / "config" / f"{name}.js",
                         target / "config" / f"{name}.js")
        for part in MATHJAX_PARTS:
            if (mathjax_js.parent / part).is_dir():
                shutil.copytree(mathjax_js.parent / part, target / part)
        stamp.write_text(str(mathjax_js), encoding="utf-8")
    (Path(folder) / "mathjax-config.js").write_text(MATHJAX_CONFIG_JS, encoding="utf-8")
    return f"mathjax/MathJax.js?config={config},Safe"


# ---------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------


def model_answers(course_notebooks, rubric):
    """{question id: (prompt markdown, model answer markdown or None)} from the course's
    notebooks (the solution), by heading."""
    found = {}
    for name in sorted({q.notebook for q in rubric.written}):
        path = Path(course_notebooks) / name
        regions = {}
        if path.is_file():
            nb = nbformat.read(path, as_version=4)
            regions = {r.label: r for r in notebooks.answer_regions_full(nb)}
        for question in rubric.written:
            if question.notebook == name:
                region = regions.get(question.heading)
                found[question.id] = (region.prompt, region.text) if region else ("", None)
    return found


def _row(result, rubric, points, question):
    return next(r for r in written.rows(result, rubric, points) if r["id"] == question.id)


def question_page(question, results, rubric, points, model, neighbours, mathjax_src):
    """The page of one written question (see the module's docstring)."""
    prompt, answer = model
    answers = []
    for result in sorted(results, key=lambda r: r["submission"]):
        row = _row(result, rubric, points, question)
        answers.append((result["submission"], row,
                        render_markdown(row["text"]) if row["text"] else None))
    return TEMPLATES.get_template("written_question.html").render(
        question=question, answers=answers, previous=neighbours[0], following=neighbours[1],
        prompt=render_markdown(prompt), answer=render_markdown(answer) if answer else None,
        mathjax_src=mathjax_src)


def index_page(results, rubric, points, mathjax_src):
    questions = []
    for question in rubric.written:
        found = [_row(result, rubric, points, question) for result in results]
        questions.append((question, sum(r["state"] == "answered" for r in found),
                          sum(r["points"] is not None for r in found)))
    return TEMPLATES.get_template("written_index.html").render(
        questions=questions, count=len(results), mathjax_src=mathjax_src)


def write_pages(out, results, rubric, course_notebooks, points=None, mathjax=None):
    """OUT/written/<id>.html per written question and OUT/written/index.html.

    mathjax: a MathJax.js path, None to look for one (find_mathjax), False for none.
    Returns the MathJax.js used (None: the pages show TeX)."""
    folder = Path(out) / "written"
    folder.mkdir(parents=True, exist_ok=True)
    mathjax = find_mathjax() if mathjax is None else (mathjax or None)
    mathjax_src = install_mathjax(folder, mathjax) if mathjax else None
    models = model_answers(course_notebooks, rubric)
    ids = [q.id for q in rubric.written]
    for n, question in enumerate(rubric.written):
        neighbours = (ids[n - 1] if n else None, ids[n + 1] if n + 1 < len(ids) else None)
        page = question_page(question, results, rubric, points, models[question.id],
                             neighbours, mathjax_src)
        write_atomic(folder / f"{question.id}.html", page)
    write_atomic(folder / "index.html", index_page(results, rubric, points, mathjax_src))
    return mathjax
