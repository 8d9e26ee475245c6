"""Instructor tests share the fixtures of the student tests (tests/cifar_archives.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from cifar_archives import cifar10_sample_archive, make_cifar_archive  # noqa: E402,F401
