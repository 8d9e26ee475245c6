"""Bad input to FullyConnectedNet, Solver and the update rules: the right exception type,
and a message naming the argument and what arrived.

Each case is (call, exception type, regex the message must match). The regexes pin the
argument's name and the offending value, so a check that fires for the wrong reason (or
numpy's own error from deeper down) fails the test.
"""
import re

import numpy as np
import pytest

from cs231n import optim
from cs231n.classifiers.fc_net import FullyConnectedNet
from cs231n.solver import Solver

RNG = np.random.default_rng(0)
D, C = 15, 10
X = RNG.standard_normal((4, D))
Y = RNG.integers(C, size=4)


def net(hidden_dims=(8, 6), **kwargs):
    kwargs.setdefault("input_dim", D)
    return FullyConnectedNet(list(hidden_dims) if isinstance(hidden_dims, tuple) else hidden_dims,
                             **kwargs)


def loss(X=X, y=Y, **kwargs):
    return net(**kwargs).loss(X, y)


def data(**changes):
    d = {"X_train": X, "y_train": Y, "X_val": X[:3], "y_val": Y[:3]}
    d.update(changes)
    return {k: v for k, v in d.items() if v is not None}


def solver(d=None, model=None, **kwargs):
    return Solver(net() if model is None else model, data() if d is None else d, **kwargs)


W = RNG.standard_normal((4, 5))

CASES = {
    # FullyConnectedNet(...)
    "normalization-unknown": (lambda: net(normalization="batchnom"), ValueError,
                              r"normalization: .*'batchnorm'.*got 'batchnom'"),
    "normalization-capitalised": (lambda: net(normalization="BatchNorm"), ValueError,
                                  r"normalization: .*got 'BatchNorm'"),
    "keep-ratio-zero": (lambda: net(dropout_keep_ratio=0), ValueError,
                        r"dropout_keep_ratio: expected a number in \(0, 1\], got 0"),
    "keep-ratio-above-one": (lambda: net(dropout_keep_ratio=1.5), ValueError,
                             r"dropout_keep_ratio: .*got 1\.5"),
    "keep-ratio-string": (lambda: net(dropout_keep_ratio="0.5"), TypeError,
                          r"dropout_keep_ratio: expected a real number, got str"),
    "hidden-dims-int": (lambda: net(hidden_dims=100), TypeError,
                        r"hidden_dims: expected a list of positive integers, got int"),
    "hidden-dims-string": (lambda: net(hidden_dims="100"), TypeError, r"hidden_dims: .*got str"),
    "hidden-dims-zero": (lambda: net(hidden_dims=[100, 0]), ValueError,
                         r"hidden_dims\[1\]: expected an integer >= 1, got 0"),
    "hidden-dims-float": (lambda: net(hidden_dims=[100, 2.5]), TypeError,
                          r"hidden_dims\[1\]: expected an integer, got float"),
    "input-dim-zero": (lambda: net(input_dim=0), ValueError, r"input_dim: .*got 0"),
    "num-classes-float": (lambda: net(num_classes=10.0), TypeError, r"num_classes: .*got float"),
    "reg-negative": (lambda: net(reg=-0.1), ValueError, r"reg: expected a finite number >= 0, got -0\.1"),
    "reg-nan": (lambda: net(reg=float("nan")), ValueError, r"reg: .*got nan"),
    "weight-scale-zero": (lambda: net(weight_scale=0), ValueError, r"weight_scale: .*> 0, got 0"),
    "dtype-int": (lambda: net(dtype=np.int32), ValueError, r"dtype: expected a floating dtype.*int32"),
    "seed-negative": (lambda: net(seed=-1), ValueError, r"seed: expected an integer >= 0, got -1"),
    # model.loss(X, y)
    "X-wrong-feature-size": (lambda: loss(X=X[:, :14]), ValueError,
                             r"X: .*input_dim = 15, got shape \(4, 14\)"),
    "X-one-example-1d": (lambda: loss(X=X[0], y=None), ValueError, r"X: .*got shape \(15,\)"),
    "X-empty": (lambda: loss(X=X[:0], y=Y[:0]), ValueError, r"X: .*non-empty.*got shape \(0, 15\)"),
    "X-list": (lambda: loss(X=X.tolist()), TypeError, r"X: expected a numpy array, got list"),
    "X-complex": (lambda: loss(X=X.astype(complex)), TypeError, r"X: .*got dtype complex128"),
    "y-wrong-length": (lambda: loss(y=Y[:3]), ValueError,
                       r"X and y: expected the same number of rows, got 4 and 3"),
    "y-label-too-large": (lambda: loss(y=np.array([0, 1, 2, C])), ValueError,
                          r"y: expected labels in \[0, 10\).*got values in \[0, 10\]"),
    "y-label-negative": (lambda: loss(y=np.array([0, -1, 2, 3])), ValueError,
                         r"y: .*got values in \[-1, 3\]"),
    "y-float": (lambda: loss(y=Y.astype(float)), ValueError, r"y: .*integer.*dtype float64"),
    "y-2d": (lambda: loss(y=Y[:, None]), ValueError, r"y: expected a 1-D .*got shape \(4, 1\)"),
    # Solver(...)
    "solver-unknown-option": (lambda: solver(learning_rate=1e-3), ValueError,
                              r"Solver: unrecognized arguments 'learning_rate'.*'optim_config'"),
    "solver-unknown-options": (lambda: solver(epochs=3, verbos=False), ValueError,
                               r"unrecognized arguments 'epochs', 'verbos'"),
    "solver-unknown-update-rule": (lambda: solver(update_rule="adagrad"), ValueError,
                                   r"update_rule: expected one of \['adam', 'rmsprop', 'sgd', "
                                   r"'sgd_momentum'\] or a callable, got 'adagrad'"),
    "solver-update-rule-module-attribute": (lambda: solver(update_rule="np"), ValueError,
                                            r"update_rule: .*got 'np'"),
    "solver-update-rule-number": (lambda: solver(update_rule=5), TypeError, r"update_rule: .*got int"),
    "solver-data-not-dict": (lambda: solver(d=[X, Y]), TypeError, r"data: expected a dict, got list"),
    "solver-data-missing-key": (lambda: solver(d=data(X_val=None)), ValueError,
                                r"data: expected the keys .*missing \['X_val'\]"),
    "solver-data-missing-keys": (lambda: solver(d=data(y_train=None, y_val=None)), ValueError,
                                 r"missing \['y_train', 'y_val'\]"),
    "solver-train-lengths-differ": (lambda: solver(d=data(y_train=Y[:3])), ValueError,
                                    r"data\['X_train'\] and data\['y_train'\]: .*got 4 and 3"),
    "solver-val-lengths-differ": (lambda: solver(d=data(X_val=X)), ValueError,
                                  r"data\['X_val'\] and data\['y_val'\]: .*got 4 and 3"),
    "solver-labels-float": (lambda: solver(d=data(y_train=Y.astype(float))), ValueError,
                            r"data\['y_train'\]: expected a 1-D integer array.*float64"),
    "solver-data-list": (lambda: solver(d=data(X_train=X.tolist())), TypeError,
                         r"data\['X_train'\]: expected a numpy array, got list"),
    "solver-batch-size-zero": (lambda: solver(batch_size=0), ValueError,
                               r"batch_size: expected an integer >= 1, got 0"),
    "solver-batch-size-negative": (lambda: solver(batch_size=-5), ValueError, r"batch_size: .*got -5"),
    "solver-batch-size-float": (lambda: solver(batch_size=2.5), TypeError, r"batch_size: .*got float"),
    "solver-num-epochs-zero": (lambda: solver(num_epochs=0), ValueError, r"num_epochs: .*got 0"),
    "solver-lr-decay-zero": (lambda: solver(lr_decay=0), ValueError, r"lr_decay: .*> 0, got 0"),
    "solver-print-every-zero": (lambda: solver(print_every=0), ValueError, r"print_every: .*got 0"),
    "solver-num-val-samples-zero": (lambda: solver(num_val_samples=0), ValueError,
                                    r"num_val_samples: .*got 0"),
    "solver-optim-config-list": (lambda: solver(optim_config=[1e-3]), TypeError,
                                 r"optim_config: expected a dict, got list"),
    "check-accuracy-lengths-differ": (lambda: solver(verbose=False).check_accuracy(X, Y[:3]),
                                      ValueError, r"X and y: .*got 4 and 3"),
    "check-accuracy-y-column": (lambda: solver(verbose=False).check_accuracy(X, Y[:, None]),
                                ValueError, r"y: expected a 1-D array of shape \(N,\), got shape \(4, 1\)"),
    "check-accuracy-batch-size-zero": (lambda: solver().check_accuracy(X, Y, batch_size=0),
                                       ValueError, r"batch_size: .*got 0"),
    # update rules
    "optim-shapes-differ": (lambda: optim.sgd(W, W.T), ValueError,
                            r"dw: expected shape \(4, 5\), got \(5, 4\)"),
    "optim-dw-list": (lambda: optim.adam(W, W.tolist()), TypeError, r"dw: expected a numpy array"),
    "optim-w-int": (lambda: optim.sgd(W.astype(int), W), TypeError,
                    r"w: expected a floating-point array, got dtype int64"),
    "optim-lr-negative": (lambda: optim.sgd(W, W, {"learning_rate": -1e-3}), ValueError,
                          r"config\['learning_rate'\]: expected a number in \(0\.0, inf\), got -0\.001"),
    "optim-lr-string": (lambda: optim.adam(W, W, {"learning_rate": "1e-3"}), TypeError,
                        r"config\['learning_rate'\]: expected a real number, got str"),
    "optim-momentum-one": (lambda: optim.sgd_momentum(W, W, {"momentum": 1.0}), ValueError,
                           r"config\['momentum'\]: expected a number in \[0\.0, 1\.0\), got 1\.0"),
    "optim-decay-rate-negative": (lambda: optim.rmsprop(W, W, {"decay_rate": -0.5}), ValueError,
                                  r"config\['decay_rate'\]: .*got -0\.5"),
    "optim-beta2-above-one": (lambda: optim.adam(W, W, {"beta2": 1.5}), ValueError,
                              r"config\['beta2'\]: .*got 1\.5"),
    "optim-epsilon-zero": (lambda: optim.adam(W, W, {"epsilon": 0}), ValueError,
                           r"config\['epsilon'\]: .*got 0\.0"),
    "optim-config-list": (lambda: optim.adam(W, W, [1e-3]), TypeError,
                          r"config: expected a dict or None, got list"),
    "optim-state-wrong-shape": (lambda: optim.adam(W, W, {"m": np.zeros(3)}), ValueError,
                                r"config\['m'\]: expected an array of w's shape \(4, 5\), got \(3,\)"),
    "optim-t-negative": (lambda: optim.adam(W, W, {"t": -1}), ValueError, r"config\['t'\]: .*got -1"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_raises_named_error(case):
    call, error, pattern = CASES[case]
    with pytest.raises(error) as info:
        call()
    assert type(info.value) is error
    assert re.search(pattern, str(info.value)), f"message was: {info.value}"


def test_bad_labels_leave_running_statistics_untouched():
    """y is checked before the forward pass, which would otherwise update the batch norm
    running statistics and then fail in the loss."""
    model = net(normalization="batchnorm", num_classes=C)
    model.loss(X, Y)
    before = [p["running_mean"].copy() for p in model.bn_params]
    with pytest.raises(ValueError, match="y: "):
        model.loss(X, np.array([0, 1, 2, 99]))
    for p, b in zip(model.bn_params, before):
        np.testing.assert_array_equal(p["running_mean"], b)


def test_normalizations_defined_once():
    """One tuple of normalization names, layer_utils': FullyConnectedNet and the sandwich
    layers accept the same names and cannot drift apart."""
    from cs231n import layer_utils
    from cs231n.classifiers import fc_net

    assert fc_net.NORMALIZATIONS is layer_utils.NORMALIZATIONS
