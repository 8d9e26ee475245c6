"""Checks at the public boundary, e.g. ``ValueError: dout: expected shape (4, 3), got (1, 3)``:
TypeError (wrong kind) or ValueError (wrong value), naming the argument, what was expected and
what arrived; plain raises, as asserts vanish under ``python -O``. Only what would otherwise
give a silently wrong answer is checked (shapes that broadcast, a mode or value that picks the
wrong branch or scale, missing keys); what numpy refuses by itself is left to numpy.
"""
import math
import numbers

import numpy as np


def check_array(value, name, ndim=None, shape_doc=None, floating=False):
    """Require a numpy array, optionally of ndim dimensions (shape_doc: e.g. "(N, D)")."""
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
    if value.shape != tuple(expected_shape):
        raise ValueError(f"{name}: expected shape {tuple(expected_shape)}, got {value.shape}")
    return value


def check_real(value, name):
    """Require a real number (not bool); returns a Python float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    return float(value)


def check_positive_finite(value, name):
    """Require a finite real number > 0 (eps, a step size)."""
    value = check_real(value, name)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    return value


def check_probability(value, name, closed=False):
    """Require a real number in (0, 1] (a keep probability), or in [0, 1] if closed."""
    value = check_real(value, name)
    if not ((value >= 0 if closed else value > 0) and value <= 1):  # NaN fails too
        raise ValueError(f"{name}: expected a number in {'[' if closed else '('}0, 1], "
                         f"got {value!r}")
    return value


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def check_positive_int(value, name):
    """Require an integer (not bool) >= 1 (no argument makes it accept 0)."""
    return _check_int(value, name, 1)


def check_nonnegative_int(value, name):
    """Require an integer (not bool) >= 0 (a seed, a count that may be zero)."""
    return _check_int(value, name, 0)


def check_choice(value, name, choices):
    if value not in choices:
        raise ValueError(f"{name}: expected one of {list(choices)!r}, got {value!r}")
    return value


def check_same_length(a, name_a, b, name_b):
    """Require the same first dimension (data and its labels)."""
    if len(a) != len(b):
        raise ValueError(f"{name_a} and {name_b}: expected the same number of rows, "
                         f"got {len(a)} and {len(b)}")


def check_examples(X, y, X_name="X", y_name="y", num_classes=None):
    """X: (N, d_1, ..., d_k), N >= 1; y: None or (N,) integer labels [in [0, num_classes)]."""
    if check_array(X, X_name).ndim < 2 or len(X) == 0:
        raise ValueError(f"{X_name}: expected a non-empty array of shape (N, d_1, ..., d_k), "
                         f"got shape {X.shape}")
    if y is not None:
        if check_array(y, y_name).ndim != 1 or y.dtype.kind not in "iu":
            raise ValueError(f"{y_name}: expected a 1-D integer array of labels, "
                             f"got shape {y.shape} and dtype {y.dtype}")
        check_same_length(X, X_name, y, y_name)
        if num_classes is not None:
            _check_labels(y, num_classes)


def _check_labels(y, C):
    """A label outside [0, C) would index another class, or from the end, silently."""
    if len(y) and (y.min() < 0 or y.max() >= C):
        raise ValueError(f"y: expected labels in [0, {C}) for C = {C} classes, "
                         f"got values in [{y.min()}, {y.max()}]")


# The layers' checks: one call at the top of each function of cs231n/layers.py.

def check_dout(dout, expected_shape):
    """dout must have the forward output's shape: a (1, D) or (N, 1) dout would broadcast."""
    return check_shape(check_array(dout, "dout"), "dout", expected_shape)


def check_softmax_inputs(x, y):
    """x: (N, C) scores; y: (N,) labels in [0, C)."""
    N, C = check_array(x, "x", ndim=2, shape_doc="(N, C)").shape
    _check_labels(check_shape(check_array(y, "y", ndim=1, shape_doc="(N,)"), "y", (N,)), C)


def _required(param, name, key, expected):
    """param[key]; param must be a dict holding key."""
    if not isinstance(param, dict):
        raise TypeError(f"{name}: expected a dict, got {type(param).__name__}")
    if key not in param:
        raise ValueError(f"{name}: missing required key {key!r} (expected {expected})")
    return param[key]


def check_mode(param, name):
    """param['mode'], required: 'train' or 'test'."""
    mode = _required(param, name, "mode", "'train' or 'test'")
    if mode not in ("train", "test"):
        raise ValueError(f"{name}['mode']: expected 'train' or 'test', got {mode!r}")
    return mode


def check_norm_inputs(x, gamma, beta, param, name):
    """x: (N, D); gamma, beta: (D,); param (bn_param or ln_param) a dict. Returns its eps
    (default 1e-5) as a Python float: a numpy float64 eps would turn float32 data into float64."""
    if not isinstance(param, dict):
        raise TypeError(f"{name}: expected a dict, got {type(param).__name__}")
    D = check_array(x, "x", ndim=2, shape_doc="(N, D)").shape[1]
    for value, arg in ((gamma, "gamma"), (beta, "beta")):
        if np.shape(value) != (D,):
            raise ValueError(f"{arg}: expected shape ({D},) to match x's D = {D} features, "
                             f"got {np.shape(value)}")
    return check_positive_finite(param.get("eps", 1e-5), f"{name}['eps']")


def check_batchnorm_inputs(x, gamma, beta, bn_param):
    """check_norm_inputs, then bn_param's keys; returns (mode, eps, momentum, running_mean,
    running_var), the statistics (D,) in x's dtype (zeros if absent): float32 stays float32."""
    eps = check_norm_inputs(x, gamma, beta, bn_param, "bn_param")
    mode = check_mode(bn_param, "bn_param")
    N, D = x.shape
    if mode == "train" and N < 2:
        raise ValueError(f"x: batch normalization in training mode needs N >= 2 examples "
                         f"(the variance of one example is 0), got shape {x.shape}")
    momentum = check_probability(bn_param.get("momentum", 0.9), "bn_param['momentum']",
                                 closed=True)
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
    """dropout_param's required keys; returns (mode, p), p the keep probability in (0, 1]."""
    mode = check_mode(dropout_param, "dropout_param")
    p = _required(dropout_param, "dropout_param", "p", "the keep probability, in (0, 1]")
    return mode, check_probability(p, "dropout_param['p']")


def _cache_values(cache, producer, keys):
    if not isinstance(cache, dict) or not all(k in cache for k in keys):
        got = f"keys {sorted(cache)}" if isinstance(cache, dict) else type(cache).__name__
        raise TypeError(f"cache: expected the cache returned by {producer} (a dict with keys "
                        f"{list(keys)}), got {got}")
    return [cache[k] for k in keys]


def check_norm_cache(dout, cache, producer):
    """A batch/layer norm cache and a dout of x_hat's shape; returns (x_hat, inv_std, gamma)."""
    x_hat, inv_std, gamma = _cache_values(cache, producer, ("x_hat", "inv_std", "gamma"))
    check_dout(dout, x_hat.shape)
    return x_hat, inv_std, gamma


def check_dropout_cache(dout, cache):
    """dropout_forward's cache and a dout of x's shape; returns the mask (None in test mode)."""
    mask, shape = _cache_values(cache, "dropout_forward", ("mask", "shape"))
    check_dout(dout, shape)
    return mask
