"""Sandwich layers: common sequences of layers as one forward/backward pair.

    affine_relu:       affine -> ReLU
    affine_norm_relu:  affine -> [batch norm | layer norm | nothing] -> ReLU

Dropout is not part of a sandwich: FullyConnectedNet applies dropout_forward to the
sandwich's output itself, so every hidden layer reads as
``affine_norm_relu_forward`` then, if enabled, ``dropout_forward``.
"""
from cs231n import layers as _layers
from cs231n.layers import *  # noqa: F403  re-exported, see __all__
from cs231n.layers import (
    affine_backward,
    affine_forward,
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
    relu_backward,
    relu_forward,
)
from cs231n.validation import check_choice

# What ``from cs231n.layer_utils import *`` gives: the sandwich layers and, as CS231N's
# layer_utils (which star-imports its layers), every layer function.
__all__ = [
    "affine_relu_forward", "affine_relu_backward",
    "affine_norm_relu_forward", "affine_norm_relu_backward",
    *_layers.__all__,
]

NORMALIZATIONS = (None, "batchnorm", "layernorm")


def affine_relu_forward(x, w, b):
    """Affine layer followed by a ReLU.

    Inputs:
    - x: (N, d_1, ..., d_k) input, flattened to (N, D) by the affine layer
    - w: (D, M) weights
    - b: (M,) biases

    Returns (out, cache): out (N, M); cache for affine_relu_backward.
    """
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout, cache):
    """Backward pass of affine_relu_forward.

    Inputs:
    - dout: (N, M) upstream gradient
    - cache: from affine_relu_forward

    Returns (dx, dw, db): x's shape, (D, M), (M,).
    """
    fc_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache)
    return affine_backward(da, fc_cache)


def affine_norm_relu_forward(x, w, b, gamma, beta, norm_param, normalization):
    """Affine layer, optional normalization, then a ReLU.

    Inputs:
    - x: (N, d_1, ..., d_k) input, flattened to (N, D) by the affine layer
    - w: (D, M) weights
    - b: (M,) biases
    - gamma, beta: (M,) scale and shift of the normalization (ignored, may be None,
      when normalization is None)
    - norm_param: bn_param (batchnorm: holds mode and the running statistics, updated
      in place) or ln_param (layernorm); ignored when normalization is None
    - normalization: None, 'batchnorm' or 'layernorm'

    Returns (out, cache): out (N, M); cache for affine_norm_relu_backward.
    """
    check_choice(normalization, "normalization", NORMALIZATIONS)
    a, fc_cache = affine_forward(x, w, b)
    norm_cache = None
    if normalization == "batchnorm":
        a, norm_cache = batchnorm_forward(a, gamma, beta, norm_param)
    elif normalization == "layernorm":
        a, norm_cache = layernorm_forward(a, gamma, beta, norm_param)
    out, relu_cache = relu_forward(a)
    return out, (fc_cache, norm_cache, relu_cache, normalization)


def affine_norm_relu_backward(dout, cache):
    """Backward pass of affine_norm_relu_forward.

    Inputs:
    - dout: (N, M) upstream gradient
    - cache: from affine_norm_relu_forward (batch norm: from a train-mode pass)

    Returns (dx, dw, db, dgamma, dbeta): x's shape, (D, M), (M,), (M,), (M,);
    dgamma and dbeta are None when normalization was None.
    """
    fc_cache, norm_cache, relu_cache, normalization = cache
    da = relu_backward(dout, relu_cache)
    dgamma = dbeta = None
    if normalization == "batchnorm":
        # The closed form: same gradients as the staged version, about twice as fast.
        da, dgamma, dbeta = batchnorm_backward_alt(da, norm_cache)
    elif normalization == "layernorm":
        da, dgamma, dbeta = layernorm_backward(da, norm_cache)
    dx, dw, db = affine_backward(da, fc_cache)
    return dx, dw, db, dgamma, dbeta
