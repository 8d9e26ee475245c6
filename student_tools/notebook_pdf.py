"""Notebooks as HTML that is safe to open, and as one PDF, without LaTeX.

Two users:
- the packer, ``python -m student_tools.submission --pdf`` (a course that collects a PDF),
  prints the notebooks on the student's machine with ``make_pdf``;
- the grader (``instructor_tools/grade/pdf.py``) prints the SUBMITTED notebooks itself, and
  runs this very file inside its sandbox (where the project's packages are hidden)::

      python notebook_pdf.py pages OUTDIR [--mathjax MATHJAX_JS] [--banner TEXT]... NB...
      python notebook_pdf.py merge OUT.pdf NAME PDF [NAME PDF ...]

  ``pages`` writes OUTDIR/<stem>.html per notebook, OUTDIR/notebooks.html (all of them in
  one page) and OUTDIR/mathjax-config.js; ``merge`` joins the printed PDFs with pypdf.

So this module imports nothing of the project: nbformat, nbconvert, bleach, bs4 and pypdf
only, each where it is needed (the packer without --pdf never loads them).

The path is nbconvert's own: HTMLExporter (MathJax from a local file, never a CDN), then
headless Chromium's --print-to-pdf, then pypdf to merge. The HTML is sanitized in three
layers (see notebook_html): outputs kept only of harmless types; bleach through
nbconvert's ``sanitize_html``; a pass over the whole page that removes every script,
frame, object, form, event handler and URL but web links and data: images, then adds a
Content-Security-Policy that says so again to the browser. The only scripts left are
MathJax and its configuration.
"""
import argparse
import copy
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

try:
    import pwd  # POSIX; elsewhere nobody is root and the browser just keeps its sandbox
except ImportError:
    pwd = None

NOTEBOOKS_PDF = "notebooks.pdf"
ALL_PAGES = "notebooks.html"  # every notebook in one page (the grader's HTML fallback)

# The browser: any Chromium (Chromium, Google Chrome, Microsoft Edge). Looked for on PATH
# under these names, then where each system's installers put it (_usual_browser_paths).
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
                 "chrome", "microsoft-edge", "microsoft-edge-stable", "msedge")
# MathJax 2.7 (not 3: it has no MathJax.js), read from files, never from the web: Debian's
# libjs-mathjax (Fedora's mathjax too), Arch's mathjax2, or the PyPI package
# jupyter-server-mathjax (MathJax 2.7.9 in jupyter_server_mathjax/static/).
MATHJAX_JS = Path("/usr/share/javascript/mathjax/MathJax.js")
MATHJAX_SYSTEM_PATHS = (MATHJAX_JS, Path("/usr/share/mathjax2/MathJax.js"),
                        Path("/usr/share/mathjax/MathJax.js"))
MATHJAX_PIP_PACKAGE = "jupyter_server_mathjax"
MATHJAX_PIP_INSTALL = "python -m pip install jupyter-server-mathjax==0.2.6"
# The MathJax configuration file loaded, in order of preference, with Safe (no \href
# javascript: in math). Debian's full build has the first; jupyter-server-mathjax ships a
# trimmed build with only the second (HTML-CSS output and its STIX-Web fonts).
MATHJAX_CONFIGS = ("TeX-AMS_CHTML-full", "TeX-AMS-MML_HTMLorMML-full")
MATHJAX_QUERY = f"?config={MATHJAX_CONFIGS[0]},Safe"
INSTALL_HINT = "sudo apt-get install chromium libjs-mathjax"
# Options can also come from the environment (collectSubmission.sh passes its arguments on,
# but a course may set these once for everyone).
BROWSER_ENV = "CS231N_BROWSER"
MATHJAX_ENV = "CS231N_MATHJAX"
# What to install where, for the message when either is missing.
PDF_TOOLS_HINT = (
    f"Debian/Ubuntu: `{INSTALL_HINT}`; macOS: install Google Chrome or Microsoft Edge, then "
    f"`{MATHJAX_PIP_INSTALL}`; Windows: Microsoft Edge is already there, run "
    f"`{MATHJAX_PIP_INSTALL}`. A browser or MathJax 2.7 elsewhere: name it with "
    f"--browser PATH or --mathjax PATH (or set {BROWSER_ENV} / {MATHJAX_ENV})"
)
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
# Headless print with no first-run or network chatter, and time for MathJax to typeset
# before the page is printed. Deliberately absent: --allow-file-access-from-files and
# --disable-web-security. --no-sandbox is added only as root (see _browser_runs).
BROWSER_FLAGS = (
    "--headless", "--disable-gpu", "--no-pdf-header-footer",
    "--virtual-time-budget=10000", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-extensions", "--block-new-web-contents",
)
BROWSER_TIMEOUT = 300  # seconds per notebook
# As root, Chromium is started as this user, with its sandbox (see _browser_runs).
UNPRIVILEGED_USER = "nobody"
ROOT_SANDBOX_NOTE = (
    "Chromium cannot use its sandbox as root, and could not start here as the user "
    f"{UNPRIVILEGED_USER!r}: the PDF was printed by Chromium as root with --no-sandbox. The "
    "notebooks' HTML was sanitized first (no script but MathJax, no frames, no local "
    "files) and its Content-Security-Policy forbids the rest; run this as an ordinary user "
    "to keep the sandbox too"
)


# ---------------------------------------------------------------------------
# The PDF: sanitized HTML printed by Chromium
# ---------------------------------------------------------------------------

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


def _exported(nb, mathjax_js, name):
    """Layers (1) and (2) of notebook_html: nbconvert's HTML of a trimmed copy of nb."""
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


def notebook_html(nb, mathjax_js, name="notebook", banner=()):
    """The notebook as one HTML document that is safe to print (and to open).

    Three layers: (1) code-cell outputs keep only the types in _OUTPUT_MIMETYPES, and the
    notebook's metadata only what names its language; (2) nbconvert's HTMLExporter with
    ``sanitize_html=True`` passes every markdown cell, raw cell and HTML/markdown output
    through clean_html (bleach); (3) _lock_down goes over the whole document and adds the
    Content-Security-Policy. The only scripts left are MathJax and its configuration, to be
    found beside the document (MATHJAX_CONFIG_FILE); none when mathjax_js is None.
    banner: lines of plain text shown in a box at the top."""
    body = _exported(nb, mathjax_js, name)
    return _lock_down(body, mathjax_js, [("notebook-0", banner)] if banner else ())


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


@dataclass
class _BrowserRun:
    """One way to start the browser: as whom, with which extra flags, and what to tell."""
    popen: dict  # extra subprocess.run arguments (user, group, extra_groups)
    flags: list
    note: str = ""


def _browser_runs():
    """The ways to start Chromium, best first.

    Not root: as you, with Chromium's sandbox, and nothing else (a sandbox that cannot
    start means no PDF, never a PDF without it). Root: Chromium refuses to start its sandbox
    as root ("Running as root without --no-sandbox is not supported"), so first as the
    unprivileged user UNPRIVILEGED_USER, sandboxed; where that fails, as root with
    --no-sandbox, and the command says so."""
    if pwd is None or os.geteuid() != 0:
        return [_BrowserRun({}, [])]
    runs = []
    try:
        user = pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError:
        pass
    else:
        runs.append(_BrowserRun({"user": user.pw_uid, "group": user.pw_gid,
                                 "extra_groups": []}, []))
    runs.append(_BrowserRun({}, ["--no-sandbox"], ROOT_SANDBOX_NOTE))
    return runs


def _print_one(browser, run, html, pdf, profile, env, cwd):
    """Print html to pdf with one way of starting the browser; "" or why it failed."""
    try:
        done = subprocess.run(
            [browser, *BROWSER_FLAGS, *run.flags, f"--user-data-dir={profile}",
             f"--print-to-pdf={pdf}", html.resolve().as_uri()],
            capture_output=True, text=True, timeout=BROWSER_TIMEOUT, check=False,
            cwd=cwd, env=env, stdin=subprocess.DEVNULL, **run.popen,
        )
    except OSError as exc:  # not executable, or not by that user
        return f"cannot start ({exc})"
    if done.returncode == 0 and pdf.is_file() and pdf.stat().st_size > 0:
        return ""
    tail = "\n".join(done.stderr.strip().splitlines()[-3:])
    hint = ""
    if "--no-sandbox" not in run.flags and "sandbox" in done.stderr.lower():
        hint = (" (Chromium could not start its sandbox; this command does not turn it off "
                "for you: the zip is complete without the PDF)")
    return f"(exit {done.returncode}): {tail}{hint}"


def make_pdf(notebooks, workdir, browser, mathjax_js):
    """Print the notebooks to one PDF in workdir; return (path, number of pages, notes).

    notebooks: {name: NotebookNode} in order. workdir: a private, empty, temporary folder.
    The browser works in its subfolder ``browser/`` (the HTML pages, its profile, its
    $HOME, the PDFs); as root that folder belongs to UNPRIVILEGED_USER, the rest of workdir
    stays closed to it."""
    workdir = Path(workdir)
    space = workdir / "browser"
    pages_dir = space / "html"
    home = space / "home"  # Chromium writes caches under $HOME: not the student's
    pages_dir.mkdir(parents=True)
    home.mkdir()
    (pages_dir / MATHJAX_CONFIG_FILE).write_text(MATHJAX_CONFIG_JS, encoding="utf-8")
    runs = _browser_runs()
    for run in runs:
        if "user" in run.popen:
            os.chmod(workdir, 0o711)  # the user may pass through, not list or read
            for path in (space, home):
                os.chown(path, run.popen["user"], run.popen["group"])
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_CACHE_HOME": str(home / ".cache")}
    printed, notes = [], []
    for name, nb in notebooks.items():
        stem = Path(name).stem
        try:
            text = notebook_html(nb, mathjax_js, name=stem)
        except Exception as exc:  # nbconvert raises its own types on malformed notebooks
            raise RuntimeError(f"could not convert {name} to HTML ({type(exc).__name__}: "
                               f"{exc})") from exc
        html = pages_dir / f"{stem}.html"
        html.write_text(text, encoding="utf-8")
        pdf = space / f"{stem}.pdf"
        while True:
            run = runs[0]
            profile = space / f"profile-{stem}-{len(runs)}"  # fresh: no user settings leak in
            why = _print_one(browser, run, html, pdf, profile, env, space)
            if not why:
                break
            if len(runs) == 1:
                raise RuntimeError(f"{browser} could not print {name} {why}")
            runs = runs[1:]  # the next way, for this notebook and the ones after it
        if run.note and run.note not in notes:
            notes.append(run.note)
        printed.append((name, pdf))
    merged = workdir / NOTEBOOKS_PDF
    return merged, merge_pdfs(printed, merged), notes


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
    parser = argparse.ArgumentParser(prog="notebook_pdf.py")
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


def _usual_browser_paths(platform=None, environ=None, home=None):
    """Where Chrome, Chromium and Edge are installed outside PATH, best first.

    macOS: the .app bundles in /Applications and ~/Applications. Windows: under Program
    Files (both) and, for a per-user install, LocalAppData. Elsewhere: nothing (Linux
    installs them on PATH)."""
    platform = sys.platform if platform is None else platform
    environ = os.environ if environ is None else environ
    home = Path.home() if home is None else Path(home)
    if platform == "darwin":
        apps = (("Google Chrome.app", "Google Chrome"), ("Chromium.app", "Chromium"),
                ("Microsoft Edge.app", "Microsoft Edge"))
        return [folder / app / "Contents" / "MacOS" / exe
                for folder in (Path("/Applications"), home / "Applications")
                for app, exe in apps]
    if platform == "win32":
        programs = ("Google/Chrome/Application/chrome.exe", "Chromium/Application/chrome.exe",
                    "Microsoft/Edge/Application/msedge.exe")
        roots = [environ.get(name) for name in ("PROGRAMFILES", "PROGRAMFILES(X86)",
                                                "LOCALAPPDATA")]
        return [Path(root, *rel.split("/")) for root in roots if root for rel in programs]
    return []


def _pip_mathjax():
    """MathJax.js of the pip package jupyter-server-mathjax, if installed (not imported)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(MATHJAX_PIP_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "static" / "MathJax.js"


def find_pdf_tools():
    """(browser path or None, MathJax.js path or None), looked for where they are usually
    installed: see BROWSER_NAMES, _usual_browser_paths, MATHJAX_SYSTEM_PATHS, _pip_mathjax."""
    browser = next((shutil.which(n) for n in BROWSER_NAMES if shutil.which(n)), None)
    if browser is None:
        browser = next((str(p) for p in _usual_browser_paths()
                        if p.is_file() and os.access(p, os.X_OK)), None)
    candidates = [*MATHJAX_SYSTEM_PATHS, _pip_mathjax()]
    mathjax = next((p for p in candidates if p is not None and _mathjax_config(p)), None)
    return browser, mathjax


def _mathjax_config(mathjax_js):
    """The first of MATHJAX_CONFIGS that the MathJax beside mathjax_js has, or None."""
    mathjax_js = Path(mathjax_js)
    if not mathjax_js.is_file():
        return None
    return next((name for name in MATHJAX_CONFIGS
                 if (mathjax_js.parent / "config" / f"{name}.js").is_file()), None)


def _mathjax_query(mathjax_js):
    """The query that loads MathJax with the configuration it has (MATHJAX_QUERY when it
    has none of MATHJAX_CONFIGS: then MathJax itself reports the missing file)."""
    config = _mathjax_config(mathjax_js)
    return MATHJAX_QUERY if config is None else f"?config={config},Safe"


def _bad_path(option, value, expected, why):
    return ValueError(f"{option} {value!r}: expected {expected}, but {why}")


def check_browser_path(value, option="--browser"):
    """The browser executable that value names, as a string; ValueError naming option if
    it is not one. value: a path, a macOS .app bundle, or a command name on PATH."""
    expected = "the path of a Chrome, Chromium or Edge executable"
    path = Path(value).expanduser()
    if path.suffix == ".app" and path.is_dir():  # macOS: the bundle's own executable
        path = path / "Contents" / "MacOS" / path.stem
    if not path.exists():
        found = shutil.which(str(value)) if os.sep not in str(value) else None
        if found:
            return found
        raise _bad_path(option, str(value), expected, "there is no such file")
    if path.is_dir():
        raise _bad_path(option, str(value), expected, "it is a folder")
    if not os.access(path, os.X_OK):
        raise _bad_path(option, str(value), expected, "it is not executable")
    return str(path.resolve())


def check_mathjax_path(value, option="--mathjax"):
    """The MathJax.js that value names (the file or the folder holding it), as a Path;
    ValueError naming option if it is not MathJax 2.7 with a usable configuration."""
    expected = ("MathJax 2.7's MathJax.js, or the folder holding it and its config/ "
                "folder")
    path = Path(value).expanduser()
    if path.is_dir():
        if not (path / "MathJax.js").is_file():
            raise _bad_path(option, str(value), expected,
                            "that folder has no MathJax.js (MathJax 3 has none: it must be "
                            "MathJax 2.7)")
        path = path / "MathJax.js"
    if not path.exists():
        raise _bad_path(option, str(value), expected, "there is no such file")
    if path.name != "MathJax.js" or not path.is_file():
        raise _bad_path(option, str(value), expected, f"it is {path.name!r}")
    if _mathjax_config(path) is None:
        wanted = " nor ".join(f"config/{name}.js" for name in MATHJAX_CONFIGS)
        raise _bad_path(option, str(value), expected,
                        f"its folder has neither {wanted}")
    return path.resolve()


def pdf_tools(browser=None, mathjax=None, environ=None):
    """(browser, MathJax.js) for the PDF: each from its option if given, else from the
    environment (BROWSER_ENV, MATHJAX_ENV), else found by find_pdf_tools (None where
    nothing was found). An option or variable naming a wrong path raises ValueError."""
    environ = os.environ if environ is None else environ
    if browser is not None:
        browser = check_browser_path(browser, "--browser")
    elif environ.get(BROWSER_ENV):
        browser = check_browser_path(environ[BROWSER_ENV], BROWSER_ENV)
    if mathjax is not None:
        mathjax = check_mathjax_path(mathjax, "--mathjax")
    elif environ.get(MATHJAX_ENV):
        mathjax = check_mathjax_path(environ[MATHJAX_ENV], MATHJAX_ENV)
    if browser is None or mathjax is None:
        found_browser, found_mathjax = find_pdf_tools()
        browser = found_browser if browser is None else browser
        mathjax = found_mathjax if mathjax is None else mathjax
    return browser, mathjax


if __name__ == "__main__":
    sys.exit(main())
