"""The grader's sandboxed steps for a submission's notebooks: safe HTML pages, then one PDF.

instructor_tools/grade/pdf.py copies this file into the box it prints in (where the
project's packages are hidden) and runs it as a script::

    python pdf_page.py pages OUTDIR [--mathjax MATHJAX_JS] [--banner TEXT]... NB...
    python pdf_page.py merge OUT.pdf NAME PDF [NAME PDF ...]

``pages`` writes OUTDIR/<stem>.html per notebook, OUTDIR/notebooks.html (all of them in
one page) and OUTDIR/mathjax-config.js; between the two steps headless Chromium prints
each page; ``merge`` joins the printed PDFs with pypdf. So this module imports nothing of
the project: nbformat, nbconvert, bleach, bs4 and pypdf only, each where it is needed.

The HTML is nbconvert's (HTMLExporter, MathJax from a local file, never a CDN), sanitized
in three layers: outputs kept only of harmless types (_exported); bleach through
nbconvert's ``sanitize_html`` (clean_html); a pass over the whole page that removes every
script, frame, object, form, event handler and URL but web links and data: images, then
adds a Content-Security-Policy that says so again to the browser (_lock_down). The only
scripts left are MathJax and its configuration.
"""
import argparse
import copy
import sys
from pathlib import Path

NOTEBOOKS_PDF = "notebooks.pdf"
ALL_PAGES = "notebooks.html"  # every notebook in one page (the grader's HTML fallback)
# MathJax 2.7's configuration file loaded, in order of preference, with Safe (no \href
# javascript: in math). Debian's full build has the first; jupyter-server-mathjax ships a
# trimmed build with only the second (HTML-CSS output and its STIX-Web fonts).
MATHJAX_CONFIGS = ("TeX-AMS_CHTML-full", "TeX-AMS-MML_HTMLorMML-full")
MATHJAX_QUERY = f"?config={MATHJAX_CONFIGS[0]},Safe"
# nbconvert's own rules are specific (.jp-OutputArea-output pre, ...), hence !important.
# Code is wrapped rather than cut off at the page edge.
_PRINT_CSS = (
    "@media print {"
    " pre { font-size: 72% !important; }"
    " .jp-InputArea pre { white-space: pre-wrap !important; }"
    " }"
)
# The grader's note at the top of each notebook (what was printed, from which zip).
_BANNER_CSS = (
    " .cs231n-banner { font-family: sans-serif; font-size: 80%; border: 1px solid #888;"
    " background: #f3f3f3; padding: 0.2em 0.8em; margin: 0 0 1em 0; }"
)


# What the HTML of a notebook may contain from the student: formatting, tables, links to
# the web, images embedded as data: URLs. Everything else (script, style, iframe, object,
# embed, form, svg, link, meta, base, ...) is shown escaped, as text, by bleach; event
# handler attributes are dropped, and so is any URL other than those below.
_ALLOWED_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "center", "code", "col", "colgroup",
    "dd", "del", "details", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2",
    "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre",
    "q", "s", "samp", "small", "span", "strike", "strong", "sub", "summary", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul", "var",
})
_ALLOWED_ATTRIBUTES = frozenset({
    "class", "id", "title", "align", "style", "alt", "width", "height", "colspan", "rowspan",
    "start", "border", "span", "name", "open",
})
_IMAGE_DATA_PREFIXES = tuple(f"data:image/{kind}" for kind in
                             ("png", "jpeg", "gif", "webp", "svg+xml"))
_OUTPUT_MIMETYPES = frozenset({  # rendered from code cells; others (JavaScript, widgets,
    "text/plain", "text/html", "text/markdown", "text/latex",  # mermaid, ...) are dropped
    "image/png", "image/jpeg", "image/svg+xml",
})
# Attributes whose value is a URL, for the final pass over the whole document.
_URL_ATTRIBUTES = frozenset({
    "href", "src", "srcset", "action", "formaction", "poster", "data", "background",
    "xlink:href", "cite", "longdesc", "usemap", "lowsrc", "dynsrc", "manifest", "codebase",
    "ping", "srcdoc", "archive", "classid", "profile", "itemtype",
})
_FORBIDDEN_ELEMENTS = ("script", "iframe", "frame", "frameset", "object", "embed", "applet",
                       "link", "base", "meta", "form", "portal", "noscript", "template")
# The browser's own guard: scripts only from file: URLs (MathJax and its configuration; the
# sanitized document holds no other script element), no inline script, no frames, objects,
# connections or forms, images only from data: URLs, fonts from files (MathJax's).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src file:; style-src 'unsafe-inline'; "
    "font-src file: data:; img-src data:; base-uri 'none'; form-action 'none'"
)
# nbconvert's MathJax settings (its HTML template), given as an object before MathJax.js
# loads: MathJax evaluates its inline text/x-mathjax-config script with eval, which the
# policy above forbids. "HTML-CSS" serves jupyter-server-mathjax's build, whose only output
# is HTML-CSS and whose only fonts are STIX-Web (without these settings it falls back to
# the system's fonts and prints broken accents and roots); CommonHTML serves the others.
MATHJAX_CONFIG_JS = """window.MathJax = {
  TeX: {equationNumbers: {autoNumber: "AMS", useLabelIds: true}},
  tex2jax: {inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]],
            displayMath: [["$$", "$$"], ["\\\\[", "\\\\]"]],
            processEscapes: true, processEnvironments: true},
  displayAlign: "center",
  messageStyle: "none",
  CommonHTML: {linebreaks: {automatic: true}},
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web",
               imageFont: null, linebreaks: {automatic: true}}
};
"""
MATHJAX_CONFIG_FILE = "mathjax-config.js"


def _allowed_href(value):
    value = value.strip().lower()
    return value.startswith(("http://", "https://", "mailto:", "#"))


def _allowed_attribute(tag, name, value):
    """bleach's attribute test: a short list of harmless attributes, plus links to the web
    and images embedded in the notebook (data: URLs; a relative path would be a local file)."""
    if name == "href":
        return tag == "a" and _allowed_href(value)
    if name == "src":
        return tag == "img" and value.strip().lower().startswith(_IMAGE_DATA_PREFIXES)
    return name in _ALLOWED_ATTRIBUTES


def clean_html(html):
    """Sanitize one piece of the student's HTML (a rendered markdown cell, an output).

    nbconvert's own ``clean_html`` filter (used with ``sanitize_html=True``) is bleach with
    a list so short that headings and paragraphs come out escaped; this is bleach with the
    formatting a notebook uses and the URL rules of _allowed_attribute."""
    import bleach
    from bleach.css_sanitizer import CSSSanitizer

    html = html.decode() if isinstance(html, bytes) else str(html)
    return bleach.clean(
        html, tags=_ALLOWED_TAGS, attributes=_allowed_attribute,
        protocols={"http", "https", "mailto", "data"}, strip=False, strip_comments=True,
        css_sanitizer=CSSSanitizer(),  # style="": colours, fonts, alignment; no url()
    )


def _lock_down(html, mathjax_js, banners=()):
    """The whole document after nbconvert, made safe whatever the template let through.

    Removes every script (nbconvert adds require.js, mermaid and an inline MathJax
    configuration), frame, object, embed, link, base, meta, form; every on* attribute; every
    URL but web links and data: images. Then puts back only what printing needs: the
    policy, the charset, the print CSS, MathJax's configuration and MathJax (none of the
    two without mathjax_js: the TeX then stays as written). banners: (element id, lines)
    pairs, each put as plain text in a box before the element of that id (the start of
    a notebook), e.g. the grader's note of what was printed."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for anchor, lines in banners:
        box = soup.new_tag("div", attrs={"class": "cs231n-banner"})
        for line in lines:
            paragraph = soup.new_tag("p")
            paragraph.string = str(line)  # text: bs4 escapes it
            box.append(paragraph)
        found = soup.find(id=anchor)
        if found is not None:
            found.insert_before(box)
        elif soup.body is not None:
            soup.body.insert(0, box)
    for element in soup.find_all(_FORBIDDEN_ELEMENTS):
        element.decompose()
    for element in soup.find_all(True):
        for name, value in list(element.attrs.items()):
            value = " ".join(value) if isinstance(value, list) else str(value)
            lowered = name.lower()
            if lowered.startswith("on") or (lowered in _URL_ATTRIBUTES and not (
                    (lowered == "href" and element.name == "a" and _allowed_href(value)) or
                    (lowered == "src" and element.name == "img"
                     and value.strip().lower().startswith(_IMAGE_DATA_PREFIXES)))):
                del element.attrs[name]
    if soup.head is None:
        soup.html.insert(0, soup.new_tag("head"))
    head = soup.head
    added = [
        soup.new_tag("meta", attrs={"http-equiv": "Content-Security-Policy",
                                    "content": CONTENT_SECURITY_POLICY}),
        soup.new_tag("meta", attrs={"charset": "utf-8"}),
    ]
    if mathjax_js is not None:
        added += [soup.new_tag("script", attrs={"src": MATHJAX_CONFIG_FILE}),
                  soup.new_tag("script", attrs={"src": mathjax_src(mathjax_js)})]
    for position, tag in enumerate(added):
        head.insert(position, tag)
    style = soup.new_tag("style")
    style.string = _PRINT_CSS + (_BANNER_CSS if banners else "")
    head.append(style)
    return str(soup)


def mathjax_src(mathjax_js):
    """The URL that loads the MathJax at mathjax_js, with its configuration and Safe."""
    return Path(mathjax_js).resolve().as_uri() + _mathjax_query(mathjax_js)


def mathjax_config(mathjax_js):
    """The first of MATHJAX_CONFIGS that the MathJax beside mathjax_js has, or None."""
    mathjax_js = Path(mathjax_js)
    if not mathjax_js.is_file():
        return None
    return next((name for name in MATHJAX_CONFIGS
                 if (mathjax_js.parent / "config" / f"{name}.js").is_file()), None)


def _mathjax_query(mathjax_js):
    """The query that loads MathJax with the configuration it has (MATHJAX_QUERY when it
    has none of MATHJAX_CONFIGS: then MathJax itself reports the missing file)."""
    config = mathjax_config(mathjax_js)
    return MATHJAX_QUERY if config is None else f"?config={config},Safe"


def _exported(nb, mathjax_js, name):
    """Layers (1) and (2) of the sanitizing: nbconvert's HTML of a trimmed copy of nb."""
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    nb = copy.deepcopy(nb)
    nb.metadata = nbformat.NotebookNode(
        {key: nb.metadata[key] for key in ("kernelspec", "language_info") if key in nb.metadata})
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.get("outputs", []):
            if "data" in output:
                output["data"] = nbformat.NotebookNode(
                    {k: v for k, v in output["data"].items() if k in _OUTPUT_MIMETYPES})
                if not output["data"]:
                    continue
            kept.append(output)
        cell.outputs = kept
    config = Config()
    config.HTMLExporter.sanitize_html = True
    config.HTMLExporter.filters = {"clean_html": clean_html}
    config.HTMLExporter.embed_images = False  # never read image files named by the notebook
    if mathjax_js is not None:  # nbconvert's own setting; _lock_down puts it back as a file
        config.HTMLExporter.mathjax_url = mathjax_src(mathjax_js)
    body, _ = HTMLExporter(config=config).from_notebook_node(
        nb, resources={"metadata": {"name": name}})
    return body


def notebooks_html(notebooks, mathjax_js, banners=None, exported=None):
    """All notebooks ({name: NotebookNode}, in order) in one safe HTML document: the first
    notebook's page with the cells of the others after it, each notebook in a
    ``<section id="notebook-N">``; banners: {name: lines} shown before each. exported:
    {name: _exported HTML} already made (not made again)."""
    from bs4 import BeautifulSoup

    banners, exported = banners or {}, exported or {}
    page, sections = None, []
    for index, (name, nb) in enumerate(notebooks.items()):
        html = exported.get(name) or _exported(nb, mathjax_js, Path(name).stem)
        soup = BeautifulSoup(html, "html.parser")
        body = soup.body if soup.body is not None else soup
        section = soup.new_tag("section", attrs={"id": f"notebook-{index}"})
        for child in list(body.contents):
            section.append(child.extract())
        if page is None:
            page = soup
            body.append(section)
        else:
            page_body = page.body if page.body is not None else page
            page_body.append(section)
        sections.append((f"notebook-{index}", banners.get(name, ())))
    if page is None:
        raise ValueError("no notebook to show")
    return _lock_down(str(page), mathjax_js, [s for s in sections if s[1]])


def merge_pdfs(printed, out):
    """Join the PDFs of printed [(name, path), ...] into out, one outline item (bookmark)
    per name; returns the number of pages."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for name, path in printed:
        writer.append(str(path), outline_item=name)
    with open(out, "wb") as handle:
        writer.write(handle)
    return len(PdfReader(out).pages)


def write_pages(paths, folder, mathjax_js=None, banners=None):
    """The grader's first step, in its sandbox: each notebook file of paths as a safe page
    folder/<stem>.html, all of them in one page folder/ALL_PAGES, and MathJax's
    configuration beside them. banners: one list of lines per notebook (or None).

    Returns {name: why} for the notebooks that could not be read or converted (they are
    left out; the others are written)."""
    import nbformat

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MATHJAX_CONFIG_FILE).write_text(MATHJAX_CONFIG_JS, encoding="utf-8")
    banners = list(banners or [])
    notebooks, exported, lines, problems = {}, {}, {}, {}
    for index, path in enumerate(map(Path, paths)):
        try:
            nb = nbformat.read(path, as_version=4)
            banner = banners[index] if index < len(banners) else ()
            body = _exported(nb, mathjax_js, path.stem)
            text = _lock_down(body, mathjax_js, [("notebook-0", banner)] if banner else ())
        except Exception as exc:  # nbformat and nbconvert raise many types on bad files
            problems[path.name] = f"{type(exc).__name__}: {str(exc)[:300]}"
            continue
        (folder / f"{path.stem}.html").write_text(text, encoding="utf-8")
        notebooks[path.name], exported[path.name], lines[path.name] = nb, body, banner
    if notebooks:
        (folder / ALL_PAGES).write_text(notebooks_html(notebooks, mathjax_js, lines, exported),
                                        encoding="utf-8")
    return problems


def main(argv=None):
    """``pages`` and ``merge`` (see the module's docstring): the grader's steps, run in
    its sandbox. Prints one line per notebook left out; exit status 0, or 1 when no page
    (no PDF) was written."""
    parser = argparse.ArgumentParser(prog="pdf_page.py")
    commands = parser.add_subparsers(dest="command", required=True)
    pages = commands.add_parser("pages")
    pages.add_argument("folder", type=Path)
    pages.add_argument("notebooks", type=Path, nargs="+")
    pages.add_argument("--mathjax", type=Path, default=None)
    pages.add_argument("--banner", action="append", default=[],
                       help="lines of one notebook's banner, separated by newlines")
    merge = commands.add_parser("merge")
    merge.add_argument("out", type=Path)
    merge.add_argument("pairs", nargs="+", help="NAME PDF NAME PDF ...")
    args = parser.parse_args(argv)
    if args.command == "pages":
        problems = write_pages(args.notebooks, args.folder, args.mathjax,
                               [text.splitlines() for text in args.banner])
        for name, why in problems.items():
            print(f"{name}: {why}")
        return 0 if len(problems) < len(args.notebooks) else 1
    if len(args.pairs) % 2:
        parser.error("merge: expected NAME PDF pairs")
    pairs = list(zip(args.pairs[::2], args.pairs[1::2]))
    print(merge_pdfs(pairs, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
