"""Install CIFAR-10 (python version): ``python -m student_tools.cifar10_setup [--archive PATH]``.

Without --archive (or $CIFAR10_ARCHIVE) it downloads the official archive, which must match
its md5; a local archive (it may be a subset) must be a well-formed CIFAR-10 python archive,
and match --md5/--sha256 when given. It is unpacked into a temporary directory, every batch
is read with the restricted unpickler, and only then is it renamed into place. Nothing that
is already at the target is ever deleted.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import tarfile
import tempfile
import urllib.request
import zlib
from collections import namedtuple
from pathlib import Path, PurePosixPath, PureWindowsPath

from tqdm import tqdm

from cs231n.data_utils import (DEFAULT_CIFAR10_DIR, META_FILE, TEST_BATCH, TRAIN_BATCHES,
                               CIFAR10FormatError, load_pickle, read_batch)

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_DIR = "cifar-10-batches-py"  # the one top-level folder of the official archive
REQUIRED_FILES = TRAIN_BATCHES + (TEST_BATCH, META_FILE)
MARKER = ".cs231n-install.json"  # written last into a checked install: where it came from
ENV_ARCHIVE = "CIFAR10_ARCHIVE"
NETWORK_TIMEOUT = 20.0  # seconds per connect/read: offline machines fail fast
CHUNK = 1 << 20
OFFLINE_HINT = (f"Download {OFFICIAL_URL} on a machine with a network, copy it here and run "
                "`CIFAR10_ARCHIVE=/path/to/cifar-10-python.tar.gz make data` (or `bash "
                "datasets/get_datasets.sh --archive /path/to/cifar-10-python.tar.gz`).")

#: kind: 'absent', 'empty', 'complete' or 'incomplete'; detail says what is incomplete.
TargetState = namedtuple("TargetState", "kind detail num_train num_test", defaults=("", 0, 0))


class SetupError(Exception):
    """Installation failed; the message says what went wrong and what to do."""


def validate_dataset_dir(directory):
    """Read a cifar-10-batches-py directory as the loaders will -> (num_train, num_test)."""
    for name in REQUIRED_FILES:
        if not (directory / name).is_file():  # symlinks to files are fine: loaders follow them
            problem = "is not a regular file" if os.path.lexists(directory / name) else "is missing"
            raise CIFAR10FormatError(f"{directory / name} {problem}")
    num_train = sum(len(read_batch(directory / name)[1]) for name in TRAIN_BATCHES)
    num_test = len(read_batch(directory / TEST_BATCH)[1])
    with open(directory / META_FILE, "rb") as f:
        meta = load_pickle(f)
    names = meta.get("label_names", meta.get(b"label_names")) if isinstance(meta, dict) else None
    if not isinstance(names, list) or len(names) != 10:
        raise CIFAR10FormatError(f"{directory / META_FILE}: expected a dict whose 'label_names' "
                                 "lists 10 class names")
    return num_train, num_test


def target_state(target):
    """Inspect the install target (a Path) without changing it -> TargetState."""
    if not os.path.lexists(target):
        return TargetState("absent")
    if not target.is_dir():
        what = "a broken symlink" if target.is_symlink() else "not a directory"
        return TargetState("incomplete", f"{target} is {what}")
    if not target.is_symlink() and not any(target.iterdir()):
        return TargetState("empty")
    try:
        return TargetState("complete", "", *validate_dataset_dir(target))
    except (ValueError, OSError) as exc:
        return TargetState("incomplete", str(exc))


def _checked_members(members, archive):
    """The members under cifar-10-batches-py/, after refusing the whole archive if any
    member is a link, a special file, or at a path that leads outside the target."""
    selected, files = [], set()
    for member in members:
        path = PurePosixPath(member.name.replace("\\", "/"))  # '\\' separates on Windows
        problem = (f"a link to {member.linkname!r}" if member.issym() or member.islnk() else
                   "a device or other special file" if not (member.isfile() or member.isdir())
                   else "outside the target" if path.is_absolute() or ".." in path.parts
                   or PureWindowsPath(member.name).drive else None)
        if problem:
            raise SetupError(f"{archive}: refused: member {member.name!r} is {problem}; a "
                             "CIFAR-10 archive only holds regular files and folders")
        if path.parts[:1] == (ARCHIVE_DIR,):  # anything else is not part of the data set
            selected.append(member)
            files.update(path.parts[1:] if member.isfile() and len(path.parts) == 2 else ())
    missing = [f"{ARCHIVE_DIR}/{name}" for name in REQUIRED_FILES if name not in files]
    if missing:
        raise SetupError(f"{archive}: not a CIFAR-10 python archive: it lacks {', '.join(missing)} "
                         "(as regular files, as in cifar-10-python.tar.gz)")
    return selected


def _unpack(archive, destination):
    """Unpack the CIFAR-10 members of archive into destination; return the new directory."""
    reading = True
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            # Reading the compressed stream to its end checks its CRC: tarfile alone takes
            # a damaged header for the end of the archive and stops listing there.
            while tar.fileobj.read(CHUNK):
                pass
            members, reading = _checked_members(members, archive), False
            # tarfile's 'data' filter (Python >= 3.11.4) refuses escapes again as it writes.
            tar.extractall(destination, members,
                           **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        if reading:
            raise SetupError(f"{archive}: cannot be read as a tar archive, it is truncated or "
                             f"corrupt ({type(exc).__name__}: {exc}). Download it again.") from exc
        if isinstance(exc, tarfile.TarError):  # the 'data' filter's refusals
            raise SetupError(f"{archive}: refused while unpacking: {exc}") from exc
        raise SetupError(f"could not unpack {archive} into {destination}: {exc}") from exc
    return Path(destination) / ARCHIVE_DIR


def download(url, destination, timeout=NETWORK_TIMEOUT, progress=True):
    """Download url into the file destination, with a progress bar; raise SetupError."""
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except (OSError, ValueError) as exc:  # URLError, timeouts and refused connections
        problem = (f"the server answered {exc.code} {exc.reason}. Has the address moved?"
                   if isinstance(exc, urllib.request.HTTPError)
                   else f"{getattr(exc, 'reason', exc)}. No network?")
        raise SetupError(f"could not download {url}: {problem} {OFFLINE_HINT}") from exc
    total, written = int(response.headers.get("Content-Length") or 0) or None, 0
    with response, open(destination, "wb") as out, tqdm(
            total=total, unit="B", unit_scale=True, unit_divisor=1024,
            desc=PurePosixPath(url).name, disable=not progress) as bar:
        try:
            for chunk in iter(lambda: response.read(CHUNK), b""):
                written += out.write(chunk)
                bar.update(len(chunk))
        except OSError as exc:
            raise SetupError(f"the download of {url} broke off after {written} bytes ({exc}). "
                             f"Run this again, or: {OFFLINE_HINT}") from exc
    if total is not None and written != total:
        raise SetupError(f"the download of {url} stopped at {written} of {total} bytes. "
                         f"Run this again, or: {OFFLINE_HINT}")
    return Path(destination)


def _digests(path, source, expected):
    """{'md5': hex, 'sha256': hex} of the file, after checking the (algorithm, hex) pairs."""
    digests = {}
    for algorithm in ("md5", "sha256"):
        with open(path, "rb") as f:
            digests[algorithm] = hashlib.file_digest(f, algorithm).hexdigest()
    for algorithm, hex_digest in expected:
        if hex_digest is not None and digests[algorithm] != hex_digest.strip().lower():
            raise SetupError(
                f"{source}: {algorithm} mismatch: expected {hex_digest.strip().lower()}, got "
                f"{digests[algorithm]}. The file is damaged (e.g. an interrupted download) or "
                "is not the archive you meant: download it again, or check the checksum you gave.")
    return digests


def install(target=DEFAULT_CIFAR10_DIR, archive=None, md5=None, sha256=None,
            url=OFFICIAL_URL, timeout=NETWORK_TIMEOUT, progress=True):
    """Install CIFAR-10 into target from archive (never the network), else by download.
    Returns the TargetState of the install; raises SetupError saying what to do."""
    target = Path(target)
    state = target_state(target)
    if state.kind == "complete":
        try:
            record = json.loads((target / MARKER).read_text(encoding="utf-8"))
            origin = f"; installed from {record['source']}, sha256 {record['sha256']}"
        except (OSError, ValueError, KeyError, TypeError):
            origin = ""
        print(f"CIFAR-10 is already installed in {target} ({state.num_train} training and "
              f"{state.num_test} test images{origin}): nothing to do. "
              "To install another archive, move that directory away first.", flush=True)
        return state
    if state.kind == "incomplete":
        origin = ("It was installed by this tool but has changed since."
                  if os.path.lexists(target / MARKER) else "This tool only ever moves a "
                  "complete, checked directory into place, so it did not create it.")
        raise SetupError(f"{target} exists but is not a complete CIFAR-10 install: {state.detail}. "
                         f"{origin} It is left untouched: move it away (e.g. `mv {target} "
                         f"{target}.old`) or delete it yourself, then run this again.")
    if archive is not None and not Path(archive).is_file():
        what = "is not a file" if os.path.lexists(archive) else "does not exist"
        raise SetupError(f"archive {archive} {what}. Give the path of cifar-10-python.tar.gz.")

    created = [p for p in [target.parent, *target.parent.parents] if not p.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    # Same filesystem as the target, so the final rename is atomic; '.tmp-' is gitignored.
    workdir = Path(tempfile.mkdtemp(prefix=".tmp-cifar10-", dir=target.parent))
    installed = False
    try:
        source, expected = str(archive), [("md5", md5), ("sha256", sha256)]
        if archive is None:
            print(f"Downloading {url} ...", flush=True)
            archive = download(url, workdir / PurePosixPath(url).name, timeout, progress)
            source, expected = url, [("md5", OFFICIAL_MD5)] + expected
        digests = _digests(archive, source, expected)
        unpacked = _unpack(archive, workdir / "unpacked")
        try:
            num_train, num_test = validate_dataset_dir(unpacked)
        except (ValueError, OSError) as exc:
            detail = str(exc).replace(str(unpacked.parent) + os.sep, "")  # names as in the archive
            raise SetupError(f"{source}: not a usable CIFAR-10 python archive: {detail}") from exc
        record = {"source": source, **digests, "num_train": num_train, "num_test": num_test}
        (unpacked / MARKER).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        if target_state(target).kind == "empty":
            target.rmdir()
        try:
            os.replace(unpacked, target)
        except OSError as exc:
            installed = target_state(target).kind == "complete"  # another run finished first?
            if not installed:
                raise SetupError(f"could not move the data set into {target}: {exc}") from exc
            return target_state(target)
        installed = True
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        for directory in [] if installed else created:  # deepest first, while empty
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()
    print(f"Installed CIFAR-10 into {target}: {num_train} training and {num_test} test images "
          f"from {source}\n  sha256 {digests['sha256']}\n  md5    {digests['md5']}", flush=True)
    return TargetState("complete", "", num_train, num_test)


def _parser():
    parser = argparse.ArgumentParser(
        prog="get_datasets.sh", description="Install CIFAR-10 (python version) into datasets/"
        "cifar-10-batches-py/: download the official archive, or install a local copy of it.",
        epilog="Offline: CIFAR10_ARCHIVE=/path/to/cifar-10-python.tar.gz make data. "
        f"The official archive's md5 is {OFFICIAL_MD5}.")
    parser.add_argument("--archive", metavar="PATH", help="install this well-formed CIFAR-10 "
                        f"python archive instead of downloading (default: ${ENV_ARCHIVE})")
    parser.add_argument("--target", metavar="DIR", type=Path, default=DEFAULT_CIFAR10_DIR,
                        help="directory to create (default: %(default)s)")
    parser.add_argument("--md5", help="expected md5 of the archive (32 hex digits)")
    parser.add_argument("--sha256", help="expected sha256 of the archive (64 hex digits)")
    parser.add_argument("--url", default=OFFICIAL_URL,
                        help="download from this mirror; it must still match the official md5")
    parser.add_argument("--timeout", type=float, default=NETWORK_TIMEOUT,
                        help="network timeout in seconds (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no download progress bar")
    return parser


def main(argv=None):
    """Command-line entry point -> exit code: 0 installed (or already there), 1 failed
    (message on stderr, nothing left behind), 2 bad arguments, 130 interrupted."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        for name, length in (("md5", 32), ("sha256", 64)):
            digest = getattr(args, name)
            if digest is not None and not re.fullmatch(rf"\s*[0-9a-fA-F]{{{length}}}\s*", digest):
                parser.error(f"--{name}: expected {length} hexadecimal digits, got {digest!r}")
        if not args.timeout > 0:  # also refuses nan: a zero timeout makes sockets non-blocking
            parser.error(f"--timeout: expected a number of seconds > 0, got {args.timeout}")
    except SystemExit as exc:  # --help or a usage error, already printed by argparse
        return exc.code
    archive = os.environ.get(ENV_ARCHIVE) or None if args.archive is None else args.archive
    if archive and args.archive is None:
        print(f"Using the archive ${ENV_ARCHIVE}={archive}", flush=True)
    # Turn `kill`/CI cancellation into KeyboardInterrupt so the temp directory is removed.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        install(args.target, archive, args.md5, args.sha256, args.url, args.timeout,
                not args.no_progress)
    except (SetupError, OSError) as exc:  # OSError: e.g. no permission to create datasets/
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: nothing was installed", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
