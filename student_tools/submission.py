"""Check and pack a submission: ``python -m student_tools.submission`` (or ``collectSubmission.sh``).

Refuses, listing every reason at once (exit status 1, nothing written), when
- a required file is missing (both notebooks and the package files you implement in);
- a file that would be packed is a symbolic link, is not a regular file, has a name with a
  control character (a newline, a tab, ...) or is larger than MAX_FILE_BYTES (all files
  together: MAX_TOTAL_BYTES). "Would be packed" means the notebooks and, inside ``cs231n/``
  (hidden folders and ``__pycache__`` aside), every folder and every ``.py`` file. Sizes are
  taken with lstat before anything is opened, and a file is then read once, through a
  descriptor that refuses links, at most the limit plus one byte;
- a notebook was not run top to bottom in a fresh kernel, the way Kernel > Restart Kernel
  and Run All Cells does it: then the code cells that have source carry the execution
  counts 1, 2, 3, ... in order (empty cells are skipped and carry none). A cell never run,
  a count out of order or a first count other than 1 (a kernel not restarted) is refused;
- a cell shows an error (except cells tagged ``raises-exception``, which are meant to);
- a written answer (between the BEGIN/END ANSWER markers) is empty or still the prompt.

Otherwise writes one zip (default ``cs231n_submission.zip`` in the project folder) with
your work only: the two notebooks, the ``.py`` files of the ``cs231n`` package, a MANIFEST
(one ``sha256  path`` line per file: ``sha256sum -c MANIFEST`` verifies an unzipped copy) and
NOTEBOOKS_PDF, one PDF of both notebooks made without LaTeX. The bytes checked, hashed and
zipped are the same bytes, read once.

The PDF: nbconvert's HTML, sanitized (see notebook_html: no script but MathJax, no frames,
no local files, a Content-Security-Policy that says so again to the browser), printed by
headless Chromium from a private temporary folder, pages merged with pypdf. Chromium keeps
its sandbox: as root, where it refuses to start sandboxed, it is started as the user
``nobody`` instead; only where that fails does it run as root with ``--no-sandbox``, and
the command says so. Without Chromium or MathJax the zip is still written, without the
PDF, and the command says what to install (exit status 2).

Where the PDF tools come from (see pdf_tools): ``--browser PATH`` / ``--mathjax PATH``, else
the environment variables CS231N_BROWSER / CS231N_MATHJAX, else the usual places: Chrome,
Chromium or Edge on PATH, in /Applications (macOS) or under Program Files (Windows);
MathJax 2.7 from Debian's libjs-mathjax or the pip package jupyter-server-mathjax. A path
given that is not what it should be stops the command at once (exit status 1).

Your files are only read. Intermediate files live in a temporary directory; the zip is
written to a temporary name and renamed into place, and an existing file of that name is
replaced only if it is an earlier submission zip made by this command.
"""
import argparse
import copy
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

try:
    import pwd  # POSIX; elsewhere nobody is root and the browser just keeps its sandbox
except ImportError:
    pwd = None

from student_tools import contract
from student_tools.markers import ANSWER_BEGIN, ANSWER_END, ANSWER_PROMPT, answer_blocks

NOTEBOOKS = contract.NOTEBOOKS
# The package files holding the parts students write (the solution regions).
# The grader's own list (student_tools.contract): what it cannot grade without.
STUDENT_CODE = contract.REQUIRED_CODE
REQUIRED_FILES = NOTEBOOKS + STUDENT_CODE
# The package the student edits: its .py files are packed. Nothing else is (not
# student_tools/, not datasets/, not the tests).
PACKAGE = "cs231n"

# The course's executed notebooks are about 0.9 MB and 0.2 MB; a notebook full of plots
# stays well below 20 MB. A bigger file is a mistake (a dataset, a model dump) and is
# refused before it is read.
MAX_FILE_BYTES = 20_000_000
MAX_TOTAL_BYTES = 60_000_000
_READ_CHUNK = 1 << 20

DEFAULT_ZIP = "cs231n_submission.zip"
NOTEBOOKS_PDF = "notebooks.pdf"
MANIFEST = "MANIFEST"
# Written as the zip comment: marks a zip this command may replace.
ZIP_COMMENT = b"cs231n submission (python -m student_tools.submission)"

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


class SubmissionRefused(Exception):
    """The submission is not ready; ``reasons`` lists every problem found."""

    def __init__(self, reasons):
        self.reasons = list(reasons)
        super().__init__("\n".join(self.reasons))


@dataclass
class SubmissionResult:
    zip_path: Path
    members: list
    pdf_pages: int = 0
    pdf_problem: str = ""  # why there is no PDF ("" when there is one)
    notes: list = field(default_factory=list)  # things the student should know


# ---------------------------------------------------------------------------
# Finding and reading the files, without following links or reading too much
# ---------------------------------------------------------------------------


def _shown(name):
    """name as printed in a message: as is, or as a Python literal if it has invisible
    characters (a newline in a name would otherwise split the message)."""
    return name if name.isprintable() else repr(name)


def _name_problem(name):
    """Why a file name cannot go into the zip and its MANIFEST (None if it can).

    Control characters (C0, DEL, C1), invisible format characters, line and paragraph
    separators, and bytes that are not UTF-8 (Python shows them as lone surrogates)."""
    for char in name:
        category = unicodedata.category(char)
        if category == "Cs":
            return "bytes that are not UTF-8"
        if category in ("Cc", "Cf", "Zl", "Zp"):
            return f"the control character U+{ord(char):04X}"
    return None


def _megabytes(size):
    return f"{size / 1e6:.1f} MB" if size < 1e9 else f"{size / 1e9:.1f} GB"


def _link_reason(path, rel):
    try:
        target = f" (to {_shown(os.readlink(path))})"
    except OSError:
        target = ""
    return (f"{_shown(rel)} is a symbolic link{target}; only real files are packed: put the "
            f"file itself there or remove the link")


def _file_problem(path, rel, st):
    """Why the file at path (lstat result st) cannot be packed, or None."""
    if stat.S_ISLNK(st.st_mode):
        return _link_reason(path, rel)
    if not stat.S_ISREG(st.st_mode):
        return f"{_shown(rel)} is not a regular file"
    if st.st_size > MAX_FILE_BYTES:
        return (f"{_shown(rel)} is {_megabytes(st.st_size)}, over the limit of "
                f"{_megabytes(MAX_FILE_BYTES)} for one file; it is not part of the "
                f"assignment: move it out of the project folder")
    return None


def _walk_package(root, folder, sizes, reasons, flagged):
    """Add the package's .py files under folder to sizes {rel: bytes}, problems to reasons
    and the paths they name to flagged.

    Hidden entries and __pycache__ are skipped. Every folder and .py file visited must be
    real (not a link) and have a clean name; other files are neither packed nor checked."""
    try:
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError as exc:
        rel = Path(folder).relative_to(root).as_posix()
        reasons.append(f"{_shown(rel)} cannot be listed ({exc.strerror})")
        flagged.add(rel)
        return
    for entry in entries:
        if entry.name.startswith(".") or entry.name == "__pycache__":
            continue
        rel = Path(entry.path).relative_to(root).as_posix()
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            reasons.append(f"{_shown(rel)} cannot be examined ({exc.strerror})")
            flagged.add(rel)
            continue
        is_dir = stat.S_ISDIR(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            # A link to a folder would hide or smuggle .py files; a .py link, its target.
            if entry.name.endswith(".py") or os.path.isdir(entry.path):
                reasons.append(_link_reason(entry.path, rel))
                flagged.add(rel)
            continue
        if not (is_dir or entry.name.endswith(".py")):
            continue
        problem = _name_problem(entry.name)
        if problem:
            kind = "folder" if is_dir else "file"
            reasons.append(f"the {kind} name {_shown(rel)} contains {problem}; rename it")
            flagged.add(rel)
            continue
        if is_dir:
            _walk_package(root, entry.path, sizes, reasons, flagged)
            continue
        problem = _file_problem(entry.path, rel, st)
        if problem:
            reasons.append(problem)
            flagged.add(rel)
        else:
            sizes[rel] = st.st_size


def scan_files(root):
    """Find what would be packed, opening nothing.

    Returns (sizes, reasons): sizes maps each file to pack, as a relative POSIX path
    (notebooks first, then the package's .py files in name order), to its size in bytes;
    reasons lists why the submission cannot be made (missing, link, bad name, too big)."""
    root = Path(root)
    sizes, reasons, missing, flagged = {}, [], [], set()
    for rel in NOTEBOOKS:
        try:
            st = os.lstat(root / rel)
        except FileNotFoundError:
            missing.append(rel)
            continue
        problem = _file_problem(root / rel, rel, st)
        if problem:
            reasons.append(problem)
            flagged.add(rel)
        else:
            sizes[rel] = st.st_size
    package = root / PACKAGE
    if package.is_symlink():
        reasons.append(_link_reason(package, PACKAGE))
        flagged.add(PACKAGE)
    elif package.is_dir():
        _walk_package(root, package, sizes, reasons, flagged)
    for rel in STUDENT_CODE:
        # A required file already refused (or inside a refused folder) is not also missing.
        if rel not in sizes and not any(rel == f or rel.startswith(f + "/") for f in flagged):
            missing.append(rel)
    if missing:
        reasons.insert(0, f"missing in {root}: {', '.join(missing)}")
    total = sum(sizes.values())
    if total > MAX_TOTAL_BYTES:
        reasons.append(f"the files to pack come to {_megabytes(total)}, over the limit of "
                       f"{_megabytes(MAX_TOTAL_BYTES)} for a submission")
    return sizes, reasons


def package_files(root):
    """The package's .py files that would be packed, relative POSIX paths."""
    sizes, _ = scan_files(root)
    return [rel for rel in sizes if rel.startswith(PACKAGE + "/")]


def _read_bounded(path, limit=None):
    """The bytes of the regular file at path; OSError or ValueError if it is a link, not a
    regular file, or longer than limit (never more than limit + 1 bytes are read).

    The scan looked with lstat; this opens with O_NOFOLLOW and checks again on the open
    descriptor, so a file swapped for a link or a pipe in between is refused, not followed."""
    limit = MAX_FILE_BYTES if limit is None else limit
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("is not a regular file")
        if st.st_size > limit:
            raise ValueError(f"is {_megabytes(st.st_size)}, over the limit of "
                             f"{_megabytes(limit)}")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(_READ_CHUNK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise ValueError(f"grew over the limit of {_megabytes(limit)} while being read")
        return b"".join(chunks)
    finally:
        os.close(fd)


@dataclass
class _Snapshot:
    """What was read: files {rel: bytes} in packing order; notebooks {name: NotebookNode};
    warnings: what the grader will ignore (changes outside the answer regions)."""
    files: dict
    notebooks: dict
    warnings: list = field(default_factory=list)


# ---------------------------------------------------------------------------
# Checking
# ---------------------------------------------------------------------------


def _check_execution(name, nb):
    """Reasons why nb is not the result of Restart & Run All, without errors. A cell is
    named as the student finds it in JupyterLab: its section, its first line, its [count]."""
    headings = contract.headings(nb)

    def _cell_label(index, cell):
        return contract.cell_label(nb, index, headings)

    reasons = []
    code = [(i, c) for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and c.source.strip()]
    never = [(i, c) for i, c in code if c.get("execution_count") is None]
    if never:
        shown = ", ".join(_cell_label(i, c) for i, c in never[:3])
        more = f" and {len(never) - 3} more" if len(never) > 3 else ""
        reasons.append(
            f"{name}: {len(never)} code cell(s) never executed: {shown}{more}. "
            f"Run Kernel > Restart Kernel and Run All Cells, then save"
        )
    executed = [(i, c) for i, c in code if c.get("execution_count") is not None]
    for expected, (i, cell) in enumerate(executed, start=1):
        count = cell.execution_count
        if count != expected:
            why = ("the kernel was not restarted before running" if expected == 1 else
                   "cells were run out of order or re-run")
            reasons.append(
                f"{name}: {_cell_label(i, cell)} shows In [{count}] where a fresh top-to-bottom "
                f"run shows In [{expected}] ({why}). Run Kernel > Restart Kernel and Run All "
                f"Cells, then save"
            )
            break
    for i, cell in code:
        if "raises-exception" in cell.metadata.get("tags", []):
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                evalue = " ".join(str(output.get("evalue", "")).split())
                if len(evalue) > 100:
                    evalue = evalue[:97] + "..."
                reasons.append(
                    f"{name}: {_cell_label(i, cell)} shows an error: "
                    f"{output.get('ename', 'Error')}: {evalue}"
                )
                break
    return reasons


def _check_answers(name, nb):
    """Reasons why the written answers of nb are not ready."""
    reasons = []
    headings = contract.headings(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        label = f"{name}: the answer under \"{headings[index] or 'the top'}\""
        for event, _, text in answer_blocks(cell.source):
            if event == "begin_twice":
                reasons.append(f"{label}: {ANSWER_BEGIN} twice; restore the markers")
            elif event == "end_without_begin":
                reasons.append(f"{label}: {ANSWER_END} without {ANSWER_BEGIN}; "
                               f"restore the markers")
            elif event == "unclosed":
                reasons.append(f"{label}: {ANSWER_BEGIN} without {ANSWER_END}; "
                               f"restore the markers")
            elif not text:
                reasons.append(f"{label} is empty")
            elif ANSWER_PROMPT in text:
                reasons.append(
                    f"{label} still holds the prompt {ANSWER_PROMPT!r}; replace it "
                    f"with your answer"
                )
    return reasons


def _is_our_zip(path):
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.comment == ZIP_COMMENT and MANIFEST in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def _inspect(root, out):
    """(reasons, snapshot): every reason the submission cannot be made, and the files read."""
    root, out = Path(root), Path(out)
    sizes, reasons = scan_files(root)
    snapshot = _Snapshot({}, {})
    # Refused already: read only the notebooks, whose own problems are listed too.
    to_read = [rel for rel in sizes if rel in NOTEBOOKS] if reasons else list(sizes)
    for rel in to_read:
        try:
            snapshot.files[rel] = _read_bounded(root / rel)
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            reasons.append(f"{_shown(rel)} cannot be read: {why}")
    for name in NOTEBOOKS:
        if name not in snapshot.files:
            continue
        try:
            nb = nbformat.reads(snapshot.files[name].decode("utf-8"), as_version=4)
        except Exception as exc:  # nbformat raises several unrelated types for bad files
            reasons.append(f"{name}: cannot be read as a notebook ({type(exc).__name__}: {exc})")
            continue
        snapshot.notebooks[name] = nb
        reasons.extend(_check_execution(name, nb))
        reasons.extend(_check_answers(name, nb))
    if not reasons:
        reasons += _review_regions(root, snapshot)
    # is_file follows a link: a link to our own earlier zip may be replaced (the link, not
    # its target); a pipe or a folder of that name is refused before anything opens it.
    if out.exists() and not (out.is_file() and _is_our_zip(out)):
        reasons.append(
            f"{out} exists and is not a submission zip made by this command; move it away or "
            f"choose another name with --out"
        )
    return reasons, snapshot


def _review_regions(root, snapshot):
    """The grader's contract applied here: refusals (what it could not grade) returned,
    changes outside the answer regions (what it ignores) kept as snapshot.warnings."""
    texts, reasons = {}, []
    for rel, data in snapshot.files.items():
        if rel.endswith(".py"):
            try:
                texts[rel] = data.decode("utf-8")
            except UnicodeDecodeError:
                reasons.append(f"{_shown(rel)} is not UTF-8 text")
    course = contract.load_fingerprint(root)
    if course is None:  # the course's own tree: nothing to compare with
        course = contract.fingerprint_texts(texts, snapshot.notebooks)
    refusals, snapshot.warnings = contract.review(texts, snapshot.notebooks, course)
    return reasons + refusals


def check_submission(root, out):
    """Every reason the submission cannot be made (empty list when it can)."""
    return _inspect(root, out)[0]


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


def _lock_down(html, mathjax_js):
    """The whole document after nbconvert, made safe whatever the template let through.

    Removes every script (nbconvert adds require.js, mermaid and an inline MathJax
    configuration), frame, object, embed, link, base, meta, form; every on* attribute; every
    URL but web links and data: images. Then puts back only what printing needs: the
    policy, the charset, the print CSS, MathJax's configuration and MathJax."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
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
        soup.new_tag("script", attrs={"src": MATHJAX_CONFIG_FILE}),
        soup.new_tag("script", attrs={"src": Path(mathjax_js).resolve().as_uri()
                                                + _mathjax_query(mathjax_js)}),
    ]
    for position, tag in enumerate(added):
        head.insert(position, tag)
    style = soup.new_tag("style")
    style.string = _PRINT_CSS
    head.append(style)
    return str(soup)


def notebook_html(nb, mathjax_js, name="notebook"):
    """The notebook as one HTML document that is safe to print.

    Three layers: (1) code-cell outputs keep only the types in _OUTPUT_MIMETYPES, and the
    notebook's metadata only what names its language; (2) nbconvert's HTMLExporter with
    ``sanitize_html=True`` passes every markdown cell, raw cell and HTML/markdown output
    through clean_html (bleach); (3) _lock_down goes over the whole document and adds the
    Content-Security-Policy. The only scripts left are MathJax and its configuration, to be
    found beside the document (MATHJAX_CONFIG_FILE)."""
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
    body, _ = HTMLExporter(config=config).from_notebook_node(
        nb, resources={"metadata": {"name": name}})
    return _lock_down(body, mathjax_js)


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
    from pypdf import PdfReader, PdfWriter

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
    writer, notes = PdfWriter(), []
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
        writer.append(str(pdf), outline_item=name)
    merged = workdir / NOTEBOOKS_PDF
    with open(merged, "wb") as handle:
        writer.write(handle)
    return merged, len(PdfReader(merged).pages), notes


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


# ---------------------------------------------------------------------------
# Packing
# ---------------------------------------------------------------------------


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _write_zip_atomically(out, entries):
    """entries: list of (arcname, bytes). Temp file beside out, then rename over it."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}-", suffix=".part", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
                for arcname, data in entries:
                    archive.writestr(arcname, data)
                archive.comment = ZIP_COMMENT
        os.replace(tmp_name, out)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def make_submission(root=".", out=None, pdf=True, tools=None, warn=None):
    """Check, then write the submission zip. Raises SubmissionRefused with every reason.

    Inputs:
    - root: the project folder (holding the notebooks and cs231n/)
    - out: zip path (default root / DEFAULT_ZIP)
    - pdf: False to skip the PDF on purpose
    - tools: (browser, mathjax_js) to use instead of find_pdf_tools()
    - warn: called with each change outside the answer regions (not graded) before the
      zip is written (the result's notes hold them too)

    Returns a SubmissionResult.
    """
    root = Path(root).resolve()
    out = (root / DEFAULT_ZIP if out is None else Path(out)).resolve()
    reasons, snapshot = _inspect(root, out)
    if not out.parent.is_dir():
        reasons.append(f"--out {out}: folder {out.parent} does not exist")
    if reasons:
        raise SubmissionRefused(reasons)
    for warning in snapshot.warnings if warn is not None else ():
        warn(warning)

    # The bytes checked are the bytes zipped and hashed: nothing is read a second time.
    entries = list(snapshot.files.items())
    result = SubmissionResult(out, [], notes=list(snapshot.warnings))
    if pdf:
        browser, mathjax_js = find_pdf_tools() if tools is None else tools
        if browser is None or mathjax_js is None:
            missing = [what for what, have in (
                ("a Chromium browser", browser),
                ("MathJax 2.7", mathjax_js)) if have is None]
            result.pdf_problem = (
                f"no PDF: {' and '.join(missing)} not found. To make it, install what is "
                f"missing ({PDF_TOOLS_HINT}) and run this again"
            )
        else:
            with tempfile.TemporaryDirectory(prefix="cs231n-submission-") as workdir:
                try:
                    merged, result.pdf_pages, notes = make_pdf(
                        snapshot.notebooks, workdir, browser, mathjax_js)
                except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
                    result.pdf_problem = f"no PDF: {exc}"
                else:
                    result.notes.extend(notes)
                    entries.append((NOTEBOOKS_PDF, merged.read_bytes()))
    else:
        result.pdf_problem = "no PDF: skipped (--no-pdf)"
    manifest = "".join(f"{_sha256(data)}  {rel}\n" for rel, data in entries)
    entries.append((MANIFEST, manifest.encode("utf-8")))
    _write_zip_atomically(out, entries)
    result.members = [rel for rel, _ in entries]
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m student_tools.submission",
        description="Check that both notebooks were run top to bottom without errors and "
        "that every answer is written, then pack the notebooks, your code and one PDF of "
        "the notebooks into a zip. Exit status: 0 done, 1 refused or a wrong --browser/"
        "--mathjax path (nothing written), 2 zip written without the PDF.",
    )
    parser.add_argument("--root", type=Path, default=Path("."),
                        help="project folder (default: the current folder)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"zip to write (default: ROOT/{DEFAULT_ZIP})")
    parser.add_argument("--no-pdf", action="store_true", help="do not make the PDF")
    parser.add_argument("--browser", metavar="PATH", default=None,
                        help="Chrome, Chromium or Edge to print the PDF with (default: "
                        f"${BROWSER_ENV}, else looked for where it is usually installed)")
    parser.add_argument("--mathjax", metavar="PATH", default=None,
                        help="MathJax 2.7's MathJax.js, or its folder, to typeset the math "
                        f"with (default: ${MATHJAX_ENV}, else libjs-mathjax or the pip "
                        "package jupyter-server-mathjax)")
    args = parser.parse_args(argv)
    tools = (None, None)
    if not args.no_pdf:
        try:
            tools = pdf_tools(args.browser, args.mathjax)
        except ValueError as exc:  # a wrong path given on purpose: say so before anything
            print(f"Submission NOT made: {exc}", file=sys.stderr)
            return 1
    warned = []

    def warn(text):
        if not warned:
            print("Only the code between the solution markers is graded. These changes are "
                  "outside them: they are packed but will not run:", file=sys.stderr)
        warned.append(text)
        print(f"  WARNING: {text}", file=sys.stderr)

    try:
        result = make_submission(args.root, args.out, pdf=not args.no_pdf, tools=tools,
                                 warn=warn)
    except SubmissionRefused as exc:
        print("Submission NOT made. Fix these and run it again:", file=sys.stderr)
        for i, reason in enumerate(exc.reasons, start=1):
            print(f"  {i}. {reason}", file=sys.stderr)
        return 1
    print(f"Wrote {result.zip_path} ({len(result.members)} files)")
    for note in result.notes:
        if note not in warned:
            print(f"NOTE: {note}.", file=sys.stderr)
    if args.no_pdf:
        print("  without the PDF, as asked (--no-pdf)")
        return 0
    if result.pdf_problem:
        print(f"WARNING: {result.pdf_problem}. The zip has everything else.", file=sys.stderr)
        return 2
    print(f"  with {NOTEBOOKS_PDF}, both notebooks in {result.pdf_pages} pages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
