"""Fixtures: the CIFAR-10 sample archive and synthetic CIFAR-like archives (cifar_archives.py)."""
from cifar_archives import cifar10_sample_archive, make_cifar_archive  # noqa: F401 (fixtures)
