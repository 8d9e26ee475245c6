"""Sandwich layers: common sequences of layers as one forward/backward pair.

    affine_relu:       affine -> ReLU
    affine_norm_relu:  affine -> [batch norm | layer norm | nothing] -> ReLU

Dropout is no part of a sandwich: FullyConnectedNet applies dropout_forward to its output.
"""
from cs231n import layers as _layers
from cs231n.layers import *  # noqa: F403  the layers used here, re-exported as CS231N's
from cs231n.validation import check_choice

__all__ = ["affine_relu_forward", "affine_relu_backward",
           "affine_norm_relu_forward", "affine_norm_relu_backward", *_layers.__all__]

NORMALIZATIONS = (None, "batchnorm", "layernorm")


def affine_relu_forward(x, w, b):
    """Affine layer followed by a ReLU: x (N, d_1, ..., d_k), flattened to (N, D); w (D, M);
    b (M,). Returns (out, cache): out (N, M); cache for affine_relu_backward."""
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout, cache):
    """Backward pass of affine_relu_forward: dout (N, M) -> (dx, dw, db)."""
    fc_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache)
    return affine_backward(da, fc_cache)


def affine_norm_relu_forward(x, w, b, gamma, beta, norm_param, normalization):
    """Affine layer, optional normalization, then a ReLU.

    Inputs: x (N, d_1, ..., d_k), flattened to (N, D); w (D, M); b (M,); gamma, beta (M,);
    norm_param: bn_param (mode and the running statistics, updated in place) or ln_param;
    normalization: None (gamma, beta and norm_param are then ignored), 'batchnorm' or
    'layernorm'. Returns (out, cache): out (N, M); cache for affine_norm_relu_backward.
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
    """Backward pass of affine_norm_relu_forward: dout (N, M) -> (dx, dw, db, dgamma, dbeta),
    dgamma and dbeta None without normalization."""
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
