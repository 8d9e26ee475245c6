"""Shared fixtures: the CIFAR-10 sample archive and synthetic CIFAR-like archives."""
import os
from pathlib import Path

import pytest

from cifar_archives import build_archive

REPO_ROOT = Path(__file__).resolve().parents[1]
# The sample sits beside the project (never inside it): ../shared/datasets/.
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
