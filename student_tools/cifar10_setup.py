"""Install CIFAR-10 (python version) into ``datasets/cifar-10-batches-py/``.

Usage (``datasets/get_datasets.sh`` and ``make data`` are thin wrappers around this)::

    python -m student_tools.cifar10_setup                       # download the official archive
    python -m student_tools.cifar10_setup --archive PATH        # offline, from a local copy
    CIFAR10_ARCHIVE=PATH python -m student_tools.cifar10_setup  # the same, as `make data` gets it

What it guarantees:

- The official download is checked against its md5 before anything is unpacked. A local
  archive need not be the official one (classrooms use subsets), so it is checked to be a
  well-formed CIFAR-10 python archive instead, and against ``--md5``/``--sha256`` when
  given; its sha256 is printed so you know which archive you installed.
- All or nothing: the archive is unpacked into a temporary directory next to the target,
  every batch is loaded with the restricted unpickler of ``cs231n.data_utils``, and only
  then is the directory renamed into place. A failed or interrupted run leaves nothing.
- Archive members that would land outside the target (absolute paths, ``..``, links,
  devices) make the whole archive refused.
- Nothing of yours is deleted: a complete install is left alone, and an existing but
  incomplete target directory is refused with a message saying what to do.

The functions tests and scripts call: ``install``, ``install_from_archive``,
``download``, ``validate_dataset_dir``, ``target_state``, ``main(argv) -> exit code``.
"""
import argparse
import hashlib
import json
import os
import shutil
import signal
import sys
import tarfile
import tempfile
import threading
import urllib.error
import urllib.request
import zlib
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import NamedTuple

from cs231n.data_utils import (
    DEFAULT_CIFAR10_DIR,
    META_FILE,
    NUM_CLASSES,
    TEST_BATCH,
    TRAIN_BATCHES,
    CIFAR10FormatError,
    load_pickle,
    read_batch,
)

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_DIR = "cifar-10-batches-py"  # the one top-level folder of the official archive
REQUIRED_FILES = TRAIN_BATCHES + (TEST_BATCH, META_FILE)
MARKER = ".cs231n-install.json"  # written last into a checked install: where it came from
ENV_ARCHIVE = "CIFAR10_ARCHIVE"
NETWORK_TIMEOUT = 20.0  # seconds per connect/read: offline machines fail fast
CHUNK = 1 << 20

OFFLINE_HINT = (
    "Download cifar-10-python.tar.gz on a machine with a network (" + OFFICIAL_URL + "), "
    "copy it here and run `CIFAR10_ARCHIVE=/path/to/cifar-10-python.tar.gz make data` "
    "(or `bash datasets/get_datasets.sh --archive /path/to/cifar-10-python.tar.gz`)."
)


class SetupError(Exception):
    """Installation failed; the message says what went wrong and what to do."""


class ChecksumError(SetupError):
    """The archive's md5/sha256 is not the expected one."""


class ArchiveError(SetupError):
    """The archive is unreadable, unsafe or not a CIFAR-10 python archive."""


class TargetError(SetupError):
    """Something that is not a complete install already sits at the target."""


class NetworkError(SetupError):
    """The download failed."""


class TargetState(NamedTuple):
    """What ``target_state`` found. kind: 'absent', 'empty', 'complete' or 'incomplete'."""

    kind: str
    detail: str = ""
    num_train: int = 0
    num_test: int = 0


def _say(message):
    print(message, flush=True)


def file_digests(path):
    """md5 and sha256 of a file, read once: {'md5': hex, 'sha256': hex}."""
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            md5.update(chunk)
            sha256.update(chunk)
    return {"md5": md5.hexdigest(), "sha256": sha256.hexdigest()}


def check_digests(archive, digests, md5=None, sha256=None):
    """Raise ChecksumError unless the digests match the expected md5/sha256 (when given)."""
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected is not None and digests[algorithm] != expected.lower():
            raise ChecksumError(
                f"{archive}: {algorithm} mismatch: expected {expected.lower()}, got "
                f"{digests[algorithm]}. The file is damaged (e.g. an interrupted download) or "
                "is not the archive you meant: download it again, or check the checksum you gave."
            )


def validate_dataset_dir(directory):
    """Check a ``cifar-10-batches-py`` directory the way the loaders will read it.

    Every batch must load with the restricted unpickler into data: (n, 3072) uint8 and
    n labels in 0..9; ``batches.meta`` must hold the 10 class names.

    Returns (num_train, num_test). Raises CIFAR10FormatError (UnsafePickleError for a
    tampered pickle, both ValueErrors) naming the offending file.
    """
    directory = Path(directory)
    for name in REQUIRED_FILES:
        path = directory / name
        if not path.is_file():  # symlinks to files are fine: the loaders follow them
            problem = "is not a regular file" if os.path.lexists(path) else "is missing"
            raise CIFAR10FormatError(f"{path} {problem}")
    num_train = sum(len(read_batch(directory / name)[1]) for name in TRAIN_BATCHES)
    num_test = len(read_batch(directory / TEST_BATCH)[1])
    with open(directory / META_FILE, "rb") as f:
        meta = load_pickle(f)
    if isinstance(meta, dict):
        meta = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in meta.items()}
    names = meta.get("label_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or len(names) != NUM_CLASSES:
        raise CIFAR10FormatError(
            f"{directory / META_FILE}: expected a dict whose 'label_names' lists "
            f"{NUM_CLASSES} class names"
        )
    return num_train, num_test


def target_state(target):
    """Inspect the install target without changing it (see TargetState)."""
    target = Path(target)
    if not os.path.lexists(target):
        return TargetState("absent")
    if not target.is_dir():
        what = "a broken symlink" if target.is_symlink() else "not a directory"
        return TargetState("incomplete", f"{target} is {what}")
    if not target.is_symlink() and not any(target.iterdir()):
        return TargetState("empty")
    try:
        num_train, num_test = validate_dataset_dir(target)
    except (ValueError, OSError) as exc:
        return TargetState("incomplete", str(exc))
    return TargetState("complete", "", num_train, num_test)


def _installed_from(target):
    """'; installed from <source>, sha256 <hex>' as the installing run recorded it, or ''."""
    try:
        record = json.loads((Path(target) / MARKER).read_text(encoding="utf-8"))
        return f"; installed from {record['source']}, sha256 {record['sha256']}"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def _refuse_target(target, state):
    recorded = os.path.lexists(Path(target) / MARKER)
    origin = (
        "It was installed by this tool but has changed since."
        if recorded
        else "This tool only ever moves a complete, checked directory into place, so it did "
        "not create it."
    )
    return TargetError(
        f"{target} exists but is not a complete CIFAR-10 install: {state.detail}. {origin} "
        f"It is left untouched: move it away (e.g. `mv {target} {target}.old`) or delete it "
        "yourself, then run this again."
    )


def _safe_members(members, archive):
    """The members to extract (those under cifar-10-batches-py/), after refusing unsafe ones.

    tarfile's 'data' filter refuses the same things during extraction; checking first
    gives one clear message for the whole archive before anything is written.
    """
    selected, files = [], set()
    for member in members:
        path = PurePosixPath(member.name)
        # Backslashes and drive letters are separators and roots on Windows.
        windows = PureWindowsPath(member.name)
        if path.is_absolute() or windows.drive or windows.root:
            raise ArchiveError(f"{archive}: refused: member {member.name!r} has an absolute path")
        if ".." in path.parts or ".." in windows.parts:
            raise ArchiveError(
                f"{archive}: refused: member {member.name!r} would land outside the target ('..')"
            )
        if not (member.isfile() or member.isdir()):
            if member.issym():
                kind = f"a symlink to {member.linkname!r}"
            elif member.islnk():
                kind = f"a hard link to {member.linkname!r}"
            elif member.isdev():
                kind = "a device or FIFO"
            else:
                kind = "not a regular file or directory"
            raise ArchiveError(
                f"{archive}: refused: member {member.name!r} is {kind}; a CIFAR-10 archive only "
                "holds regular files"
            )
        if not path.parts or path.parts[0] != ARCHIVE_DIR:
            continue  # not part of the data set: left in the archive
        selected.append(member)
        if member.isfile() and len(path.parts) == 2:
            files.add(path.parts[1])
    missing = [name for name in REQUIRED_FILES if name not in files]
    if missing:
        raise ArchiveError(
            f"{archive}: not a CIFAR-10 python archive: it lacks "
            + ", ".join(f"{ARCHIVE_DIR}/{name}" for name in missing)
            + f" (expected {ARCHIVE_DIR}/data_batch_1..5, test_batch and batches.meta as "
            "regular files, as in cifar-10-python.tar.gz)"
        )
    return selected


def _unpack(archive, destination):
    """Unpack the CIFAR-10 members of archive into destination; return the new directory."""
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise _unreadable(archive, exc) from exc
    with tar:
        try:
            members = tar.getmembers()
            # Reading the compressed stream to its end checks its CRC. tarfile alone
            # takes a damaged header for the end of the archive and stops listing there.
            while tar.fileobj.read(CHUNK):
                pass
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise _unreadable(archive, exc) from exc
        members = _safe_members(members, archive)
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        try:
            tar.extractall(destination, members=members, **kwargs)
        except tarfile.TarError as exc:  # includes the 'data' filter's refusals
            raise ArchiveError(f"{archive}: refused while unpacking: {exc}") from exc
        except OSError as exc:  # the archive was read once already: this is the disk
            raise SetupError(f"could not unpack {archive} into {destination}: {exc}") from exc
    return Path(destination) / ARCHIVE_DIR


def _unreadable(archive, exc):
    return ArchiveError(
        f"{archive}: cannot be read as a tar archive, it is truncated or corrupt "
        f"({type(exc).__name__}: {exc}). Download it again."
    )


def install_from_archive(archive, target=DEFAULT_CIFAR10_DIR, md5=None, sha256=None,
                         source=None):
    """Install CIFAR-10 from a local archive into target (see the module docstring).

    Inputs:
    - archive: path of a cifar-10-python.tar.gz-like archive (any tar compression)
    - target: the cifar-10-batches-py directory to create
    - md5, sha256: expected hex digests of the archive, checked before unpacking
    - source: how to name the archive's origin in messages and the install record

    Returns the TargetState of the finished install. Raises SetupError subclasses.
    """
    return _install(Path(target), archive=Path(archive), md5=md5, sha256=sha256,
                    source=source)


def download(url, destination, timeout=NETWORK_TIMEOUT, progress=True):
    """Download url into the file destination, with a progress bar; raise NetworkError."""
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except (OSError, ValueError) as exc:  # URLError, timeouts and refused connections
        if isinstance(exc, urllib.error.HTTPError):
            problem = f"the server answered {exc.code} {exc.reason}. Has the address moved?"
        else:
            problem = f"{getattr(exc, 'reason', exc)}. No network?"
        raise NetworkError(f"could not download {url}: {problem} {OFFLINE_HINT}") from exc
    from tqdm import tqdm  # only a download needs it

    with response, open(destination, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        written = 0
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                  desc=PurePosixPath(url).name, disable=not progress) as bar:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except OSError as exc:
                    raise NetworkError(
                        f"the download of {url} broke off after {written} bytes ({exc}). "
                        f"Run this again, or: {OFFLINE_HINT}"
                    ) from exc
                if not chunk:
                    break
                out.write(chunk)
                written += len(chunk)
                bar.update(len(chunk))
    if total is not None and written != total:
        raise NetworkError(
            f"the download of {url} stopped at {written} of {total} bytes. "
            f"Run this again, or: {OFFLINE_HINT}"
        )
    return Path(destination)


def install(target=DEFAULT_CIFAR10_DIR, archive=None, md5=None, sha256=None,
            url=OFFICIAL_URL, timeout=NETWORK_TIMEOUT, progress=True):
    """Install CIFAR-10 into target: from archive when given, else download the official one.

    The download must match the official md5 (and md5/sha256 when given); the network is
    never tried when an archive is given. Returns the TargetState of the install.
    """
    return _install(Path(target), archive=None if archive is None else Path(archive),
                    md5=md5, sha256=sha256, url=url, timeout=timeout, progress=progress)


def _install(target, archive=None, md5=None, sha256=None, source=None, url=OFFICIAL_URL,
             timeout=NETWORK_TIMEOUT, progress=True):
    state = target_state(target)
    if state.kind == "complete":
        _say(
            f"CIFAR-10 is already installed in {target} ({state.num_train} training and "
            f"{state.num_test} test images{_installed_from(target)}): nothing to do. "
            "To install another archive, move that directory away first."
        )
        return state
    if state.kind == "incomplete":
        raise _refuse_target(target, state)
    if archive is not None and not archive.is_file():
        what = "is not a file" if os.path.lexists(archive) else "does not exist"
        raise SetupError(f"archive {archive} {what}. Give the path of cifar-10-python.tar.gz.")

    created = [p for p in [target.parent, *target.parent.parents] if not p.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    # Same filesystem as the target, so the final rename is atomic; '.tmp-' is gitignored.
    workdir = Path(tempfile.mkdtemp(prefix=".tmp-cifar10-", dir=target.parent))
    installed = False
    try:
        if archive is None:
            _say(f"Downloading {url} ...")
            archive = download(url, workdir / PurePosixPath(url).name, timeout, progress)
            source = source or url
            digests = file_digests(archive)
            check_digests(url, digests, md5=OFFICIAL_MD5)
        else:
            source = source or str(archive)
            digests = file_digests(archive)
        check_digests(source, digests, md5=md5, sha256=sha256)

        unpacked = _unpack(archive, workdir / "unpacked")
        try:
            num_train, num_test = validate_dataset_dir(unpacked)
        except (ValueError, OSError) as exc:
            # Name files as they sit in the archive, not by the temporary path.
            detail = str(exc).replace(str(unpacked.parent) + os.sep, "")
            raise ArchiveError(
                f"{source}: not a usable CIFAR-10 python archive: {detail}"
            ) from exc
        record = {"source": source, "md5": digests["md5"], "sha256": digests["sha256"],
                  "num_train": num_train, "num_test": num_test}
        (unpacked / MARKER).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")

        if target_state(target).kind == "empty":
            target.rmdir()
        try:
            os.replace(unpacked, target)
        except OSError as exc:
            # Another run (e.g. two `make` jobs) may have finished first.
            if target_state(target).kind == "complete":
                _say(f"CIFAR-10 was installed in {target} by another run meanwhile.")
                installed = True
                return target_state(target)
            raise TargetError(f"could not move the checked data set into {target}: {exc}") from exc
        installed = True
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if not installed:
            for directory in created:  # deepest first; only the empty ones made above
                try:
                    directory.rmdir()
                except OSError:
                    break

    _say(
        f"Installed CIFAR-10 into {target}: {num_train} training and {num_test} test images "
        f"from {source}\n  sha256 {digests['sha256']}\n  md5    {digests['md5']}"
    )
    return TargetState("complete", "", num_train, num_test)


def _hex_digest(length):
    def parse(text):
        text = text.strip().lower()
        if len(text) != length or any(c not in "0123456789abcdef" for c in text):
            raise argparse.ArgumentTypeError(
                f"expected {length} hexadecimal digits, got {text!r}")
        return text
    return parse


def _positive_seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:  # also refuses nan: a zero timeout would make sockets non-blocking
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def _parser():
    parser = argparse.ArgumentParser(
        prog="get_datasets.sh",
        description="Install CIFAR-10 (python version) into datasets/cifar-10-batches-py/: "
        "download the official archive, or install a local copy of it.",
        epilog=f"Offline: CIFAR10_ARCHIVE=/path/to/cifar-10-python.tar.gz make data. "
        f"The official archive's md5 is {OFFICIAL_MD5}.",
    )
    parser.add_argument(
        "--archive", metavar="PATH",
        help=f"install this local archive instead of downloading (default: ${ENV_ARCHIVE} "
        "when set); it need not be the official archive, but must be a well-formed "
        "CIFAR-10 python archive")
    parser.add_argument("--target", metavar="DIR", type=Path, default=DEFAULT_CIFAR10_DIR,
                        help="directory to create (default: %(default)s)")
    parser.add_argument("--md5", type=_hex_digest(32), help="expected md5 of the archive")
    parser.add_argument("--sha256", type=_hex_digest(64), help="expected sha256 of the archive")
    parser.add_argument("--url", default=OFFICIAL_URL,
                        help="download from this mirror; it must still match the official md5")
    parser.add_argument("--timeout", type=_positive_seconds, default=NETWORK_TIMEOUT,
                        help="network timeout in seconds (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no download progress bar")
    return parser


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    """Command-line entry point. Returns the exit code: 0 installed (or already there),
    1 failed (message on stderr, nothing left behind), 2 bad arguments, 130 interrupted."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help or a usage error, already printed by argparse
        return exc.code
    archive = args.archive
    if archive is None and os.environ.get(ENV_ARCHIVE):
        archive = os.environ[ENV_ARCHIVE]
        _say(f"Using the archive ${ENV_ARCHIVE}={archive}")

    # Turn `kill`/CI cancellation into KeyboardInterrupt so the temp directory is removed.
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main_thread else None
    try:
        if archive is None:
            install(args.target, md5=args.md5, sha256=args.sha256, url=args.url,
                    timeout=args.timeout, progress=not args.no_progress)
        else:
            install(args.target, archive=archive, md5=args.md5, sha256=args.sha256)
    except (SetupError, OSError) as exc:  # OSError: e.g. no permission to create datasets/
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: nothing was installed", file=sys.stderr)
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
