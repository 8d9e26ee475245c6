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
import numpy as np

from cs231n.validation import (check_batchnorm_inputs, check_dout, check_dropout_cache,
                               check_dropout_inputs, check_norm_cache, check_norm_inputs,
                               check_shape, check_softmax_inputs)

# What ``from cs231n.layers import *`` gives: every layer function (CS231N's names).
__all__ = [
    "affine_forward", "affine_backward",
    "relu_forward", "relu_backward",
    "softmax_loss",
    "batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt",
    "layernorm_forward", "layernorm_backward",
    "dropout_forward", "dropout_backward",
]


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
    check_shape(b, "b", (w.shape[1],))
    out = x.reshape(x.shape[0], -1) @ w + b
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
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x):
    """Rectified linear unit: out = max(x, 0), elementwise, for x of any shape.

    Returns (out, cache): out has x's shape; cache is x.
    """
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    """Backward pass of relu_forward: dx = dout where x > 0, else 0.

    Inputs:
    - dout: upstream gradient, x's shape
    - cache: x from relu_forward

    Returns dx, x's shape. (At x == 0 the subgradient 0 is used.)
    """
    x = cache
    check_dout(dout, x.shape)
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
    check_softmax_inputs(x, y)
    N = x.shape[0]
    rows = np.arange(N)
    shifted = x - x.max(axis=1, keepdims=True)
    log_sum_exp = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    # log_sum_exp - shifted rather than -log_probs: a perfect score gives 0.0, not -0.0.
    loss = float(np.mean(log_sum_exp[:, 0] - shifted[rows, y]))
    dx = np.exp(shifted - log_sum_exp)  # softmax(x)
    dx[rows, y] -= 1
    dx /= N
    return loss, dx


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
    mode, eps, momentum, running_mean, running_var = check_batchnorm_inputs(
        x, gamma, beta, bn_param)

    cache = None  # stays None in test mode: backward is defined for training passes only
    if mode == "train":
        ### BEGIN SOLUTION (BatchNormalization.ipynb: "Batch normalization: forward pass")
        mu = x.mean(axis=0)
        var = ((x - mu) ** 2).mean(axis=0)
        inv_std = 1 / np.sqrt(var + eps)
        x_hat = (x - mu) * inv_std
        out = gamma * x_hat + beta
        running_mean = momentum * running_mean + (1 - momentum) * mu
        running_var = momentum * running_var + (1 - momentum) * var
        cache = {"x_hat": x_hat, "inv_std": inv_std, "gamma": gamma}
        ### END SOLUTION
        bn_param["running_mean"] = running_mean
        bn_param["running_var"] = running_var
    else:
        ### BEGIN SOLUTION (BatchNormalization.ipynb: "Batch normalization: forward pass")
        x_hat = (x - running_mean) / np.sqrt(running_var + eps)
        out = gamma * x_hat + beta
        ### END SOLUTION
        # Test mode changes nothing it was given (dtype included); absent statistics: zeros.
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
    x_hat, inv_std, gamma = check_norm_cache(dout, cache, "batchnorm_forward in train mode")
    N = dout.shape[0]

    ### BEGIN SOLUTION (BatchNormalization.ipynb: "Batch normalization: backward pass")
    # out = gamma * x_hat + beta
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = dout * gamma
    # x_hat = xc * inv_std, with xc = x - mu recovered from the cache
    xc = x_hat / inv_std
    dinv_std = (dx_hat * xc).sum(axis=0)
    # inv_std = (var + eps) ** -0.5
    dvar = -0.5 * inv_std**3 * dinv_std
    # var = mean(xc ** 2); xc reaches out through x_hat and through var: add both
    dxc = dx_hat * inv_std + 2 * xc * dvar / N
    # xc = x - mu
    dmu = -dxc.sum(axis=0)
    # mu = mean(x); x reaches xc directly and through mu: add both
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
    x_hat, inv_std, gamma = check_norm_cache(dout, cache, "batchnorm_forward in train mode")
    N = dout.shape[0]

    ### BEGIN SOLUTION (BatchNormalization.ipynb: "Batch normalization: alternative backward pass")
    # The chain rule through mu and var, summed on paper, leaves one line for dx.
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx = (gamma * inv_std / N) * (N * dout - dbeta - x_hat * dgamma)
    ### END SOLUTION
    return dx, dgamma, dbeta


def layernorm_forward(x, gamma, beta, ln_param):
    """Layer normalization: normalize each example over its D features.

    Inputs:
    - x: (N, D) data; any N >= 1 (statistics never mix examples)
    - gamma: (D,) scale
    - beta: (D,) shift
    - ln_param: dict; eps (finite > 0, default 1e-5). Any other key (FullyConnectedNet
      sets 'mode') is ignored: layer norm computes the same at train and test time and
      keeps no running statistics.

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
    eps = check_norm_inputs(x, gamma, beta, ln_param, "ln_param")

    ### BEGIN SOLUTION (BatchNormalization.ipynb: "Layer normalization: implementation")
    # Batch norm's equations with the statistics over axis 1 instead of axis 0.
    mu = x.mean(axis=1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
    inv_std = 1 / np.sqrt(var + eps)
    x_hat = (x - mu) * inv_std
    out = gamma * x_hat + beta
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
    x_hat, inv_std, gamma = check_norm_cache(dout, cache, "layernorm_forward")

    ### BEGIN SOLUTION (BatchNormalization.ipynb: "Layer normalization: implementation")
    # Batch norm's closed form with the means over axis 1. gamma is per feature, so it
    # cannot leave those means: it stays inside dx_hat = dout * gamma.
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = dout * gamma
    dx = inv_std * (dx_hat - dx_hat.mean(axis=1, keepdims=True)
                    - x_hat * (dx_hat * x_hat).mean(axis=1, keepdims=True))
    ### END SOLUTION
    return dx, dgamma, dbeta


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
        random state untouched. Absent: the generator is seeded with one number drawn
        from numpy's global state (np.random.randint), so np.random.seed(...) still
        makes runs reproducible (and the mask comes from the faster PCG64 generator).

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
    mode, p = check_dropout_inputs(dropout_param)

    mask = None  # stays None in test mode
    if mode == "train":
        # Given: the generator of the uniform draws in [0, 1), rng.random(shape).
        seed = dropout_param.get("seed")
        rng = np.random.default_rng(np.random.randint(2**63) if seed is None else seed)
        ### BEGIN SOLUTION (Dropout.ipynb: "Dropout: forward pass")
        # Inverted dropout: kept units are scaled by 1 / p, so test mode needs no scaling.
        # float64 uniforms: the same units kept for any dtype of x
        mask = (rng.random(x.shape) < p).astype(x.dtype) / p
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
    mask = check_dropout_cache(dout, cache)
    ### BEGIN SOLUTION (Dropout.ipynb: "Dropout: backward pass")
    # Test mode: out = x, so dx = dout. Train mode: out = x * mask elementwise, and mask
    # already holds the 1 / p scaling.
    dx = dout if mask is None else dout * mask
    ### END SOLUTION
    return dx
