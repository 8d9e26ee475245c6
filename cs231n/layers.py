"""Forward/backward pairs of every layer, in numpy.

Each layer is two pure functions side by side:

    out, cache = layer_forward(x, ...)      # cache: what backward needs, nothing more
    dx, ...    = layer_backward(dout, cache)

``dout`` is the gradient of the loss with respect to ``out`` (same shape as ``out``);
each ``d<name>`` returned has the shape of ``<name>``. Caches are opaque to callers:
pass them back to the matching backward unchanged.

Shapes use one notation: ``N`` examples, ``D`` features, ``M`` outputs, ``C`` classes.
Every function keeps the floating dtype of its inputs (float32 in, float32 out) when
the parameters share that dtype.

Conventions that bite (read these once):

- Batch norm reduces over the batch axis N (statistics per feature); layer norm
  reduces over the feature axis D (statistics per example).
- Variance is the biased one (divide by N, or D for layer norm), and eps sits inside
  the square root: ``inv_std = 1 / sqrt(var + eps)``.
- Running statistics: ``running = momentum * running + (1 - momentum) * batch_stat``,
  so ``momentum`` is the weight of the OLD value (PyTorch's ``momentum`` is the
  opposite: the weight of the new value, and it keeps an unbiased running variance).
- Dropout's ``p`` is the probability of KEEPING a unit (PyTorch's ``p`` is the
  probability of dropping one), and test mode is the identity.
"""
import math

import numpy as np

from cs231n.validation import (
    check_array,
    check_mode,
    check_positive_finite,
    check_nonnegative_int,
    check_positive_int,
    check_probability,
    check_shape,
)

# What ``from cs231n.layers import *`` gives: every layer function (CS231N's names).
__all__ = [
    "affine_forward", "affine_backward",
    "relu_forward", "relu_backward",
    "softmax_loss",
    "batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt",
    "layernorm_forward", "layernorm_backward",
    "dropout_forward", "dropout_backward",
]

# ---------------------------------------------------------------------------
# Input checks used only here (the shared ones live in validation.py)
# ---------------------------------------------------------------------------


def _check_batch(x, name, min_ndim, shape_doc):
    """Require a floating array with at least min_ndim dimensions and N >= 1."""
    check_array(x, name, floating=True)
    if x.ndim < min_ndim:
        raise ValueError(
            f"{name}: expected an array of shape {shape_doc} (at least {min_ndim}-D), "
            f"got shape {x.shape}"
        )
    if x.shape[0] < 1:
        raise ValueError(f"{name}: expected at least one example (N >= 1), got shape {x.shape}")
    return x


def _check_params(param, name):
    """Require a dict of layer parameters (bn_param, ln_param, dropout_param)."""
    if not isinstance(param, dict):
        raise TypeError(f"{name}: expected a dict, got {type(param).__name__}")
    return param


def _get_mode(param, name):
    """Read the required 'mode' key of a parameter dict."""
    if "mode" not in param:
        raise ValueError(f"{name}: missing required key 'mode' (expected 'train' or 'test')")
    return check_mode(param["mode"], f"{name}['mode']")


def _check_cache(cache, name, keys):
    """Require the dict cache produced by the matching forward function."""
    if not isinstance(cache, dict) or not all(k in cache for k in keys):
        got = type(cache).__name__ if not isinstance(cache, dict) else f"keys {sorted(cache)}"
        raise TypeError(
            f"cache: expected the cache returned by {name} (a dict with keys {list(keys)}), "
            f"got {got}"
        )
    return cache


def _check_dout(dout, expected_shape):
    """dout must be a floating array shaped exactly like the forward output."""
    check_array(dout, "dout", floating=True)
    return check_shape(dout, "dout", expected_shape)


def _unpack_norm_cache(dout, cache, producer):
    """Check a batch/layer norm cache and dout; return (x_hat, inv_std, gamma).

    The three normalization backwards read the same named cache (see batchnorm_forward),
    so they share this check: a wrong cache or a dout of another shape is refused here.
    """
    _check_cache(cache, producer, ("x_hat", "inv_std", "gamma"))
    x_hat = cache["x_hat"]
    _check_dout(dout, x_hat.shape)
    return x_hat, cache["inv_std"], cache["gamma"]


def _check_norm_inputs(x, gamma, beta):
    """x: (N, D); gamma, beta: (D,). Returns (N, D)."""
    check_array(x, "x", ndim=2, shape_doc="(N, D)", floating=True)
    N, D = x.shape
    if N < 1 or D < 1:
        raise ValueError(f"x: expected N >= 1 examples of D >= 1 features, got shape {x.shape}")
    for value, name in ((gamma, "gamma"), (beta, "beta")):
        check_array(value, name, ndim=1, shape_doc="(D,)", floating=True)
        if value.shape != (D,):
            raise ValueError(
                f"{name}: expected shape ({D},) to match x's D = {D} features, "
                f"got {value.shape}"
            )
    return N, D


def _running_stat(bn_param, key, dtype, D):
    """bn_param[key] as a (D,) array of x's dtype; zeros if absent (CS231N default)."""
    name = f"bn_param['{key}']"
    value = bn_param.get(key)
    if value is None:
        return np.zeros(D, dtype=dtype)
    check_array(value, name, ndim=1, shape_doc="(D,)", floating=True)
    check_shape(value, name, (D,))
    return value.astype(dtype, copy=False)


# ---------------------------------------------------------------------------
# Affine, ReLU, softmax (given code)
# ---------------------------------------------------------------------------


def affine_forward(x, w, b):
    """Fully-connected layer: out = x_flat @ w + b.

    Inputs:
    - x: (N, d_1, ..., d_k) input; each example is flattened to D = d_1 * ... * d_k
    - w: (D, M) weights
    - b: (M,) biases

    Returns (out, cache):
    - out: (N, M)
    - cache: (x, w)
    """
    _check_batch(x, "x", 2, "(N, d_1, ..., d_k)")
    check_array(w, "w", ndim=2, shape_doc="(D, M)", floating=True)
    check_array(b, "b", ndim=1, shape_doc="(M,)", floating=True)
    N = x.shape[0]
    D = math.prod(x.shape[1:])
    if w.shape[0] != D:
        raise ValueError(
            f"w: expected {D} rows to match x's flattened feature size D = {D} "
            f"(x shape {x.shape}), got shape {w.shape}"
        )
    check_shape(b, "b", (w.shape[1],))

    out = x.reshape(N, D) @ w
    out += b
    return out, (x, w)


def affine_backward(dout, cache):
    """Backward pass of affine_forward.

    Inputs:
    - dout: (N, M) upstream gradient
    - cache: (x, w) from affine_forward, x: (N, d_1, ..., d_k), w: (D, M)

    Returns (dx, dw, db), with
    - dx = dout @ w.T, reshaped to x's shape: (N, d_1, ..., d_k)
    - dw = x_flat.T @ dout: (D, M)
    - db = sum over N of dout: (M,)
    """
    x, w = cache
    N = x.shape[0]
    _check_dout(dout, (N, w.shape[1]))
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(N, -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x):
    """Rectified linear unit: out = max(x, 0), elementwise.

    Inputs:
    - x: array of any shape

    Returns (out, cache): out has x's shape; cache is x.
    """
    check_array(x, "x", floating=True)
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    """Backward pass of relu_forward: dx = dout where x > 0, else 0.

    Inputs:
    - dout: upstream gradient, x's shape
    - cache: x from relu_forward

    Returns dx, x's shape. (At x == 0 the subgradient 0 is used.)
    """
    x = check_array(cache, "cache")
    _check_dout(dout, x.shape)
    return dout * (x > 0)


def softmax_loss(x, y):
    """Mean cross-entropy loss of softmax class scores, and its gradient.

    Inputs:
    - x: (N, C) scores; x[i, j] is the score of class j for example i
    - y: (N,) integer labels, 0 <= y[i] < C

    Forward, row by row: shifted = x - max_j x (keeps exp from overflowing and does not
    change the softmax), log_probs = shifted - log(sum_j exp(shifted)), and
    loss = -mean_i log_probs[i, y[i]].

    Returns (loss, dx):
    - loss: Python float
    - dx: (N, C), dx = (softmax(x) - one_hot(y)) / N
    """
    _check_batch(x, "x", 2, "(N, C)")
    if x.ndim != 2:
        raise ValueError(f"x: expected a 2-D array of shape (N, C), got shape {x.shape}")
    check_array(y, "y", ndim=1, shape_doc="(N,)")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"y: expected an integer array of class labels, got dtype {y.dtype}")
    N, C = x.shape
    check_shape(y, "y", (N,))
    if y.min() < 0 or y.max() >= C:
        raise ValueError(
            f"y: expected labels in [0, {C}) for C = {C} classes, "
            f"got values in [{y.min()}, {y.max()}]"
        )

    rows = np.arange(N)
    shifted = x - x.max(axis=1, keepdims=True)
    log_sum_exp = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    # log_sum_exp - shifted rather than -log_probs: a perfect score gives 0.0, not -0.0.
    loss = float(np.mean(log_sum_exp[:, 0] - shifted[rows, y]))
    dx = shifted
    dx -= log_sum_exp
    np.exp(dx, out=dx)  # softmax probabilities, in the same buffer
    dx[rows, y] -= 1
    dx /= N
    return loss, dx


# ---------------------------------------------------------------------------
# Batch normalization
# ---------------------------------------------------------------------------


def batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalization: normalize each feature over the batch axis N.

    Inputs:
    - x: (N, D) data
    - gamma: (D,) scale
    - beta: (D,) shift
    - bn_param: dict with keys
      - mode: 'train' or 'test' (required)
      - eps: finite > 0, default 1e-5
      - momentum: in [0, 1], default 0.9; the weight of the old running value
      - running_mean, running_var: (D,) running statistics, default zeros; created if
        absent and written back into bn_param (this dict is the layer's state)

    Train mode (needs N >= 2), per feature, means over axis 0 (the N examples):
        mu      = mean(x)
        var     = mean((x - mu) ** 2)                 biased: divides by N
        inv_std = 1 / sqrt(var + eps)                 eps inside the square root
        x_hat   = (x - mu) * inv_std
        out     = gamma * x_hat + beta
    and the running statistics move towards the batch's (momentum: weight of the OLD value):
        running_mean  <-  momentum * running_mean + (1 - momentum) * mu
        running_var   <-  momentum * running_var  + (1 - momentum) * var

    Test mode uses the running statistics instead of mu and var and changes nothing:
        out = gamma * (x - running_mean) / sqrt(running_var + eps) + beta

    Returns (out, cache):
    - out: (N, D)
    - cache: train mode {'x_hat': (N, D), 'inv_std': (D,), 'gamma': (D,)};
      test mode None (backward is defined for training-mode forward passes only)
    """
    N, D = _check_norm_inputs(x, gamma, beta)
    _check_params(bn_param, "bn_param")
    mode = _get_mode(bn_param, "bn_param")
    eps = check_positive_finite(bn_param.get("eps", 1e-5), "bn_param['eps']")
    momentum = check_probability(
        bn_param.get("momentum", 0.9), "bn_param['momentum']", low_open=False
    )
    running_mean = _running_stat(bn_param, "running_mean", x.dtype, D)
    running_var = _running_stat(bn_param, "running_var", x.dtype, D)

    cache = None  # stays None in test mode: backward is defined for training passes only
    if mode == "train":
        if N < 2:
            raise ValueError(
                f"x: batch normalization in training mode needs N >= 2 examples "
                f"(the variance of one example is 0), got shape {x.shape}"
            )
        ### BEGIN SOLUTION (BatchNormalization.ipynb: "Batch normalization: forward pass")
        mu = x.mean(axis=0)
        x_hat = x - mu
        # Variance of the centred data computed once: one pass instead of var()'s two.
        var = np.einsum("ij,ij->j", x_hat, x_hat) / N
        inv_std = 1.0 / np.sqrt(var + eps)
        x_hat *= inv_std  # centred x becomes x_hat in place: no extra (N, D) array
        out = x_hat * gamma
        out += beta
        running_mean = momentum * running_mean + (1 - momentum) * mu
        running_var = momentum * running_var + (1 - momentum) * var
        cache = {"x_hat": x_hat, "inv_std": inv_std, "gamma": gamma}
        ### END SOLUTION
    else:
        ### BEGIN SOLUTION (BatchNormalization.ipynb: "Batch normalization: forward pass")
        # Fold the running statistics into one scale and shift per feature.
        scale = gamma / np.sqrt(running_var + eps)
        out = x * scale
        out += beta - running_mean * scale
        ### END SOLUTION

    if mode == "train":
        bn_param["running_mean"] = running_mean
        bn_param["running_var"] = running_var
    else:  # test mode changes nothing it was given (dtype included); absent stats: zeros
        bn_param.setdefault("running_mean", running_mean)
        bn_param.setdefault("running_var", running_var)
    return out, cache


def batchnorm_backward(dout, cache):
    """Backward pass of batch normalization, node by node through the graph.

    The forward graph (means over axis 0, the N examples):

        mu = mean(x);  xc = x - mu;  var = mean(xc ** 2);  inv_std = (var + eps) ** -0.5
        x_hat = xc * inv_std;  out = gamma * x_hat + beta

    Walk it backwards one node at a time, from out to x, with the chain rule; the
    cache holds x_hat, inv_std and gamma (every other node can be recovered from them).
    batchnorm_backward_alt must give the same result.

    Inputs:
    - dout: (N, D) upstream gradient, dL/dout
    - cache: from batchnorm_forward in train mode: x_hat (N, D), inv_std (D,), gamma (D,)

    Returns (dx, dgamma, dbeta), the gradients of the loss with respect to x, gamma, beta:
    - dx: (N, D)
    - dgamma: (D,)
    - dbeta: (D,)
    """
    x_hat, inv_std, gamma = _unpack_norm_cache(dout, cache, "batchnorm_forward in train mode")
    N = dout.shape[0]

    ### BEGIN SOLUTION (BatchNormalization.ipynb: "Batch normalization: backward pass")
    # The graph walked backwards, one node at a time; xc = x_hat / inv_std is recovered
    # from the cache rather than stored.
    # out = gamma * x_hat + beta
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = dout * gamma
    # x_hat = xc * inv_std: xc reaches x_hat directly and inv_std through every row
    xc = x_hat / inv_std
    dinv_std = (dx_hat * xc).sum(axis=0)
    dxc = dx_hat * inv_std
    # inv_std = (var + eps) ** -0.5
    dvar = -0.5 * inv_std**3 * dinv_std
    # var = mean(xc ** 2)
    dxc += (2.0 / N) * xc * dvar
    # xc = x - mu: x directly, mu through every row
    dmu = -dxc.sum(axis=0)
    # mu = mean(x)
    dx = dxc + dmu / N
    ### END SOLUTION
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    """Backward pass of batch normalization in simplified closed form.

    The same gradients as batchnorm_backward, derived on paper for the whole forward
    pass at once (out = gamma * (x - mu) * inv_std + beta, with mu and inv_std functions
    of every row of x) instead of node by node, and computed in a few vectorized lines
    from the cache's x_hat, inv_std and gamma.

    Inputs and returns as batchnorm_backward.
    """
    x_hat, inv_std, gamma = _unpack_norm_cache(dout, cache, "batchnorm_forward in train mode")
    N = dout.shape[0]

    ### BEGIN SOLUTION (BatchNormalization.ipynb: "Batch normalization: alternative backward pass")
    # Differentiating the whole forward pass at once collapses to
    #     dbeta  = sum over N of dout
    #     dgamma = sum over N of dout * x_hat
    #     dx     = (gamma * inv_std / N) * (N * dout - dbeta - x_hat * dgamma)
    # computed as gamma * inv_std * (dout - (dbeta + x_hat * dgamma) / N) in one (N, D)
    # work array.
    dbeta = dout.sum(axis=0)
    dgamma = np.einsum("ij,ij->j", dout, x_hat)
    # In-place steps on one buffer: the formula as written allocates an (N, D) array per operation.
    dx = x_hat * (dgamma / N)
    dx += dbeta / N
    np.subtract(dout, dx, out=dx)
    dx *= gamma * inv_std
    ### END SOLUTION
    return dx, dgamma, dbeta


# ---------------------------------------------------------------------------
# Layer normalization
# ---------------------------------------------------------------------------


def layernorm_forward(x, gamma, beta, ln_param):
    """Layer normalization: normalize each example over its D features.

    Inputs:
    - x: (N, D) data; any N >= 1 (statistics never mix examples)
    - gamma: (D,) scale
    - beta: (D,) shift
    - ln_param: dict; eps (finite > 0, default 1e-5). A 'mode' key, if present
      (FullyConnectedNet sets one), must be 'train' or 'test' and changes nothing:
      layer norm computes the same at train and test time and keeps no running stats.

    Per example (over axis 1, the D features):
        mu      = mean(x)                    (N, 1)
        var     = mean((x - mu) ** 2)        (N, 1), biased: divides by D
        inv_std = 1 / sqrt(var + eps)        (N, 1), eps inside the square root
        x_hat   = (x - mu) * inv_std         (N, D)
        out     = gamma * x_hat + beta       gamma, beta per feature, as in batch norm

    Returns (out, cache):
    - out: (N, D)
    - cache: {'x_hat': (N, D), 'inv_std': (N, 1), 'gamma': (D,)}
    """
    N, D = _check_norm_inputs(x, gamma, beta)
    _check_params(ln_param, "ln_param")
    eps = check_positive_finite(ln_param.get("eps", 1e-5), "ln_param['eps']")
    if "mode" in ln_param:
        check_mode(ln_param["mode"], "ln_param['mode']")

    ### BEGIN SOLUTION (BatchNormalization.ipynb: "Layer normalization: implementation")
    # Batch norm's equations with the reduction axis swapped from 0 to 1.
    mu = x.mean(axis=1, keepdims=True)
    x_hat = x - mu
    var = np.einsum("ij,ij->i", x_hat, x_hat)[:, None] / D
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat *= inv_std
    out = x_hat * gamma
    out += beta
    cache = {"x_hat": x_hat, "inv_std": inv_std, "gamma": gamma}
    ### END SOLUTION
    return out, cache


def layernorm_backward(dout, cache):
    """Backward pass of layer normalization.

    The forward pass is layernorm_forward's: per example (axis 1) statistics, then
    out = gamma * x_hat + beta with gamma and beta per feature (axis 0).

    Inputs:
    - dout: (N, D) upstream gradient, dL/dout
    - cache: from layernorm_forward: x_hat (N, D), inv_std (N, 1), gamma (D,)

    Returns (dx, dgamma, dbeta), the gradients of the loss with respect to x, gamma, beta:
    (N, D), (D,), (D,).
    """
    x_hat, inv_std, gamma = _unpack_norm_cache(dout, cache, "layernorm_forward")
    D = dout.shape[1]

    ### BEGIN SOLUTION (BatchNormalization.ipynb: "Layer normalization: implementation")
    # With dx_hat = dout * gamma and means over the D features of each example (axis 1),
    # the closed form of batch norm's backward with the axes swapped:
    #     dx     = inv_std * (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat))
    #     dgamma = sum over N of dout * x_hat
    #     dbeta  = sum over N of dout
    # (gamma is per feature, so unlike batch norm it cannot be pulled out of the means.)
    dbeta = dout.sum(axis=0)
    dgamma = np.einsum("ij,ij->j", dout, x_hat)
    dx_hat = dout * gamma
    mean_dx_hat = dx_hat.mean(axis=1, keepdims=True)
    mean_dx_hat_x_hat = np.einsum("ij,ij->i", dx_hat, x_hat)[:, None] / D
    dx = x_hat * mean_dx_hat_x_hat
    dx += mean_dx_hat
    np.subtract(dx_hat, dx, out=dx)
    dx *= inv_std
    ### END SOLUTION
    return dx, dgamma, dbeta


# ---------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------


def dropout_forward(x, dropout_param):
    """Dropout: zero units at random in train mode; pass x through in test mode.

    Inputs:
    - x: array of any shape
    - dropout_param: dict with keys
      - p: probability of KEEPING each unit, in (0, 1] (required); p = 1 keeps every unit.
        (PyTorch's nn.Dropout(q) takes q, the probability of DROPPING a unit: keep
        probability p here is nn.Dropout(1 - p) there.)
      - mode: 'train' or 'test' (required)
      - seed: optional integer >= 0. Given: the mask comes from
        np.random.default_rng(seed): the same mask on every call, and numpy's global
        random state untouched. Absent: a fresh generator is seeded with one number
        drawn from numpy's global state (np.random.randint), so np.random.seed(...)
        still makes runs reproducible while the mask itself comes from the PCG64
        generator, about twice as fast as np.random's legacy Mersenne Twister.

    Train mode: every unit, independently, is kept with probability p or dropped (set to
    exactly 0) with probability 1 - p. Draw one uniform in [0, 1) per unit, in float64
    whatever x's dtype (rng.random(x.shape)), and keep the units whose uniform is below p:
    then a seed keeps the same units for float32 and float64 x. All kept units are
    multiplied by one factor that depends on p only; choosing it is part of the exercise
    (Dropout.ipynb, "Dropout: forward pass": over many units, the mean of out must come
    out close to the mean of x, while test mode leaves x unchanged).
    Test mode: out = x.

    Returns (out, cache):
    - out: x's shape and dtype
    - cache: dict for dropout_backward with keys
      - 'mask': train mode, an array of x's shape and dtype with out = x * mask
        elementwise (0 exactly where a unit was dropped); test mode None
      - 'shape': x.shape
    """
    check_array(x, "x", floating=True)
    _check_params(dropout_param, "dropout_param")
    mode = _get_mode(dropout_param, "dropout_param")
    if "p" not in dropout_param:
        raise ValueError(
            "dropout_param: missing required key 'p' (the keep probability, in (0, 1])"
        )
    p = check_probability(dropout_param["p"], "dropout_param['p']")
    seed = dropout_param.get("seed")
    if seed is not None:
        check_nonnegative_int(seed, "dropout_param['seed']")

    mask = None  # stays None in test mode
    if mode == "train":
        # Given: the generator of the uniform draws in [0, 1), rng.random(shape).
        if seed is None:
            seed = np.random.randint(2**63)
        rng = np.random.default_rng(seed)
        ### BEGIN SOLUTION (Dropout.ipynb: "Dropout: forward pass")
        # mask = (u < p) / p: entries 0 (dropped) or 1 / p (kept); out = x * mask.
        u = rng.random(x.shape)  # float64 uniforms in [0, 1)
        # (u < p) / p, built in u's buffer when x is float64 (1.0 / 0.0, then divided by p
        # as a scalar of x's dtype): the literal expression allocates two more (N, D) arrays,
        # and every large allocation costs a pass through freshly mapped memory.
        keep = np.less(u, p, out=u)
        mask = np.divide(keep, x.dtype.type(p), out=u if u.dtype == x.dtype else None,
                         dtype=x.dtype)
        out = x * mask
        ### END SOLUTION
    else:
        ### BEGIN SOLUTION (Dropout.ipynb: "Dropout: forward pass")
        out = x
        ### END SOLUTION

    return out, {"mask": mask, "shape": x.shape}


def dropout_backward(dout, cache):
    """Backward pass of dropout_forward.

    Inputs:
    - dout: upstream gradient dL/dout, x's shape
    - cache: from dropout_forward: 'mask' (train mode: out = x * mask elementwise; test
      mode: None) and 'shape' (x.shape)

    Returns dx = dL/dx, x's shape and dtype, in train and in test mode.
    """
    _check_cache(cache, "dropout_forward", ("mask", "shape"))
    _check_dout(dout, cache["shape"])
    mask = cache["mask"]
    ### BEGIN SOLUTION (Dropout.ipynb: "Dropout: backward pass")
    # Test mode: out = x, so dx = dout. Train mode: out = x * mask elementwise, and mask
    # already holds the 1 / p scaling.
    dx = dout if mask is None else dout * mask
    ### END SOLUTION
    return dx
