"""Check and pack a submission: ``python -m student_tools.submission`` (collectSubmission.sh).

Refuses, listing every reason at once (exit status 1, nothing written): a required file
missing; a file to pack (the notebooks; in ``cs231n/`` every folder and ``.py`` file) that is
a link, not a regular file, has a control character in its name or is too big (seen by
lstat before anything is opened); a notebook not run top to bottom in a fresh kernel; a cell
showing an error (unless tagged ``raises-exception``); an answer empty or still the prompt;
code the grader could not grade (``contract.review``). Otherwise writes one zip (default
DEFAULT_ZIP): the notebooks, the package's ``.py`` files and a MANIFEST (``sha256sum -c
MANIFEST`` checks an unzipped copy), from the bytes checked, read once. Changes outside the
answer regions (not graded) are listed first. No PDF, no browser: the course makes the PDF
from the zip. Your files are only read; an existing zip is replaced only if it is ours.
"""
import argparse
import hashlib
import io
import os
import stat
import sys
import unicodedata
import zipfile
from collections import namedtuple
from pathlib import Path

import nbformat

from student_tools import contract
from student_tools.atomic import write_atomic
from student_tools.markers import ANSWER_BEGIN, ANSWER_END, ANSWER_PROMPT, answer_blocks

# The course's executed notebooks are about 0.9 MB and 0.2 MB. A file over 20 MB is a
# mistake (a dataset, a model dump) and is refused before it is read.
MAX_FILE_BYTES = 20_000_000
MAX_TOTAL_BYTES = 60_000_000

DEFAULT_ZIP = "cs231n_submission.zip"
MANIFEST = "MANIFEST"
# Written as the zip comment: marks a zip this command may replace.
ZIP_COMMENT = b"cs231n submission (python -m student_tools.submission)"
RUN_ALL = "Run Kernel > Restart Kernel and Run All Cells, then save"
DAMAGED_ANSWER = {"begin_twice": f"{ANSWER_BEGIN} twice",
                  "end_without_begin": f"{ANSWER_END} without {ANSWER_BEGIN}",
                  "unclosed": f"{ANSWER_BEGIN} without {ANSWER_END}"}
PDF_NOTE = ("the course makes the PDF from your zip; for a Gradescope PDF upload print from "
            "the browser (JupyterLab File > Print, Colab File > Print)")


class SubmissionRefused(Exception):
    """The submission is not ready; ``reasons`` lists every problem found."""

    def __init__(self, reasons):
        self.reasons = list(reasons)
        super().__init__("\n".join(self.reasons))


SubmissionResult = namedtuple("SubmissionResult", "zip_path members notes")  # notes: warnings


def _shown(name):
    """name as printed: as a Python literal if it has invisible characters (a newline)."""
    return name if name.isprintable() else repr(name)


def _name_problem(name):
    """Why a name cannot go into the zip and its MANIFEST (None if it can): control and
    format characters, line separators, bytes that are not UTF-8 (lone surrogates)."""
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


def _add_file(path, rel, st, sizes, problems):
    """sizes[rel] = size if the file at path (lstat st) can be packed, else problems[rel]."""
    if stat.S_ISLNK(st.st_mode):
        problems[rel] = _link_reason(path, rel)
    elif not stat.S_ISREG(st.st_mode):
        problems[rel] = f"{_shown(rel)} is not a regular file"
    elif st.st_size > MAX_FILE_BYTES:
        problems[rel] = (f"{_shown(rel)} is {_megabytes(st.st_size)}, over the limit of "
                         f"{_megabytes(MAX_FILE_BYTES)} for one file; it is not part of the "
                         f"assignment: move it out of the project folder")
    else:
        sizes[rel] = st.st_size


def _walk_package(root, folder, sizes, problems):
    """_add_file for the .py files under folder (not hidden ones, not __pycache__); every
    folder and .py file must be real and have a clean name; other files are ignored."""
    rel = Path(folder).relative_to(root).as_posix()
    try:
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError as exc:
        problems[rel] = f"{_shown(rel)} cannot be listed ({exc.strerror})"
        return
    for entry in entries:
        if entry.name.startswith(".") or entry.name == "__pycache__":
            continue
        child, is_py = f"{rel}/{entry.name}", entry.name.endswith(".py")
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            problems[child] = f"{_shown(child)} cannot be examined ({exc.strerror})"
            continue
        is_dir = stat.S_ISDIR(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            # A link to a folder would hide or smuggle .py files; a .py link, its target.
            if is_py or os.path.isdir(entry.path):
                problems[child] = _link_reason(entry.path, child)
        elif (is_dir or is_py) and _name_problem(entry.name):
            problems[child] = (f"the {'folder' if is_dir else 'file'} name {_shown(child)} "
                               f"contains {_name_problem(entry.name)}; rename it")
        elif is_dir:
            _walk_package(root, entry.path, sizes, problems)
        elif is_py:
            _add_file(entry.path, child, st, sizes, problems)


def scan_files(root):
    """(sizes, reasons), opening nothing: sizes maps each file to pack (relative POSIX path;
    notebooks first, then the package's .py files in name order) to its bytes; reasons say
    why the submission cannot be made (missing, link, bad name, too big)."""
    root = Path(root)
    sizes, problems, missing = {}, {}, []
    for rel in contract.NOTEBOOKS:
        try:
            _add_file(root / rel, rel, os.lstat(root / rel), sizes, problems)
        except FileNotFoundError:
            missing.append(rel)
    package = root / contract.PACKAGE
    if package.is_symlink():
        problems[contract.PACKAGE] = _link_reason(package, contract.PACKAGE)
    elif package.is_dir():
        _walk_package(root, package, sizes, problems)
    # A required file already refused (or inside a refused folder) is not also missing.
    missing += [rel for rel in contract.REQUIRED_CODE if rel not in sizes and
                not any(rel == f or rel.startswith(f + "/") for f in problems)]
    reasons = [f"missing in {root}: {', '.join(missing)}"] if missing else []
    reasons += problems.values()
    total = sum(sizes.values())
    if total > MAX_TOTAL_BYTES:
        reasons.append(f"the files to pack come to {_megabytes(total)}, over the limit of "
                       f"{_megabytes(MAX_TOTAL_BYTES)} for a submission")
    return sizes, reasons


def _read_bounded(path, limit=MAX_FILE_BYTES):
    """The bytes of the regular file at path (at most limit + 1 read); OSError or ValueError
    for a link, not a regular file, or over limit bytes. Checked again on a descriptor opened
    with O_NOFOLLOW: a file swapped for a link or a pipe since the scan is not followed."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("is not a regular file")
        if st.st_size > limit:
            raise ValueError(f"is {_megabytes(st.st_size)}, over the limit of "
                             f"{_megabytes(limit)}")
        data = bytearray()
        while len(data) <= limit and (chunk := os.read(fd, limit + 1 - len(data))):
            data += chunk
        if len(data) > limit:
            raise ValueError(f"grew over the limit of {_megabytes(limit)} while being read")
        return bytes(data)
    finally:
        os.close(fd)


def _check_notebook(name, nb):
    """Reasons why nb is not the result of Restart & Run All without errors, or an answer
    is not ready. Cells are named as found in JupyterLab: section, first line, [count]."""
    heads, reasons = contract.headings(nb), []
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
    never = [i for i, c in code if c.get("execution_count") is None]
    if never:
        shown = ", ".join(contract.cell_label(nb, i, heads) for i in never[:3])
        more = f" and {len(never) - 3} more" if len(never) > 3 else ""
        reasons.append(f"{name}: {len(never)} code cell(s) never executed: {shown}{more}. "
                       f"{RUN_ALL}")
    counts = [(i, c.execution_count) for i, c in code if c.get("execution_count") is not None]
    for expected, (i, count) in enumerate(counts, start=1):
        if count != expected:
            why = ("the kernel was not restarted before running" if expected == 1 else
                   "cells were run out of order or re-run")
            reasons.append(f"{name}: {contract.cell_label(nb, i, heads)} shows In [{count}] "
                           f"where a fresh top-to-bottom run shows In [{expected}] ({why}). "
                           f"{RUN_ALL}")
            break
    for i, cell in code:
        error = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"),
                     None)
        if error is not None and "raises-exception" not in cell.metadata.get("tags", []):
            evalue = " ".join(str(error.get("evalue", "")).split())
            evalue = evalue[:97] + "..." if len(evalue) > 100 else evalue
            reasons.append(f"{name}: {contract.cell_label(nb, i, heads)} shows an error: "
                           f"{error.get('ename', 'Error')}: {evalue}")
    for index, cell in enumerate(nb.cells):
        label = f"{name}: the answer under \"{heads[index] or 'the top'}\""
        for event, _, text in answer_blocks(cell.source) if cell.cell_type == "markdown" else ():
            if event in DAMAGED_ANSWER:
                reasons.append(f"{label}: {DAMAGED_ANSWER[event]}; restore the markers")
            elif not text:
                reasons.append(f"{label} is empty")
            elif ANSWER_PROMPT in text:
                reasons.append(f"{label} still holds the prompt {ANSWER_PROMPT!r}; replace it "
                               f"with your answer")
    return reasons


def _is_our_zip(path):
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.comment == ZIP_COMMENT and MANIFEST in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def make_submission(root=".", out=None, warn=None):
    """Check the project folder root, then write its zip to out (default root/DEFAULT_ZIP).
    Calls warn with the changes outside the answer regions (not graded), if any, before the
    zip is written. Returns a SubmissionResult; raises SubmissionRefused with every reason."""
    root = Path(root).resolve()
    out = (root / DEFAULT_ZIP if out is None else Path(out)).resolve()
    sizes, reasons = scan_files(root)
    files, notebooks, warnings = {}, {}, []
    # Refused already: read only the notebooks, whose own problems are listed too.
    for rel in [rel for rel in sizes if rel in contract.NOTEBOOKS] if reasons else sizes:
        try:
            files[rel] = _read_bounded(root / rel)
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            reasons.append(f"{_shown(rel)} cannot be read: {why}")
    for name in (n for n in contract.NOTEBOOKS if n in files):
        try:
            nb = nbformat.reads(files[name].decode("utf-8"), as_version=4)
        except Exception as exc:  # nbformat raises several unrelated types for bad files
            reasons.append(f"{name}: cannot be read as a notebook ({type(exc).__name__}: {exc})")
            continue
        notebooks[name] = nb
        reasons += _check_notebook(name, nb)
    if not reasons:
        # The grader's contract applied here: what it could not grade is refused, what it
        # ignores (changes outside the answer regions) is warned about.
        texts = {}
        for rel in (rel for rel in files if rel.endswith(".py")):
            try:
                texts[rel] = files[rel].decode("utf-8")
            except UnicodeDecodeError:
                reasons.append(f"{_shown(rel)} is not UTF-8 text")
        course = contract.load_fingerprint(root)
        if course is None:  # the course's own tree: nothing to compare with
            course = contract.fingerprint_texts(texts, notebooks)
        refusals, warnings = contract.review(texts, notebooks, course)
        reasons += refusals
    # is_file follows a link: a link to our own earlier zip may be replaced (the link, not
    # its target); a pipe or a folder of that name is refused before anything opens it.
    if out.exists() and not (out.is_file() and _is_our_zip(out)):
        reasons.append(f"{out} exists and is not a submission zip made by this command; move "
                       f"it away or choose another name with --out")
    if not out.parent.is_dir():
        reasons.append(f"--out {out}: folder {out.parent} does not exist")
    if reasons:
        raise SubmissionRefused(reasons)
    if warnings and warn is not None:
        warn(warnings)
    # The bytes checked are the bytes zipped and hashed: nothing is read a second time.
    entries = list(files.items())
    manifest = "".join(f"{hashlib.sha256(data).hexdigest()}  {rel}\n" for rel, data in entries)
    entries.append((MANIFEST, manifest.encode("utf-8")))
    with zipfile.ZipFile(buffer := io.BytesIO(), "w", zipfile.ZIP_DEFLATED) as archive:
        for arcname, data in entries:
            archive.writestr(arcname, data)
        archive.comment = ZIP_COMMENT
    write_atomic(out, buffer.getvalue())
    return SubmissionResult(out, [rel for rel, _ in entries], list(warnings))


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m student_tools.submission",
        description="Check your notebooks, answers and code, then pack them into a zip. "
        "Exit status: 0 done, 1 refused (nothing written).")
    parser.add_argument("--root", type=Path, default=Path("."),
                        help="project folder (default: the current folder)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"zip to write (default: ROOT/{DEFAULT_ZIP})")
    # Named by older instructions: accepted, and they say where the PDF comes from now.
    parser.add_argument("--pdf", "--no-pdf", dest="pdf", action="store_true", help=PDF_NOTE)
    args = parser.parse_args(argv)
    if args.pdf:
        print(f"NOTE: no PDF here: {PDF_NOTE}.", file=sys.stderr)

    def warn(warnings):
        print("Only the code between the solution markers is graded. These changes are outside "
              "them: they are packed but will not run:", file=sys.stderr)
        print(*(f"  WARNING: {w}" for w in warnings), sep="\n", file=sys.stderr)

    try:
        result = make_submission(args.root, args.out, warn=warn)
    except SubmissionRefused as exc:
        print("Submission NOT made. Fix these and run it again:",
              *(f"  {i}. {reason}" for i, reason in enumerate(exc.reasons, 1)), sep="\n",
              file=sys.stderr)
        return 1
    print(f"Wrote {result.zip_path} ({len(result.members)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
