"""Checks at the public boundary, shared by every module.

Each check raises ``TypeError`` (wrong kind of object) or ``ValueError`` (right kind,
wrong value) with a message that names the argument, what was expected and what
arrived, e.g.::

    ValueError: x: expected a 2-D array of shape (N, D), got shape (4, 3, 2)

Why not ``assert``: asserts vanish under ``python -O``, and a wrong shape that numpy
broadcasts silently is the worst bug a teaching layer can have.
"""
import math
import numbers

import numpy as np


def check_array(value, name, ndim=None, shape_doc=None, floating=False):
    """Require a numpy array, optionally of a given ndim and a floating dtype.

    Inputs:
    - value: the object to check
    - name: how the caller's user knows the argument, e.g. "x" or "dout"
    - ndim: required number of dimensions, or None for any
    - shape_doc: the documented shape used in the message, e.g. "(N, D)"
    - floating: require a floating-point dtype

    Returns value unchanged.
    """
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(value).__name__}")
    if ndim is not None and value.ndim != ndim:
        doc = f" of shape {shape_doc}" if shape_doc else ""
        raise ValueError(
            f"{name}: expected a {ndim}-D array{doc}, got shape {value.shape}"
        )
    # dtype.kind rather than np.issubdtype: this runs on every layer call of every
    # training step, and issubdtype is several times slower.
    if floating and value.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point array, got dtype {value.dtype}")
    return value


def check_shape(value, name, expected_shape):
    """Require ``value.shape == expected_shape`` (value already known to be an array)."""
    expected_shape = tuple(expected_shape)
    if value.shape != expected_shape:
        raise ValueError(f"{name}: expected shape {expected_shape}, got {value.shape}")
    return value


def check_mode(mode, name="mode"):
    """Require 'train' or 'test'."""
    if mode not in ("train", "test"):
        raise ValueError(f"{name}: expected 'train' or 'test', got {mode!r}")
    return mode


def check_real(value, name):
    """Require a real number (not bool) and return it as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    return float(value)


def check_positive_finite(value, name):
    """Require a finite real number > 0 (e.g. eps, learning rate)."""
    value = check_real(value, name)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    return value


def check_probability(value, name, low_open=True, high_open=False):
    """Require a real number in (0, 1] by default (a keep probability).

    low_open/high_open choose whether 0 and 1 are excluded.
    """
    value = check_real(value, name)
    low_ok = value > 0 if low_open else value >= 0
    high_ok = value < 1 if high_open else value <= 1
    if not (math.isfinite(value) and low_ok and high_ok):
        interval = ("(" if low_open else "[") + "0, 1" + (")" if high_open else "]")
        raise ValueError(f"{name}: expected a number in {interval}, got {value!r}")
    return value


def check_int(value, name, minimum):
    """Require an integer (not bool) >= minimum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def check_positive_int(value, name):
    """Require an integer (not bool) >= 1."""
    return check_int(value, name, 1)


def check_nonnegative_int(value, name):
    """Require an integer (not bool) >= 0 (a seed, a count that may be zero)."""
    return check_int(value, name, 0)


def check_choice(value, name, choices):
    """Require value to be one of choices (compared with ==)."""
    if value not in choices:
        raise ValueError(f"{name}: expected one of {list(choices)!r}, got {value!r}")
    return value


def check_same_length(a, name_a, b, name_b):
    """Require two arrays with the same first dimension (e.g. data and labels)."""
    if len(a) != len(b):
        raise ValueError(
            f"{name_a} and {name_b}: expected the same number of rows, "
            f"got {len(a)} and {len(b)}"
        )
