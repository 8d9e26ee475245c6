"""Plan, verify, write and zip the release.

plan_release reads HEAD (git.py), rewrites the shipped files in memory (regions.py),
checks that every region names a notebook and a heading of it that ship, and the leak
check (leaks.py); it adds student_tools.contract's
fingerprint of the course's files. build_release writes the plan into a temporary
directory beside the output, zips it (fixed timestamps: the same commit gives the same
zip), verifies both (the files are the plan's, outputs cleared, the leak check again)
and renames them into place only then. Nothing is written unless all of this holds.
"""
import difflib
import io
import json
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from student_tools import contract

from .errors import ReleaseError
from .git import (
    STUDENT_README,
    _check_git_top,
    _describe_status,
    _ignored_files,
    _object_id,
    _read_blobs,
    _work_tree_status,
    shipped_files,
)
from .leaks import find_leaks
from .regions import _markdown_headings, _process_notebook, _process_python

DEFAULT_OUT = "release"
DEFAULT_NAME = "cs231n-student"
# Written into an output directory on creation: only such a directory is ever overwritten.
OUT_MARKER = ".cs231n-release"


@dataclass
class ReleasePlan:
    """Everything the release will contain, computed before anything is written."""

    root: Path
    commit: str  # the commit released
    files: list  # relative paths (str, POSIX) to ship
    contents: dict  # relative path -> bytes of the released file
    modes: dict  # relative path -> permission bits (0o644 or 0o755)
    regions: list
    answers: list
    notes: list = field(default_factory=list)  # things not shipped that an instructor may miss


def _fingerprint(contents):
    """student_tools.contract's fingerprint of the released package and notebooks."""
    texts = {rel: data.decode("utf-8") for rel, data in contents.items()
             if rel.startswith(contract.PACKAGE + "/") and rel.endswith(".py")}
    notebooks = {rel: nbformat.reads(data.decode("utf-8"), as_version=4)
                 for rel, data in contents.items() if rel in contract.NOTEBOOKS}
    return json.dumps(contract.fingerprint_texts(texts, notebooks), indent=0, sort_keys=True)


def _section_problems(regions, notebooks):
    """Problems with the notebook and section each region names: both must ship
    (notebooks: {path: released bytes})."""
    problems, headings_cache = [], {}
    for region in regions:
        if region.notebook not in headings_cache:
            if region.notebook in notebooks:
                nb = nbformat.reads(notebooks[region.notebook].decode("utf-8"), as_version=4)
                headings_cache[region.notebook] = _markdown_headings(nb)
            else:
                headings_cache[region.notebook] = None
        headings = headings_cache[region.notebook]
        if headings is None:
            problems.append(
                f"{region.where()}: names notebook {region.notebook!r}, which is not in the "
                f"release"
            )
        elif region.section not in headings:
            close = difflib.get_close_matches(region.section, headings, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(
                f"{region.where()}: {region.notebook} has no heading "
                f"{region.section!r}{hint}"
            )
    return problems


def plan_release(root):
    """Read HEAD and transform it in memory. Raises ReleaseError listing every problem."""
    root = Path(root).resolve()
    commit = _check_git_top(root)
    changed, untracked = _work_tree_status(root)
    if changed:
        raise ReleaseError([
            f"{rel}: uncommitted changes ({_describe_status(changed[rel])}); the release is "
            f"built from the last commit, so commit (or undo) them first"
            for rel in sorted(changed)
        ])
    notes = [f"untracked, so not shipped: {', '.join(sorted(untracked))}"] if untracked else []
    ignored = _ignored_files(root)

    problems, files, listed = [], [], shipped_files(root, commit)
    for rel, (mode, _) in sorted(listed.items()):
        if rel in ignored:
            notes.append(f"committed but matched by .gitignore, so not shipped: {rel}")
        elif mode not in ("100644", "100755"):
            what = "a symbolic link" if mode == "120000" else f"not a regular file ({mode})"
            problems.append(f"{rel}: {what} in git; the release ships regular files only")
        else:
            files.append(rel)
    readme_id = _object_id(root, commit, STUDENT_README)
    if readme_id is None:
        problems.append(f"{STUDENT_README}: not committed; it becomes the release's README.md "
                        f"(the project's README.md, with instructor commands, is not shipped)")
    if not any(rel.startswith("cs231n/") for rel in files):
        problems.append(f"{root}: commit {commit[:12]} has no cs231n/ package files to release")
    blobs = _read_blobs(root, [listed[rel][1] for rel in files] + [readme_id] * bool(readme_id))

    contents, modes, regions, answers, notebooks = {}, {}, [], [], {}
    for rel in files:
        raw = blobs[listed[rel][1]]
        modes[rel] = 0o755 if listed[rel][0] == "100755" else 0o644
        if rel.endswith(".py"):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                problems.append(f"{rel}: not UTF-8 text")
                continue
            released, file_regions = _process_python(rel, text, problems)
            contents[rel] = released.encode("utf-8")
            regions.extend(file_regions)
        elif rel.endswith(".ipynb"):
            released, file_regions, file_answers = _process_notebook(rel, raw, problems)
            contents[rel] = released
            regions.extend(file_regions)
            answers.extend(file_answers)
            notebooks[rel] = released
        else:
            contents[rel] = raw
    if readme_id:
        contents["README.md"] = blobs[readme_id]
        modes["README.md"] = 0o644

    problems.extend(_section_problems(regions, notebooks))
    if problems:
        raise ReleaseError(problems)
    # The course's skeleton hashes: the packer compares a student's files with them to
    # warn about changes outside the answer regions (student_tools.contract).
    contents[contract.FINGERPRINT] = _fingerprint(contents).encode("utf-8")
    modes[contract.FINGERPRINT] = 0o644
    leaks = find_leaks(contents, regions, answers)
    if leaks:
        raise ReleaseError(["solution or answer text would ship:"] + leaks)
    return ReleasePlan(root, commit, sorted(contents), contents, modes, regions, answers, notes)


def verify_release(plan, release_dir, zip_path, name):
    """Problems with a written release (empty list when it is clean)."""
    release_dir = Path(release_dir)
    problems = []
    written = {
        p.relative_to(release_dir).as_posix(): p.read_bytes()
        for p in sorted(release_dir.rglob("*")) if p.is_file()
    }
    if sorted(written) != plan.files:
        problems.append(
            f"release files differ from the plan: extra {sorted(set(written) - set(plan.files))},"
            f" missing {sorted(set(plan.files) - set(written))}"
        )
    problems.extend(f"{rel}: differs from the plan" for rel in sorted(written)
                    if rel in plan.contents and written[rel] != plan.contents[rel])
    for rel, data in written.items():
        if rel.endswith(".ipynb"):
            nb = nbformat.reads(data.decode("utf-8"), as_version=4)
            for index, cell in enumerate(nb.cells):
                if cell.cell_type == "code" and (cell.outputs or cell.execution_count):
                    problems.append(f"{rel} cell {index}: outputs not cleared")
    zip_bytes = Path(zip_path).read_bytes()
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        members = sorted(archive.namelist())
        if members != sorted(f"{name}/{rel}" for rel in written):
            problems.append(f"{Path(zip_path).name}: members differ from {release_dir.name}/")
        else:
            problems.extend(
                f"{Path(zip_path).name}: {rel} differs from the release directory"
                for rel in sorted(written) if archive.read(f"{name}/{rel}") != written[rel]
            )
    written[Path(zip_path).name] = zip_bytes
    problems.extend(find_leaks(written, plan.regions, plan.answers))
    return problems


def _write_zip(zip_path, release_dir, name):
    # Fixed timestamps and sorted members: the same commit gives the same zip.
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in release_dir.rglob("*") if p.is_file()):
            rel = path.relative_to(release_dir).as_posix()
            info = zipfile.ZipInfo(f"{name}/{rel}", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | (path.stat().st_mode & 0o777)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())


def _check_out_dir(root, out):
    """Refuse output directories that would touch the source tree or foreign files."""
    release_home = root / DEFAULT_OUT
    if out == root or out in root.parents:
        raise ReleaseError([f"--out {out}: would contain the project itself; choose another"])
    if root in out.parents and not (out == release_home or release_home in out.parents):
        raise ReleaseError([
            f"--out {out}: inside the project but not under {release_home}; the release "
            f"never writes into the source tree"
        ])
    if out.exists():
        if not out.is_dir():
            raise ReleaseError([f"--out {out}: exists and is not a directory"])
        if not (out / OUT_MARKER).is_file() and any(out.iterdir()):
            raise ReleaseError([
                f"--out {out}: exists, is not empty and was not created by "
                f"instructor_tools.release (no {OUT_MARKER} file in it); choose another "
                f"directory"
            ])


def build_release(root, out=None, name=DEFAULT_NAME):
    """Write out/name/ and out/name.zip; return (release_dir, zip_path, plan).

    Raises ReleaseError (and writes no release) when the tree or the result is not clean.
    """
    root = Path(root).resolve()
    if not (root / "cs231n").is_dir():
        # E.g. a non-editable install, where the package's parent is site-packages.
        raise ReleaseError([f"--root {root}: not a project folder (no cs231n/ package in it)"])
    out = (root / DEFAULT_OUT if out is None else Path(out)).resolve()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ReleaseError([f"--name {name!r}: expected letters, digits, '.', '_' or '-'"])
    _check_out_dir(root, out)
    plan = plan_release(root)

    out.mkdir(parents=True, exist_ok=True)
    (out / OUT_MARKER).write_text("created by python -m instructor_tools.release\n")
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=out))
    try:
        staged_dir = staging / name
        for rel in plan.files:
            target = staged_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(plan.contents[rel])
            target.chmod(plan.modes[rel])
        staged_zip = staging / f"{name}.zip"
        _write_zip(staged_zip, staged_dir, name)
        problems = verify_release(plan, staged_dir, staged_zip, name)
        if problems:
            raise ReleaseError(["the written release failed verification:"] + problems)
        release_dir, zip_path = out / name, out / f"{name}.zip"
        if release_dir.exists():
            shutil.rmtree(release_dir)
        staged_dir.rename(release_dir)
        os.replace(staged_zip, zip_path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return release_dir, zip_path, plan
