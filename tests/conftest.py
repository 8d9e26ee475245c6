"""Shared fixtures: the CIFAR-10 sample archive and synthetic CIFAR-like archives."""
from cifar_archives import cifar10_sample_archive, make_cifar_archive  # noqa: F401 (fixtures)
