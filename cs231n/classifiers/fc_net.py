"""A fully-connected network of any depth with optional normalization and dropout.

As CS231N's, ``from cs231n.classifiers.fc_net import *`` also gives every layer function of
``cs231n.layers`` and the sandwich layers of ``cs231n.layer_utils``, so notebooks written for
that starter run unchanged.
"""
import math

import numpy as np

from cs231n import layer_utils as _layer_utils
from cs231n.layer_utils import *  # noqa: F403  the layers and sandwiches, re-exported as CS231N's
from cs231n.layer_utils import NORMALIZATIONS
from cs231n.validation import (check_choice, check_examples, check_nonnegative_int,
                               check_positive_finite, check_positive_int, check_probability,
                               check_real)

__all__ = ["FullyConnectedNet", *_layer_utils.__all__]  # layer_utils' includes the layers


class FullyConnectedNet:
    """Fully-connected network with ReLUs, a softmax loss and L - 1 hidden layers:

        {affine - [batch/layer norm] - relu - [dropout]} x (L - 1) - affine - softmax

    where normalization and dropout are optional; L = num_layers.

    ``self.params``, arrays of ``self.dtype``: Wi (d_{i-1}, d_i) drawn from
    N(0, weight_scale**2) and bi (d_i,) zeros for i = 1 ... L, with d_0 = input_dim and
    d_L = num_classes; with normalization, gamma{i} (ones) and beta{i} (zeros), (d_i,), for
    the hidden layers only. ``self.bn_params``: one dict per normalized layer; with batch
    norm it holds that layer's OWN running_mean/running_var. ``self.dropout_param``:
    {'mode', 'p', ['seed']} with dropout.
    """

    def __init__(self, hidden_dims, input_dim=3 * 32 * 32, num_classes=10, dropout_keep_ratio=1,
                 normalization=None, reg=0.0, weight_scale=1e-2, dtype=np.float32, seed=None):
        """Inputs:
        - hidden_dims: list of positive integers, the size of each hidden layer (may be empty)
        - input_dim: D, the size of one flattened example; num_classes: C
        - dropout_keep_ratio: probability of KEEPING a hidden unit, in (0, 1]; 1: no dropout
        - normalization: None, 'batchnorm' or 'layernorm'
        - reg: L2 strength >= 0: the loss gains 0.5 * reg * sum(W**2) over the weights
        - weight_scale: standard deviation of the weights at initialization, > 0
        - dtype: floating dtype of the parameters and the computation: float32 is faster,
          float64 is for numerical gradient checks
        - seed: None draws the weights (and the dropout masks) from np.random, so
          np.random.seed(...) makes a run reproducible, as CS231N's notebooks expect. An
          integer >= 0 draws them from np.random.default_rng(seed) and sets
          dropout_param['seed']: the SAME dropout mask on every call (as CS231N), what a
          gradient check needs; do not train with it.
        """
        if isinstance(hidden_dims, (str, bytes)) or not hasattr(hidden_dims, "__iter__"):
            raise TypeError("hidden_dims: expected a list of positive integers, "
                            f"got {type(hidden_dims).__name__}")
        hidden_dims = [check_positive_int(h, f"hidden_dims[{i}]")
                       for i, h in enumerate(hidden_dims)]
        input_dim = check_positive_int(input_dim, "input_dim")
        num_classes = check_positive_int(num_classes, "num_classes")
        dropout_keep_ratio = check_probability(dropout_keep_ratio, "dropout_keep_ratio")
        check_choice(normalization, "normalization", NORMALIZATIONS)
        reg = check_real(reg, "reg")
        if not (math.isfinite(reg) and reg >= 0):
            raise ValueError(f"reg: expected a finite number >= 0, got {reg!r}")
        weight_scale = check_positive_finite(weight_scale, "weight_scale")
        np_dtype = np.dtype(dtype)  # numpy refuses what is no dtype at all
        if not np.issubdtype(np_dtype, np.floating):
            raise ValueError(f"dtype: expected a floating dtype such as np.float32, got {np_dtype}")
        seed = None if seed is None else check_nonnegative_int(seed, "seed")

        self.normalization, self.reg, self.dtype = normalization, reg, np_dtype.type
        self.use_dropout = dropout_keep_ratio != 1
        self.num_layers = 1 + len(hidden_dims)
        self.params = {}

        # The legacy global generator and a Generator both have standard_normal(size).
        rng = np.random if seed is None else np.random.default_rng(seed)
        dims = [input_dim, *hidden_dims, num_classes]
        for i in range(1, self.num_layers + 1):
            self.params[f"W{i}"] = weight_scale * rng.standard_normal((dims[i - 1], dims[i]))
            self.params[f"b{i}"] = np.zeros(dims[i])
        if self.normalization is not None:
            ### BEGIN SOLUTION (BatchNormalization.ipynb: "Fully connected networks with batch normalization")
            # The identity transform at first: out = 1 * x_hat + 0.
            for i, dim in enumerate(hidden_dims, start=1):
                self.params[f"gamma{i}"] = np.ones(dim)
                self.params[f"beta{i}"] = np.zeros(dim)
            ### END SOLUTION

        # One dropout_param serves every dropout layer: the keep probability and the mode.
        self.dropout_param = {}
        if self.use_dropout:
            self.dropout_param = {"mode": "train", "p": dropout_keep_ratio}
            if seed is not None:
                self.dropout_param["seed"] = seed
        # One dict per normalized layer, never shared: batch norm keeps each layer's running
        # mean and variance in its own.
        self.bn_params = [{"mode": "train"} if normalization == "batchnorm" else {}
                          for _ in hidden_dims] if normalization else []

        for k, v in self.params.items():
            self.params[k] = v.astype(self.dtype)

    def _check_inputs(self, X, y):
        """X as self.dtype, checked with y first: a bad y must not update a running mean."""
        D, C = self.params["W1"].shape[0], self.params[f"W{self.num_layers}"].shape[1]
        check_examples(X, y, num_classes=C)
        if math.prod(X.shape[1:]) != D:
            raise ValueError(f"X: expected d_1 * ... * d_k = input_dim = {D}, got shape {X.shape}")
        if X.dtype.kind not in "fiu":
            raise TypeError(f"X: expected a real-valued array, got dtype {X.dtype}")
        return X.astype(self.dtype, copy=False)

    def loss(self, X, y=None):
        """Compute the loss and gradient for the fully-connected net.

        Inputs:
        - X: (N, d_1, ..., d_k) input data, d_1 * ... * d_k = input_dim; cast to self.dtype
        - y: (N,) integer labels in [0, C), or None

        Returns, with y None (test mode: batch norm uses its running statistics, dropout is
        the identity): scores (N, C), scores[i, c] the score of class c for X[i].
        With y (train mode, which also updates the running statistics in self.bn_params):
        - loss: Python float, the softmax loss plus 0.5 * reg * sum_i sum(Wi**2)
        - grads: dict keyed as self.params, grads[k] = dloss/dparams[k], same shape and dtype
        """
        X = self._check_inputs(X, y)
        mode = "test" if y is None else "train"

        # Dropout and batch norm behave differently at training and test time.
        if self.use_dropout:
            self.dropout_param["mode"] = mode
        for bn_param in self.bn_params:
            bn_param["mode"] = mode

        # Forward pass. caches[i - 1] holds hidden layer i's (sandwich cache, dropout cache).
        L, caches, out = self.num_layers, [], X
        for i in range(1, L):
            W, b = self.params[f"W{i}"], self.params[f"b{i}"]
            if self.normalization is None:
                out, cache = affine_relu_forward(out, W, b)
            else:
                ### BEGIN SOLUTION (BatchNormalization.ipynb: "Fully connected networks with batch normalization")
                gamma, beta = self.params[f"gamma{i}"], self.params[f"beta{i}"]
                out, cache = affine_norm_relu_forward(
                    out, W, b, gamma, beta, self.bn_params[i - 1], self.normalization
                )
                ### END SOLUTION
            dropout_cache = None
            if self.use_dropout:
                ### BEGIN SOLUTION (Dropout.ipynb: "Fully connected networks with dropout")
                out, dropout_cache = dropout_forward(out, self.dropout_param)
                ### END SOLUTION
            caches.append((cache, dropout_cache))
        scores, scores_cache = affine_forward(out, self.params[f"W{L}"], self.params[f"b{L}"])

        if mode == "test":
            return scores

        # Backward pass: the same layers in reverse order.
        loss, dscores = softmax_loss(scores, y)
        grads = {}
        dout, grads[f"W{L}"], grads[f"b{L}"] = affine_backward(dscores, scores_cache)
        for i in range(L - 1, 0, -1):
            cache, dropout_cache = caches[i - 1]
            if dropout_cache is not None:
                ### BEGIN SOLUTION (Dropout.ipynb: "Fully connected networks with dropout")
                dout = dropout_backward(dout, dropout_cache)
                ### END SOLUTION
            if self.normalization is None:
                dout, grads[f"W{i}"], grads[f"b{i}"] = affine_relu_backward(dout, cache)
            else:
                ### BEGIN SOLUTION (BatchNormalization.ipynb: "Fully connected networks with batch normalization")
                dout, dW, db, dgamma, dbeta = affine_norm_relu_backward(dout, cache)
                grads[f"W{i}"], grads[f"b{i}"] = dW, db
                grads[f"gamma{i}"], grads[f"beta{i}"] = dgamma, dbeta
                ### END SOLUTION

        # L2 regularization on the weights only: loss += 0.5 * reg * sum(W**2), so
        # dW += reg * W (biases, gamma and beta are not penalized).
        if self.reg:
            for i in range(1, L + 1):
                W = self.params[f"W{i}"]
                # vdot: the sum of squares without an (D, M) temporary W * W.
                loss += 0.5 * self.reg * float(np.vdot(W, W))
                grads[f"W{i}"] += self.reg * W

        return loss, grads
