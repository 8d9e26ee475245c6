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
- every other string from a submission is escaped with html.escape;
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
from student_tools.atomic import write_atomic

MATHJAX_ENV = "CS231N_MATHJAX"
MATHJAX_PLACES = (Path("/usr/share/javascript/mathjax/MathJax.js"),
                  Path("/usr/share/mathjax2/MathJax.js"), Path("/usr/share/mathjax/MathJax.js"))
# Configurations with TeX input, in order of preference (Debian's full build has the first,
# jupyter-server-mathjax's trimmed build only the second).
MATHJAX_CONFIGS = ("TeX-AMS_CHTML-full", "TeX-AMS-MML_HTMLorMML-full")
# What of a MathJax tree the pages need (not its tests, unpacked sources or other configs).
MATHJAX_PARTS = ("extensions", "fonts", "jax", "localization")
CSP_WITH_MATHJAX = ("default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; "
                    "font-src 'self' data:; img-src data:; base-uri 'none'; "
                    "form-action 'none'")
CSP_NO_SCRIPT = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; " \
                "base-uri 'none'; form-action 'none'"
MATHJAX_CONFIG_JS = """window.MathJax = {
  tex2jax: {inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]],
            displayMath: [["$$", "$$"], ["\\\\[", "\\\\]"]],
            processEscapes: true, processEnvironments: true},
  messageStyle: "none",
  CommonHTML: {linebreaks: {automatic: true}},
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web",
               imageFont: null, linebreaks: {automatic: true}}
};
"""
_TAGS = frozenset({"a", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em",
                   "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "li", "ol", "p", "pre", "s",
                   "span", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead",
                   "tr", "u", "ul"})
_ATTRIBUTES = {"a": ("href", "title"), "td": ("align", "colspan", "rowspan"),
               "th": ("align", "colspan", "rowspan"), "ol": ("start",),
               "span": ("class",), "div": ("class",), "code": ("class",), "pre": ("class",)}
_CSS = """
body { font-family: sans-serif; margin: 1em 2em; color: #222; }
.layout { display: flex; gap: 2em; align-items: flex-start; }
.answers { flex: 3; min-width: 0; } aside { flex: 2; min-width: 0; position: sticky; top: 0;
  max-height: 100vh; overflow-y: auto; background: #f6f8fa; padding: 0 1em; }
section.answer { border-top: 2px solid #ccc; padding: 0.3em 0 1em; }
.state { font-size: 90%; color: #555; } .missing { color: #b42318; font-weight: bold; }
.guide { white-space: pre-wrap; font-family: inherit; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 0.3em 0.5em;
  text-align: left; vertical-align: top; }
pre, code { white-space: pre-wrap; } .note { background: #fff3cd; padding: 0.5em; }
"""


def _e(value):
    return html.escape(str(value), quote=True)


def _num(value):
    return f"{value:g}"


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
        rendered = f"<pre>{_e(text)}</pre>"
    return clean(rendered)


# ---------------------------------------------------------------------------
# MathJax, local only
# ---------------------------------------------------------------------------


def _config_of(mathjax_js):
    folder = Path(mathjax_js).parent
    if not (folder / "config" / "Safe.js").is_file():
        return None
    return next((c for c in MATHJAX_CONFIGS if (folder / "config" / f"{c}.js").is_file()), None)


def find_mathjax(environ=None):
    """MathJax 2.7's MathJax.js with a usable configuration, or None: CS231N_MATHJAX (the
    file or its folder), else the pip package jupyter-server-mathjax (the smaller tree to
    copy), else Debian's libjs-mathjax and the other usual places."""
    environ = os.environ if environ is None else environ
    candidates = []
    if environ.get(MATHJAX_ENV):
        named = Path(environ[MATHJAX_ENV]).expanduser()
        candidates.append(named / "MathJax.js" if named.is_dir() else named)
    try:
        import jupyter_server_mathjax
        candidates.append(Path(jupyter_server_mathjax.__file__).parent / "static" / "MathJax.js")
    except ImportError:
        pass
    candidates += MATHJAX_PLACES
    return next((p for p in candidates if p.is_file() and _config_of(p)), None)


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


def _page(title, body, mathjax_src):
    if mathjax_src:
        head = (f"<meta http-equiv='Content-Security-Policy' content=\"{CSP_WITH_MATHJAX}\">"
                f"<script src='mathjax-config.js'></script>"
                f"<script src='{_e(mathjax_src)}'></script>")
    else:
        head = f"<meta http-equiv='Content-Security-Policy' content=\"{CSP_NO_SCRIPT}\">"
    note = "" if mathjax_src else (
        "<p class='note'>MathJax was not found (install <code>libjs-mathjax</code> or "
        "<code>jupyter-server-mathjax</code>, or set <code>CS231N_MATHJAX</code>): math is "
        "shown as its TeX source.</p>")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            "<meta name='referrer' content='no-referrer'>" + head +
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>{note}\n"
            f"{body}\n</body></html>")


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


def _state_line(row):
    state = written.STATE_TEXT.get(row["state"], row["state"])
    css = "state" if row["state"] == "answered" else "state missing"
    line = f"<span class='{css}'>{_e(state)}</span> <span class='state'>{_e(row['detail'])}"
    if row["points"] is not None:
        line += f" &middot; points given: {_num(row['points'])} / {_num(row['max'])}"
    if row["comment"]:
        line += f" &middot; comment: {_e(row['comment'])}"
    return line + "</span>"


def question_page(question, results, rubric, points, model, neighbours, mathjax_src):
    """The page of one written question (see the module's docstring)."""
    prompt, answer = model
    previous, following = neighbours
    nav = ["<a href='index.html'>all questions</a>"]
    if previous:
        nav.append(f"<a href='{_e(previous)}.html'>previous</a>")
    if following:
        nav.append(f"<a href='{_e(following)}.html'>next</a>")
    title = f"{question.id}: {question.notebook}, {question.heading}"
    body = [f"<p>{' &middot; '.join(nav)}</p>",
            f"<h1>{_e(question.heading)} <small>({_e(question.notebook)}, "
            f"{_num(question.points)} points, id <code>{_e(question.id)}</code>)</small>"
            f"</h1>", "<div class='layout'><div class='answers'>",
            f"<p>{len(results)} submission(s). Points go into <code>written.csv</code> "
            f"(question <code>{_e(question.id)}</code>).</p>"]
    for result in sorted(results, key=lambda r: r["submission"]):
        row = next(r for r in written.rows(result, rubric, points) if r["id"] == question.id)
        body.append(f"<section class='answer'><h3>{_e(result['submission'])}</h3>"
                    f"<p>{_state_line(row)}</p>")
        if row["text"]:
            body.append(f"<div class='markdown'>{render_markdown(row['text'])}</div>")
        body.append("</section>")
    body.append("</div><aside><h2>Grading guide</h2>"
                f"<pre class='guide'>{_e(question.guide)}</pre><h2>The question</h2>"
                f"<div class='markdown'>{render_markdown(prompt)}</div><h2>Model answer</h2>")
    body.append(f"<div class='markdown'>{render_markdown(answer)}</div>" if answer else
                "<p class='missing'>The course notebook has no answer under this heading.</p>")
    body.append("</aside></div>")
    return _page(title, "\n".join(body), mathjax_src)


def index_page(results, rubric, points, mathjax_src):
    body = ["<h1>Written answers: one page per question</h1>",
            f"<p>{len(results)} submission(s). Fill in <code>written.csv</code> "
            "(<code>submission, question, max_points, points, comment</code>; empty points: "
            "not graded yet) and merge it with <code>make grade ... WRITTEN=file.csv</code>."
            "</p><table><tr><th>question</th><th>notebook</th><th>heading</th>"
            "<th>points</th><th>answered</th><th>graded</th></tr>"]
    for question in rubric.written:
        found = [next(r for r in written.rows(res, rubric, points) if r["id"] == question.id)
                 for res in results]
        answered = sum(r["state"] == "answered" for r in found)
        graded = sum(r["points"] is not None for r in found)
        body.append(f"<tr><td><a href='{_e(question.id)}.html'>{_e(question.id)}</a></td>"
                    f"<td>{_e(question.notebook)}</td><td>{_e(question.heading)}</td>"
                    f"<td>{_num(question.points)}</td><td>{answered}/{len(found)}</td>"
                    f"<td>{graded}/{len(found)}</td></tr>")
    body.append("</table>")
    return _page("Written answers", "\n".join(body), mathjax_src)


def _write(path, text):
    write_atomic(path, text)


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
        _write(folder / f"{question.id}.html",
               question_page(question, results, rubric, points, models[question.id],
                             neighbours, mathjax_src))
    _write(folder / "index.html", index_page(results, rubric, points, mathjax_src))
    return mathjax
