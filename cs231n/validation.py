"""Checks at the public boundary, shared by every module.

Each check raises ``TypeError`` (wrong kind of object) or ``ValueError`` (right kind,
wrong value) with a message that names the argument, what was expected and what
arrived, e.g.::

    ValueError: x: expected a 2-D array of shape (N, D), got shape (4, 3, 2)

Why not ``assert``: asserts vanish under ``python -O``, and a wrong shape that numpy
broadcasts silently is the worst bug a teaching layer can have.

The layer checks (second half) are only those that stop a silently wrong answer: shapes
that would broadcast, modes and values that would pick the wrong branch or scale, and
missing keys. Anything numpy refuses on its own with an error is left to numpy.
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
        raise ValueError(f"{name}: expected a {ndim}-D array{doc}, got shape {value.shape}")
    # dtype.kind rather than np.issubdtype: several times faster, on every training step.
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


# ---------------------------------------------------------------------------
# The layers' checks: one call at the top of each function of cs231n/layers.py
# ---------------------------------------------------------------------------


def check_dout(dout, expected_shape):
    """dout must have the forward output's shape: a (1, D) or (N, 1) dout would broadcast."""
    return check_shape(check_array(dout, "dout"), "dout", expected_shape)


def check_softmax_inputs(x, y):
    """x: (N, C) scores; y: (N,) labels in [0, C) (a negative label would index from the end)."""
    check_array(x, "x", ndim=2, shape_doc="(N, C)")
    N, C = x.shape
    check_array(y, "y", ndim=1, shape_doc="(N,)")
    check_shape(y, "y", (N,))
    if N and (y.min() < 0 or y.max() >= C):
        raise ValueError(
            f"y: expected labels in [0, {C}) for C = {C} classes, "
            f"got values in [{y.min()}, {y.max()}]"
        )


def _required(param, name, key, expected):
    """param[key] of a layer's parameter dict, refused with a message if absent."""
    if not isinstance(param, dict):
        raise TypeError(f"{name}: expected a dict, got {type(param).__name__}")
    if key not in param:
        raise ValueError(f"{name}: missing required key {key!r} (expected {expected})")
    return param[key]


def check_norm_inputs(x, gamma, beta, param, name):
    """x: (N, D); gamma, beta: (D,); param (bn_param or ln_param) a dict.

    Returns param's eps (default 1e-5), a finite number > 0.
    """
    if not isinstance(param, dict):
        raise TypeError(f"{name}: expected a dict, got {type(param).__name__}")
    D = check_array(x, "x", ndim=2, shape_doc="(N, D)").shape[1]
    for value, arg in ((gamma, "gamma"), (beta, "beta")):
        if np.shape(value) != (D,):
            raise ValueError(f"{arg}: expected shape ({D},) to match x's D = {D} features, "
                             f"got {np.shape(value)}")
    # As a Python float: a numpy float64 eps would turn float32 data into float64.
    return check_positive_finite(param.get("eps", 1e-5), f"{name}['eps']")


def check_batchnorm_inputs(x, gamma, beta, bn_param):
    """check_norm_inputs, then bn_param's keys (defaults as batchnorm_forward documents).

    Returns (mode, eps, momentum, running_mean, running_var); the running statistics are
    (D,) arrays in x's dtype (zeros if absent), so float32 training stays float32.
    """
    eps = check_norm_inputs(x, gamma, beta, bn_param, "bn_param")
    mode = check_mode(_required(bn_param, "bn_param", "mode", "'train' or 'test'"),
                      "bn_param['mode']")
    N, D = x.shape
    if mode == "train" and N < 2:
        raise ValueError(
            f"x: batch normalization in training mode needs N >= 2 examples "
            f"(the variance of one example is 0), got shape {x.shape}"
        )
    momentum = check_probability(bn_param.get("momentum", 0.9), "bn_param['momentum']",
                                 low_open=False)
    running = []
    for key in ("running_mean", "running_var"):
        value = bn_param.get(key)
        if value is None:
            value = np.zeros(D, dtype=x.dtype)
        if np.shape(value) != (D,):
            raise ValueError(f"bn_param[{key!r}]: expected shape ({D},), got {np.shape(value)}")
        running.append(np.asarray(value, dtype=x.dtype))
    return mode, eps, momentum, *running


def check_dropout_inputs(dropout_param):
    """dropout_param's required keys; returns (mode, p) with p, the keep probability, in (0, 1]."""
    mode = check_mode(_required(dropout_param, "dropout_param", "mode", "'train' or 'test'"),
                      "dropout_param['mode']")
    p = _required(dropout_param, "dropout_param", "p", "the keep probability, in (0, 1]")
    return mode, check_probability(p, "dropout_param['p']")


def _cache_values(cache, producer, keys):
    if not isinstance(cache, dict) or not all(k in cache for k in keys):
        got = f"keys {sorted(cache)}" if isinstance(cache, dict) else type(cache).__name__
        raise TypeError(
            f"cache: expected the cache returned by {producer} (a dict with keys "
            f"{list(keys)}), got {got}"
        )
    return [cache[k] for k in keys]


def check_norm_cache(dout, cache, producer):
    """A batch/layer norm cache and a dout of its x_hat's shape; returns (x_hat, inv_std, gamma)."""
    x_hat, inv_std, gamma = _cache_values(cache, producer, ("x_hat", "inv_std", "gamma"))
    check_dout(dout, x_hat.shape)
    return x_hat, inv_std, gamma


def check_dropout_cache(dout, cache):
    """dropout_forward's cache and a dout of x's shape; returns the mask (None in test mode)."""
    mask, shape = _cache_values(cache, "dropout_forward", ("mask", "shape"))
    check_dout(dout, shape)
    return mask
