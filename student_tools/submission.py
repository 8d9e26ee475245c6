"""Check and pack a submission: ``python -m student_tools.submission`` (or ``collectSubmission.sh``).

Refuses, listing every reason at once (exit status 1, nothing written), when
- a required file is missing (both notebooks and the package files you implement in);
- a notebook was not run top to bottom in a fresh kernel, the way Kernel > Restart Kernel
  and Run All Cells does it: then the code cells that have source carry the execution
  counts 1, 2, 3, ... in order (empty cells are skipped and carry none). A cell never run,
  a count out of order or a first count other than 1 (a kernel not restarted) is refused;
- a cell shows an error (except cells tagged ``raises-exception``, which are meant to);
- a written answer (between the BEGIN/END ANSWER markers) is empty or still the prompt.

Otherwise writes one zip (default ``cs231n_submission.zip`` in the project folder) with
the notebooks, the ``.py`` files of the ``cs231n`` package, a MANIFEST (one
``sha256  path`` line per file: ``sha256sum -c MANIFEST`` verifies an unzipped copy) and
NOTEBOOKS_PDF, one PDF of both notebooks made without LaTeX: nbconvert's HTML with a
local MathJax, printed by headless Chromium, pages merged with pypdf. Without Chromium
or MathJax the zip is still written, without the PDF, and the command says what to
install (exit status 2).

Your files are only read. Intermediate files live in a temporary directory; the zip is
written to a temporary name and renamed into place, and an existing file of that name is
replaced only if it is an earlier submission zip made by this command.
"""
import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from student_tools.markers import ANSWER_BEGIN, ANSWER_END, ANSWER_PROMPT

NOTEBOOKS = ("BatchNormalization.ipynb", "Dropout.ipynb")
# The package files holding the parts students write (the solution regions).
STUDENT_CODE = ("cs231n/layers.py", "cs231n/classifiers/fc_net.py")
REQUIRED_FILES = NOTEBOOKS + STUDENT_CODE
PACKAGE = "cs231n"

DEFAULT_ZIP = "cs231n_submission.zip"
NOTEBOOKS_PDF = "notebooks.pdf"
MANIFEST = "MANIFEST"
# Written as the zip comment: marks a zip this command may replace.
ZIP_COMMENT = b"cs231n submission (python -m student_tools.submission)"

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
MATHJAX_JS = Path("/usr/share/javascript/mathjax/MathJax.js")
INSTALL_HINT = "sudo apt-get install chromium libjs-mathjax"
# nbconvert's own rules are specific (.jp-OutputArea-output pre, ...), hence !important.
# Code is wrapped rather than cut off at the page edge.
_PRINT_CSS = (
    "<style>@media print {"
    " pre { font-size: 72% !important; }"
    " .jp-InputArea pre { white-space: pre-wrap !important; }"
    " }</style>"
)
# Headless print: no sandbox (it refuses to start as root otherwise), no first-run or
# network chatter, and time for MathJax to typeset before the page is printed.
BROWSER_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
    "--virtual-time-budget=10000", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
)
BROWSER_TIMEOUT = 300  # seconds per notebook


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
    notes: list = field(default_factory=list)


# ---------------------------------------------------------------------------
# Checking
# ---------------------------------------------------------------------------


def _cell_label(index, cell):
    first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
    if len(first) > 40:
        first = first[:37] + "..."
    return f"cell {index + 1} ({first!r})" if first else f"cell {index + 1}"


def _check_execution(name, nb):
    """Reasons why nb is not the result of Restart & Run All, without errors."""
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
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        label = f"{name}: answer in markdown cell {index + 1}"
        open_body = None
        for line in cell.source.splitlines():
            stripped = line.strip()
            if stripped == ANSWER_BEGIN:
                if open_body is not None:
                    reasons.append(f"{label}: {ANSWER_BEGIN} twice; restore the markers")
                open_body = []
            elif stripped == ANSWER_END:
                if open_body is None:
                    reasons.append(f"{label}: {ANSWER_END} without {ANSWER_BEGIN}; "
                                   f"restore the markers")
                    continue
                text = "\n".join(open_body).strip()
                if not text:
                    reasons.append(f"{label} is empty")
                elif ANSWER_PROMPT in text:
                    reasons.append(
                        f"{label} still holds the prompt {ANSWER_PROMPT!r}; replace it "
                        f"with your answer"
                    )
                open_body = None
            elif open_body is not None:
                open_body.append(line)
        if open_body is not None:
            reasons.append(f"{label}: {ANSWER_BEGIN} without {ANSWER_END}; restore the markers")
    return reasons


def _is_our_zip(path):
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.comment == ZIP_COMMENT and MANIFEST in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def check_submission(root, out):
    """Every reason the submission cannot be made (empty list when it can)."""
    root, out = Path(root), Path(out)
    reasons = []
    missing = [rel for rel in REQUIRED_FILES if not (root / rel).is_file()]
    if missing:
        reasons.append(f"missing in {root}: {', '.join(missing)}")
    for name in NOTEBOOKS:
        path = root / name
        if not path.is_file():
            continue
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception as exc:  # nbformat raises several unrelated types for bad files
            reasons.append(f"{name}: cannot be read as a notebook ({type(exc).__name__}: {exc})")
            continue
        reasons.extend(_check_execution(name, nb))
        reasons.extend(_check_answers(name, nb))
    if out.exists() and not (out.is_file() and _is_our_zip(out)):
        reasons.append(
            f"{out} exists and is not a submission zip made by this command; move it away or "
            f"choose another name with --out"
        )
    return reasons


# ---------------------------------------------------------------------------
# Packing
# ---------------------------------------------------------------------------


def package_files(root):
    """The package's own .py files, relative POSIX paths (no caches, no hidden files)."""
    root = Path(root)
    found = []
    for path in sorted((root / PACKAGE).rglob("*.py")):
        rel = path.relative_to(root)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        if path.is_file():
            found.append(rel.as_posix())
    return found


def find_pdf_tools():
    """(browser path or None, MathJax.js path or None)."""
    browser = next((shutil.which(n) for n in BROWSER_NAMES if shutil.which(n)), None)
    return browser, (MATHJAX_JS if MATHJAX_JS.is_file() else None)


def _notebook_html(nb_path, mathjax_js):
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    config = Config()
    # What `jupyter nbconvert --to html --HTMLExporter.mathjax_url=...` sets: MathJax
    # from the local file instead of a CDN, so math renders offline.
    config.HTMLExporter.mathjax_url = (
        f"{Path(mathjax_js).resolve().as_uri()}?config=TeX-AMS_CHTML-full,Safe"
    )
    nb = nbformat.read(nb_path, as_version=4)
    body, _ = HTMLExporter(config=config).from_notebook_node(nb)
    # A printed page is narrower than a notebook window: smaller monospace text keeps the
    # notebooks' printed tables (up to about 100 columns) at one line per row.
    return body.replace("</head>", _PRINT_CSS + "</head>", 1)


def make_pdf(root, workdir, browser, mathjax_js):
    """Print both notebooks to one PDF in workdir; return (path, number of pages)."""
    from pypdf import PdfReader, PdfWriter

    workdir = Path(workdir)
    writer = PdfWriter()
    for name in NOTEBOOKS:
        stem = Path(name).stem
        html = workdir / f"{stem}.html"
        html.write_text(_notebook_html(Path(root) / name, mathjax_js), encoding="utf-8")
        pdf = workdir / f"{stem}.pdf"
        profile = workdir / f"browser-profile-{stem}"  # fresh: no user settings leak in
        done = subprocess.run(
            [browser, *BROWSER_FLAGS, f"--user-data-dir={profile}", f"--print-to-pdf={pdf}",
             html.resolve().as_uri()],
            capture_output=True, text=True, timeout=BROWSER_TIMEOUT, check=False,
        )
        if done.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-3:])
            raise RuntimeError(f"{browser} could not print {name} (exit {done.returncode}): {tail}")
        writer.append(str(pdf), outline_item=name)
    merged = workdir / NOTEBOOKS_PDF
    with open(merged, "wb") as handle:
        writer.write(handle)
    return merged, len(PdfReader(merged).pages)


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


def make_submission(root=".", out=None, pdf=True, tools=None):
    """Check, then write the submission zip. Raises SubmissionRefused with every reason.

    Inputs:
    - root: the project folder (holding the notebooks and cs231n/)
    - out: zip path (default root / DEFAULT_ZIP)
    - pdf: False to skip the PDF on purpose
    - tools: (browser, mathjax_js) to use instead of find_pdf_tools()

    Returns a SubmissionResult.
    """
    root = Path(root).resolve()
    out = (root / DEFAULT_ZIP if out is None else Path(out)).resolve()
    reasons = check_submission(root, out)
    if not out.parent.is_dir():
        reasons.append(f"--out {out}: folder {out.parent} does not exist")
    if reasons:
        raise SubmissionRefused(reasons)

    rel_paths = list(NOTEBOOKS) + package_files(root)
    # Read each file once: the manifest then describes exactly the bytes zipped.
    entries = [(rel, (root / rel).read_bytes()) for rel in rel_paths]
    result = SubmissionResult(out, [])
    if pdf:
        browser, mathjax_js = find_pdf_tools() if tools is None else tools
        if browser is None or mathjax_js is None:
            missing = [what for what, have in (("a Chromium browser", browser),
                                               (f"MathJax ({MATHJAX_JS})", mathjax_js))
                       if have is None]
            result.pdf_problem = (
                f"no PDF: {' and '.join(missing)} not found; install them with "
                f"`{INSTALL_HINT}` and run this again"
            )
        else:
            with tempfile.TemporaryDirectory(prefix="cs231n-submission-") as workdir:
                try:
                    merged, result.pdf_pages = make_pdf(root, workdir, browser, mathjax_js)
                except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
                    result.pdf_problem = f"no PDF: {exc}"
                else:
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
        "the notebooks into a zip. Exit status: 0 done, 1 refused (nothing written), "
        "2 zip written without the PDF.",
    )
    parser.add_argument("--root", type=Path, default=Path("."),
                        help="project folder (default: the current folder)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"zip to write (default: ROOT/{DEFAULT_ZIP})")
    parser.add_argument("--no-pdf", action="store_true", help="do not make the PDF")
    args = parser.parse_args(argv)
    try:
        result = make_submission(args.root, args.out, pdf=not args.no_pdf)
    except SubmissionRefused as exc:
        print("Submission NOT made. Fix these and run it again:", file=sys.stderr)
        for i, reason in enumerate(exc.reasons, start=1):
            print(f"  {i}. {reason}", file=sys.stderr)
        return 1
    print(f"Wrote {result.zip_path} ({len(result.members)} files)")
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
