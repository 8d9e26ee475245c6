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
your work only: the two notebooks, the ``.py`` files of the ``cs231n`` package and a MANIFEST
(one ``sha256  path`` line per file: ``sha256sum -c MANIFEST`` verifies an unzipped copy).
The bytes checked, hashed and zipped are the same bytes, read once. Changes outside the
answer regions (which the grader ignores) are listed before the zip is written.

No PDF by default, and nothing here needs a browser: the grader prints the notebooks it
graded. ``--pdf`` adds NOTEBOOKS_PDF, one PDF of both notebooks made without LaTeX, for a
course that collects one (a Gradescope PDF assignment, say): see student_tools.notebook_pdf
(sanitized HTML printed by headless Chromium, MathJax from a local file, pypdf). Where the
tools come from: ``--browser PATH`` / ``--mathjax PATH`` (either one implies ``--pdf``),
else CS231N_BROWSER / CS231N_MATHJAX, else the usual places. ``--no-pdf`` is accepted and
does nothing (it is the default), so that older instructions still work.

Exit status: 0 done (the zip, and the PDF if --pdf asked for it); 1 refused, nothing written
(the reasons listed), also for a --browser/--mathjax path that is not a browser or MathJax
2.7; 2 the zip was written without the PDF that --pdf asked for (browser or MathJax
missing, or the browser failed: the command says what to install or what went wrong).

Your files are only read. Intermediate files live in a temporary directory; the zip is
written to a temporary name and renamed into place, and an existing file of that name is
replaced only if it is an earlier submission zip made by this command.
"""
import argparse
import hashlib
import os
import stat
import subprocess
import sys
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

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


def make_submission(root=".", out=None, pdf=False, tools=None, warn=None):
    """Check, then write the submission zip. Raises SubmissionRefused with every reason.

    Inputs:
    - root: the project folder (holding the notebooks and cs231n/)
    - out: zip path (default root / DEFAULT_ZIP)
    - pdf: True to add NOTEBOOKS_PDF (student_tools.notebook_pdf)
    - tools: (browser, mathjax_js) to print it with instead of those found
    - warn: called with each change outside the answer regions (not graded) before the
      zip is written (the result's notes hold them too)

    Returns a SubmissionResult (pdf_problem says why a PDF asked for is not in the zip).
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
        result.pdf_problem = _add_pdf(snapshot.notebooks, tools, entries, result)
    manifest = "".join(f"{_sha256(data)}  {rel}\n" for rel, data in entries)
    entries.append((MANIFEST, manifest.encode("utf-8")))
    _write_zip_atomically(out, entries)
    result.members = [rel for rel, _ in entries]
    return result


def _add_pdf(notebooks, tools, entries, result):
    """Print the notebooks to NOTEBOOKS_PDF, appended to entries; "" or why not."""
    from student_tools import notebook_pdf

    browser, mathjax_js = notebook_pdf.find_pdf_tools() if tools is None else tools
    if browser is None or mathjax_js is None:
        missing = [what for what, have in (("a Chromium browser", browser),
                                           ("MathJax 2.7", mathjax_js)) if have is None]
        return (f"no PDF: {' and '.join(missing)} not found. To make it, install what is "
                f"missing ({notebook_pdf.PDF_TOOLS_HINT}) and run this again")
    with tempfile.TemporaryDirectory(prefix="cs231n-submission-") as workdir:
        try:
            merged, result.pdf_pages, notes = notebook_pdf.make_pdf(
                notebooks, workdir, browser, mathjax_js)
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
            return f"no PDF: {exc}"
        result.notes.extend(notes)
        entries.append((NOTEBOOKS_PDF, merged.read_bytes()))
    return ""


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m student_tools.submission",
        description="Check that both notebooks were run top to bottom without errors and "
        "that every answer is written, then pack the notebooks and your code into a zip "
        "(no browser needed). Exit status: 0 done, 1 refused or a wrong --browser/"
        "--mathjax path (nothing written), 2 zip written without the PDF --pdf asked for.",
    )
    parser.add_argument("--root", type=Path, default=Path("."),
                        help="project folder (default: the current folder)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"zip to write (default: ROOT/{DEFAULT_ZIP})")
    parser.add_argument("--pdf", action="store_true",
                        help=f"also put {NOTEBOOKS_PDF} in the zip, for a course that collects "
                        "one (needs Chrome, Chromium or Edge and MathJax 2.7)")
    parser.add_argument("--no-pdf", action="store_true",
                        help="no PDF: the default (accepted so that older instructions work)")
    parser.add_argument("--browser", metavar="PATH", default=None,
                        help="Chrome, Chromium or Edge to print the PDF with; implies --pdf "
                        "(default: $CS231N_BROWSER, else looked for where it is usually "
                        "installed)")
    parser.add_argument("--mathjax", metavar="PATH", default=None,
                        help="MathJax 2.7's MathJax.js, or its folder, to typeset the math "
                        "with; implies --pdf (default: $CS231N_MATHJAX, else libjs-mathjax "
                        "or the pip package jupyter-server-mathjax)")
    args = parser.parse_args(argv)
    want_pdf = args.pdf or args.browser is not None or args.mathjax is not None
    tools = None
    if want_pdf:
        from student_tools import notebook_pdf
        try:
            tools = notebook_pdf.pdf_tools(args.browser, args.mathjax)
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
        result = make_submission(args.root, args.out, pdf=want_pdf, tools=tools, warn=warn)
    except SubmissionRefused as exc:
        print("Submission NOT made. Fix these and run it again:", file=sys.stderr)
        for i, reason in enumerate(exc.reasons, start=1):
            print(f"  {i}. {reason}", file=sys.stderr)
        return 1
    print(f"Wrote {result.zip_path} ({len(result.members)} files)")
    for note in result.notes:
        if note not in warned:
            print(f"NOTE: {note}.", file=sys.stderr)
    if not want_pdf:
        return 0
    if result.pdf_problem:
        print(f"WARNING: {result.pdf_problem}. The zip has everything else.", file=sys.stderr)
        return 2
    print(f"  with {NOTEBOOKS_PDF}, both notebooks in {result.pdf_pages} pages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
