"""Small CIFAR-10-like batch files and archives for the data tests, with optional defects.

Synthetic data: random uint8 images and labels, any number of images per batch, pickled
the way CIFAR-10 files are (a dict with 'data' (n, 3072) uint8 and 'labels'). The archive
builder can also corrupt, truncate, drop members, add members that try to escape the
target, or plant a pickle that runs a shell command when loaded with plain pickle.
"""
import hashlib
import io
import os
import pickle
import shlex
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

ARCHIVE_DIR = "cifar-10-batches-py"
TRAIN_NAMES = tuple(f"data_batch_{i}" for i in range(1, 6))
BATCH_NAMES = TRAIN_NAMES + ("test_batch",)
LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck"]
ESCAPES = ("dotdot", "absolute", "symlink", "hardlink", "device")


class RunsShellCommand:
    """Pickles as ``os.system(command)``: plain pickle.load runs the command."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def touch_command(path):
    """A shell command whose only effect is creating path (the tamper tests' witness)."""
    return f"touch {shlex.quote(str(path))}"


def random_batch(n, rng):
    """data: (n, 3072) uint8 and labels: list of n ints in 0..9."""
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, size=n)]
    return data, labels


def batch_bytes(data, labels, protocol=2, numpy_core=True, bytes_keys=False, extra=None):
    """Pickle one batch dict.

    numpy_core: name the array reconstructor ``numpy.core.multiarray._reconstruct`` as the
    official files (written by numpy 1) do, instead of numpy 2's ``numpy._core``.
    """
    batch = {"batch_label": "synthetic batch", "labels": labels, "data": data}
    if extra:
        batch.update(extra)
    if bytes_keys:
        batch = {k.encode(): v for k, v in batch.items()}
    raw = pickle.dumps(batch, protocol=protocol)
    if numpy_core:
        # GLOBAL (protocols <= 3) names the module as a newline-terminated string, so the
        # rename keeps the pickle valid; later protocols use length-prefixed strings.
        assert protocol <= 3, "numpy_core renaming needs protocol <= 3"
        raw = raw.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    return raw


def meta_bytes():
    return pickle.dumps({"num_cases_per_batch": 10, "label_names": LABEL_NAMES,
                         "num_vis": 3072}, protocol=2)


def write_batch_dir(directory, sizes=(10, 10, 10, 10, 10), test_size=10, seed=0):
    """Write a cifar-10-batches-py directory; return {batch name: (data, labels)}."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    batches = {}
    for name, n in zip(BATCH_NAMES, tuple(sizes) + (test_size,)):
        batches[name] = random_batch(n, rng)
        (directory / name).write_bytes(batch_bytes(*batches[name]))
    (directory / "batches.meta").write_bytes(meta_bytes())
    return batches


@dataclass
class SyntheticArchive:
    path: Path
    batches: dict = field(default_factory=dict)  # name -> (data (n, 3072) uint8, labels)

    @property
    def md5(self):
        return hashlib.md5(self.path.read_bytes()).hexdigest()

    @property
    def sha256(self):
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def _add_bytes(tar, name, payload):
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(payload))


def _add_escape(tar, kind, outside):
    """A member that would put something at outside (a path beyond the target)."""
    if kind == "dotdot":
        # The installer unpacks into <parent>/.tmp-*/unpacked/, so this name resolves to
        # the folder above <parent>, where `outside` is expected to be.
        _add_bytes(tar, f"{ARCHIVE_DIR}/../../../../{outside.name}", b"escaped")
    elif kind == "absolute":
        _add_bytes(tar, str(outside), b"escaped")
    elif kind == "symlink":
        # The classic two-step: a link to outside's folder, then a file through it.
        link = tarfile.TarInfo(f"{ARCHIVE_DIR}/escape")
        link.type, link.linkname = tarfile.SYMTYPE, str(outside.parent)
        tar.addfile(link)
        _add_bytes(tar, f"{ARCHIVE_DIR}/escape/{outside.name}", b"escaped")
    elif kind == "hardlink":
        link = tarfile.TarInfo(f"{ARCHIVE_DIR}/hardlink")
        link.type, link.linkname = tarfile.LNKTYPE, str(outside)
        tar.addfile(link)
    elif kind == "device":
        dev = tarfile.TarInfo(f"{ARCHIVE_DIR}/null")
        dev.type, dev.devmajor, dev.devminor = tarfile.CHRTYPE, 1, 3
        tar.addfile(dev)
    else:
        raise ValueError(f"escape: expected one of {ESCAPES}, got {kind!r}")


def build_archive(path, sizes=(10, 10, 10, 10, 10), test_size=10, seed=0, compression="gz",
                  drop=(), escape=None, outside=None, tamper=None, tamper_command=None,
                  replace=None, extra_members=(), corrupt=False, truncate=False):
    """Write a CIFAR-10-like archive at path and return a SyntheticArchive.

    - sizes, test_size: images in data_batch_1..5 and in test_batch (any n >= 1)
    - drop: member file names (e.g. "test_batch") to leave out
    - escape: one of ESCAPES, a member aiming at the path outside
    - tamper: a batch name whose pickle also carries RunsShellCommand(tamper_command)
    - replace: {file name: raw bytes} written instead of the generated file
    - extra_members: (name, bytes) pairs added as regular files
    - corrupt: overwrite bytes in the middle of the compressed file
    - truncate: keep only the first half of the compressed file
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    replace = dict(replace or {})
    archive = SyntheticArchive(path)
    files = {}
    for name, n in zip(BATCH_NAMES, tuple(sizes) + (test_size,)):
        data, labels = random_batch(n, rng)
        archive.batches[name] = (data, labels)
        extra = {"payload": RunsShellCommand(tamper_command)} if name == tamper else None
        files[name] = batch_bytes(data, labels, extra=extra)
    files["batches.meta"] = meta_bytes()
    files["readme.html"] = b"<html>synthetic CIFAR-10-like test archive</html>\n"
    files.update(replace)

    mode = "w:" + compression if compression else "w"
    with tarfile.open(path, mode) as tar:
        top = tarfile.TarInfo(ARCHIVE_DIR)
        top.type, top.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(top)
        for name, payload in files.items():
            if name not in drop:
                _add_bytes(tar, f"{ARCHIVE_DIR}/{name}", payload)
        for name, payload in extra_members:
            _add_bytes(tar, name, payload)
        if escape is not None:
            _add_escape(tar, escape, Path(outside))

    if corrupt or truncate:
        raw = bytearray(path.read_bytes())
        if corrupt:
            middle = len(raw) // 2
            raw[middle:middle + 256] = bytes(256)
        if truncate:
            raw = raw[: len(raw) // 2]
        path.write_bytes(bytes(raw))
    return archive


# ---------------------------------------------------------------------------
# Fixtures (re-exported by tests/conftest.py, and by the course's own tool tests)
# ---------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[2]
# Where CI keeps its sample archive, beside the project (never inside it); elsewhere
# $CIFAR10_ARCHIVE names an archive.
SAMPLE_ARCHIVE = REPO_ROOT.parent / "shared" / "datasets" / "cifar-10-subset-python.tar.gz"


@pytest.fixture(scope="session")
def cifar10_sample_archive():
    """Path of the real CIFAR-10 archive to test with: $CIFAR10_ARCHIVE, else the sample.

    Missing: the test is skipped on a developer machine, but fails under CI (env CI set),
    where skipping would hide that the data tests never ran.
    """
    path = Path(os.environ.get("CIFAR10_ARCHIVE") or SAMPLE_ARCHIVE)
    if not path.is_file():
        message = f"no CIFAR-10 archive at {path} (set CIFAR10_ARCHIVE)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def make_cifar_archive(tmp_path):
    """Factory: make_cifar_archive(name="x.tar.gz", **options) -> SyntheticArchive.

    Writes into tmp_path/"archives"; options are those of cifar_archives.build_archive
    (batch sizes, drop, escape, tamper, replace, corrupt, truncate, ...).
    """
    def make(name="synthetic.tar.gz", **options):
        return build_archive(tmp_path / "archives" / name, **options)

    return make
