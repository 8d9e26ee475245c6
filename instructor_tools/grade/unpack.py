"""Unpack an untrusted submission zip into a fresh folder, or refuse it with a status.

Only the members a submission is made of are written (the notebooks, cs231n/**/*.py,
MANIFEST, notebooks.pdf); others are listed and skipped. Refused before anything is
written: a file that is not a zip (``corrupt_zip``); a member name that is absolute,
has a ``..`` part, a backslash, a control character or appears twice, or a member that
is a symlink or any other non-regular file (``unsafe_zip``); more members or more
declared bytes than the caps (``zip_bomb``). While extracting, each member is read in
chunks and stopped as soon as it passes its declared size or the caps (``zip_bomb``: a
forged header cannot get past them). The MANIFEST is verified and reported, never
relied on.
"""
import hashlib
import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath


from student_tools.contract import NOTEBOOKS, REQUIRED_CODE  # the packer's list too
MANIFEST = "MANIFEST"
PDF = "notebooks.pdf"

MAX_MEMBERS = 500
MAX_FILE_BYTES = 64 * 2**20  # one member (the real notebooks are under 1 MB each)
MAX_TOTAL_BYTES = 200 * 2**20  # everything extracted
CHUNK = 2**20

_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")


@dataclass
class Unpacked:
    status: str  # "ok" or a refusal status
    message: str = ""
    files: list = field(default_factory=list)  # relative paths written
    skipped: list = field(default_factory=list)  # members not part of a submission
    missing: list = field(default_factory=list)  # required files absent
    manifest: list = field(default_factory=list)  # problems found by the MANIFEST check


def _wanted(name):
    if name in NOTEBOOKS or name in (MANIFEST, PDF):
        return True
    path = PurePosixPath(name)
    return path.parts[0] == "cs231n" and path.suffix == ".py"


def _name_problem(info):
    name = info.filename
    if not name or _BAD_CHARS.search(name):
        return f"member name {name!r} has a control character or a backslash"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return f"member {name!r} has an absolute path"
    if ".." in PurePosixPath(name).parts:
        return f"member {name!r} has a '..' path part"
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return f"member {name!r} is a symbolic link"
    kind = stat.S_IFMT(mode)  # 0 when the writer stored permission bits only
    if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        return f"member {name!r} is not a regular file (mode {oct(mode)})"
    return ""


def unpack(zip_path, dest):
    """Extract the submission members of zip_path into dest (an empty folder)."""
    dest = Path(dest)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        return Unpacked("corrupt_zip", f"not a readable zip file: {exc}")
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            return Unpacked("zip_bomb", f"{len(infos)} members (at most {MAX_MEMBERS})")
        names = set()
        for info in infos:
            problem = _name_problem(info)
            if problem:
                return Unpacked("unsafe_zip", problem)
            if info.filename in names:
                return Unpacked("unsafe_zip", f"member {info.filename!r} appears twice")
            names.add(info.filename)
        wanted = [i for i in infos if not i.is_dir() and _wanted(i.filename)]
        skipped = [i.filename for i in infos if not i.is_dir() and not _wanted(i.filename)]
        declared = sum(i.file_size for i in wanted)
        big = [i.filename for i in wanted if i.file_size > MAX_FILE_BYTES]
        if big or declared > MAX_TOTAL_BYTES:
            return Unpacked("zip_bomb", f"declared sizes over the caps ({MAX_FILE_BYTES} bytes "
                            f"a file, {MAX_TOTAL_BYTES} in all): {big or declared}")
        total = 0
        written = []
        for info in wanted:
            target = dest.joinpath(*PurePosixPath(info.filename).parts)
            if dest.resolve() not in target.resolve().parents:
                return Unpacked("unsafe_zip", f"member {info.filename!r} leaves the folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            size = 0
            try:
                with archive.open(info) as src, open(target, "xb") as out:
                    while True:
                        chunk = src.read(CHUNK)
                        if not chunk:
                            break
                        size += len(chunk)
                        total += len(chunk)
                        if size > info.file_size or size > MAX_FILE_BYTES or \
                                total > MAX_TOTAL_BYTES:
                            return Unpacked("zip_bomb", f"member {info.filename!r} unpacks to "
                                            f"more than its declared {info.file_size} bytes "
                                            f"or the caps")
                        out.write(chunk)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError,
                    RuntimeError, ValueError) as exc:
                # CRC mismatch, truncated data, unsupported compression or encryption.
                return Unpacked("corrupt_zip", f"member {info.filename!r}: {exc}")
            written.append(info.filename)
    result = Unpacked("ok", files=written, skipped=skipped)
    result.missing = [r for r in (*NOTEBOOKS, *REQUIRED_CODE) if r not in written]
    result.manifest = verify_manifest(dest, written)
    return result


def verify_manifest(root, written):
    """Problems between the MANIFEST (student-computed) and the files: report only."""
    root = Path(root)
    if MANIFEST not in written:
        return ["no MANIFEST in the zip"]
    problems, listed = [], set()
    try:
        text = (root / MANIFEST).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return ["MANIFEST is not UTF-8 text"]
    for n, line in enumerate(text.splitlines(), start=1):
        match = re.fullmatch(r"([0-9a-f]{64})  (.+)", line)
        if not match:
            problems.append(f"MANIFEST line {n} is not 'sha256  path'")
            continue
        digest, rel = match.groups()
        listed.add(rel)
        if rel not in written:
            problems.append(f"MANIFEST lists {rel!r}, not in the zip")
        elif hashlib.sha256((root / rel).read_bytes()).hexdigest() != digest:
            problems.append(f"MANIFEST sha256 of {rel!r} does not match the file")
    for rel in written:
        if rel != MANIFEST and rel not in listed:
            problems.append(f"{rel!r} is not listed in the MANIFEST")
    return problems[:20]
