"""A fully-connected network of any depth with optional normalization and dropout.

As in CS231N's starter, ``from cs231n.classifiers.fc_net import *`` also gives every
layer function of ``cs231n.layers`` (affine_forward, batchnorm_forward, layernorm_forward,
dropout_forward, softmax_loss, ...) and the sandwich layers of ``cs231n.layer_utils``
(affine_relu_forward, ...), so notebooks written for that starter run unchanged.
"""
import math

import numpy as np

from cs231n import layer_utils as _layer_utils
from cs231n.layer_utils import *  # noqa: F403  re-exported, see __all__
from cs231n.layer_utils import (
    NORMALIZATIONS,
    affine_norm_relu_backward,
    affine_norm_relu_forward,
    affine_relu_backward,
    affine_relu_forward,
)
from cs231n.layers import (
    affine_backward,
    affine_forward,
    dropout_backward,
    dropout_forward,
    softmax_loss,
)
from cs231n.validation import (
    check_array,
    check_choice,
    check_positive_finite,
    check_nonnegative_int,
    check_positive_int,
    check_probability,
    check_real,
)

__all__ = ["FullyConnectedNet", *_layer_utils.__all__]  # layer_utils' includes the layers



class FullyConnectedNet:
    """Fully-connected network with ReLUs, a softmax loss and L - 1 hidden layers:

        {affine - [batch/layer norm] - relu - [dropout]} x (L - 1) - affine - softmax

    where batch/layer normalization and dropout are optional; L = num_layers.

    Parameters live in ``self.params``, a dict of arrays in ``self.dtype``:
    - W1 ... WL: weights, Wi: (d_{i-1}, d_i), with d_0 = input_dim, d_L = num_classes,
      the others the hidden_dims; drawn from N(0, weight_scale**2)
    - b1 ... bL: biases (d_i,), zeros
    - gamma1 ... gamma{L-1} (ones) and beta1 ... beta{L-1} (zeros), (d_i,): the scale and
      shift of the normalization of each hidden layer; only with normalization, and never
      for the last (scores) layer.

    State that is not learned by gradient descent:
    - ``self.bn_params``: one dict per hidden layer when normalization is set, [] otherwise.
      With batch norm each layer's dict holds that layer's OWN running_mean/running_var
      (written by batchnorm_forward in training mode, read in test mode), so they persist
      between calls. Layer norm keeps no running statistics.
    - ``self.dropout_param``: {'mode', 'p', ['seed']} when dropout is used, {} otherwise.

    Randomness (``seed``):
    - seed=None: weights are drawn from numpy's global generator (np.random), so
      ``np.random.seed(...)`` before building the network makes it reproducible, as the
      CS231N notebooks expect; dropout masks are then drawn from np.random too.
    - seed=int: weights come from ``np.random.default_rng(seed)`` (no global state touched)
      and ``dropout_param['seed'] = seed``, which makes dropout use the SAME mask on every
      call (CS231N behaviour). That is what a gradient check needs; do not train with it,
      as the network would always drop the same units.
    """

    def __init__(
        self,
        hidden_dims,
        input_dim=3 * 32 * 32,
        num_classes=10,
        dropout_keep_ratio=1,
        normalization=None,
        reg=0.0,
        weight_scale=1e-2,
        dtype=np.float32,
        seed=None,
    ):
        """Initialize a new FullyConnectedNet.

        Inputs:
        - hidden_dims: list (or tuple) of positive integers, the size of each hidden layer;
          may be empty (a softmax classifier)
        - input_dim: integer, the size D of one flattened input example
        - num_classes: integer C, the number of classes
        - dropout_keep_ratio: probability of KEEPING a hidden unit, in (0, 1];
          1 means no dropout
        - normalization: None, 'batchnorm' or 'layernorm'
        - reg: L2 regularization strength >= 0; the loss gains 0.5 * reg * sum(W**2)
          over the weights (never the biases, gamma or beta)
        - weight_scale: standard deviation of the normal weight initialization, > 0
        - dtype: floating numpy dtype of every parameter and computation: float32 is
          faster, use float64 for numerical gradient checks
        - seed: None or integer >= 0; see the class docstring
        """
        if isinstance(hidden_dims, (str, bytes)) or not hasattr(hidden_dims, "__iter__"):
            raise TypeError(
                f"hidden_dims: expected a list of positive integers, "
                f"got {type(hidden_dims).__name__}"
            )
        hidden_dims = [
            check_positive_int(h, f"hidden_dims[{i}]") for i, h in enumerate(hidden_dims)
        ]
        input_dim = check_positive_int(input_dim, "input_dim")
        num_classes = check_positive_int(num_classes, "num_classes")
        dropout_keep_ratio = check_probability(dropout_keep_ratio, "dropout_keep_ratio")
        check_choice(normalization, "normalization", NORMALIZATIONS)
        reg = check_real(reg, "reg")
        if not (math.isfinite(reg) and reg >= 0):
            raise ValueError(f"reg: expected a finite number >= 0, got {reg!r}")
        weight_scale = check_positive_finite(weight_scale, "weight_scale")
        try:
            np_dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"dtype: expected a numpy floating dtype, got {dtype!r}") from None
        if not np.issubdtype(np_dtype, np.floating):
            raise ValueError(f"dtype: expected a floating dtype such as np.float32, got {np_dtype}")
        if seed is not None:
            seed = check_nonnegative_int(seed, "seed")

        self.normalization = normalization
        self.use_dropout = dropout_keep_ratio != 1
        self.reg = reg
        self.num_layers = 1 + len(hidden_dims)
        self.dtype = np_dtype.type
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

        # When using dropout we need to pass a dropout_param dictionary to each dropout
        # layer so that the layer knows the dropout probability and the mode (train /
        # test). The same dictionary serves every dropout layer.
        self.dropout_param = {}
        if self.use_dropout:
            self.dropout_param = {"mode": "train", "p": dropout_keep_ratio}
            if seed is not None:
                self.dropout_param["seed"] = seed

        # One dict per normalized layer: batch norm keeps each layer's running mean and
        # variance in its own dict, so they must never be shared.
        self.bn_params = []
        if self.normalization == "batchnorm":
            self.bn_params = [{"mode": "train"} for _ in hidden_dims]
        elif self.normalization == "layernorm":
            self.bn_params = [{} for _ in hidden_dims]

        for k, v in self.params.items():
            self.params[k] = v.astype(self.dtype)

    def _check_inputs(self, X, y):
        """Validate X (and y); return X as a self.dtype array."""
        check_array(X, "X")
        input_dim = self.params["W1"].shape[0]
        if X.ndim < 2 or X.shape[0] < 1 or math.prod(X.shape[1:]) != input_dim:
            raise ValueError(
                f"X: expected an array of shape (N, d_1, ..., d_k) with N >= 1 and "
                f"d_1 * ... * d_k = input_dim = {input_dim}, got shape {X.shape}"
            )
        if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
            raise TypeError(f"X: expected a real-valued array, got dtype {X.dtype}")
        if y is not None:
            check_array(y, "y", ndim=1, shape_doc="(N,)")
            if not np.issubdtype(y.dtype, np.integer):
                raise TypeError(f"y: expected an integer array of class labels, got dtype {y.dtype}")
            if y.shape[0] != X.shape[0]:
                raise ValueError(
                    f"y: expected one label per example of X, shape ({X.shape[0]},), "
                    f"got shape {y.shape}"
                )
            num_classes = self.params[f"W{self.num_layers}"].shape[1]
            low, high = y.min(), y.max()
            if low < 0 or high >= num_classes:
                raise ValueError(
                    f"y: expected labels in [0, {num_classes}) for C = {num_classes} classes, "
                    f"got values in [{low}, {high}]"
                )
        return X.astype(self.dtype, copy=False)

    def loss(self, X, y=None):
        """Compute the loss and gradient for the fully-connected net.

        Inputs:
        - X: (N, d_1, ..., d_k) input data, d_1 * ... * d_k = input_dim; cast to self.dtype
        - y: (N,) integer labels in [0, C), or None

        Returns:
        If y is None, runs a test-time forward pass (batch norm uses its running
        statistics, dropout is the identity) and returns
        - scores: (N, C), scores[i, c] is the classification score for X[i] and class c.

        If y is given, runs a training-time forward and backward pass and returns
        (loss, grads):
        - loss: Python float, the softmax loss plus 0.5 * reg * sum_i sum(Wi**2)
        - grads: dict with the keys of self.params, grads[k] the gradient of loss with
          respect to self.params[k], same shape and dtype
        Training mode also updates the batch norm running statistics in self.bn_params.

        Input validation happens before anything else, so a bad y cannot leave a
        half-updated running mean behind.
        """
        X = self._check_inputs(X, y)
        mode = "test" if y is None else "train"

        # Set train/test mode for the dropout and norm params, since they behave
        # differently during training and testing.
        if self.use_dropout:
            self.dropout_param["mode"] = mode
        for bn_param in self.bn_params:
            bn_param["mode"] = mode

        # Forward pass. caches[i - 1] holds hidden layer i's (sandwich cache, dropout cache).
        L = self.num_layers
        caches = []
        out = X
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

        # If test mode return early.
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
