"""Bad input at the public layer functions: the right exception type, and a message that
names the argument, what was expected and what arrived.

The layers check only what would otherwise give a silently wrong answer (shapes that
broadcast, a wrong mode or keep probability, missing keys); what numpy refuses by itself
(a list for x, mismatched matrix sizes) is left to numpy and not tested here.

Each case is (call, exception type, regex the message must match). The regexes pin the
argument's name and the value that arrived, so a check that fires for the wrong reason
(or a bare assert, or numpy's own broadcasting error) fails.
"""
import re

import numpy as np
import pytest

from cs231n.layer_utils import affine_norm_relu_forward
from cs231n.layers import (
    affine_forward,
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    dropout_backward,
    dropout_forward,
    layernorm_backward,
    layernorm_forward,
    relu_backward,
    softmax_loss,
)

RNG = np.random.default_rng(0)
X = RNG.standard_normal((4, 3))
G = np.ones(3)
B = np.zeros(3)
W = RNG.standard_normal((3, 5))
WB = np.zeros(5)


def bn(x=X, gamma=G, beta=B, **param):
    param.setdefault("mode", "train")
    return batchnorm_forward(x, gamma, beta, param)


def ln(x=X, gamma=G, beta=B, **param):
    return layernorm_forward(x, gamma, beta, param)


def drop(x=X, **param):
    return dropout_forward(x, param)


# Caches are built when a case runs, not at import: in the student release these forward
# passes raise NotImplementedError, which must fail those cases, not the whole file.
def bn_cache():
    return bn()[1]


def ln_cache():
    return ln()[1]


def drop_cache():
    return drop(mode="train", p=0.5, seed=0)[1]


def drop_test_cache():
    return drop(mode="test", p=0.5)[1]


E = re.escape

CASES = [
    # --- affine ---
    pytest.param(lambda: affine_forward(X, W, np.zeros(4)), ValueError,
                 E("b: expected shape (5,), got (4,)"), id="affine-b-size"),
    pytest.param(lambda: affine_forward(X, W, np.zeros((1, 5))), ValueError,
                 E("b: expected shape (5,), got (1, 5)"), id="affine-b-2d"),
    pytest.param(lambda: affine_forward(X, W, np.zeros(1)), ValueError,
                 E("b: expected shape (5,), got (1,)"), id="affine-b-broadcasts"),
    # --- relu ---
    pytest.param(lambda: relu_backward(np.ones((1, 3)), X), ValueError,
                 E("dout: expected shape (4, 3), got (1, 3)"), id="relu-dout-broadcasts"),
    pytest.param(lambda: relu_backward([[1.0] * 3] * 4, X), TypeError,
                 r"dout: expected a numpy array, got list", id="relu-dout-list"),
    # --- softmax ---
    pytest.param(lambda: softmax_loss(np.ones((2, 3, 1)), np.zeros(2, int)), ValueError,
                 E("x: expected a 2-D array of shape (N, C), got shape (2, 3, 1)"),
                 id="softmax-x-3d"),
    pytest.param(lambda: softmax_loss(X, np.zeros(3, int)), ValueError,
                 E("y: expected shape (4,), got (3,)"), id="softmax-y-length"),
    pytest.param(lambda: softmax_loss(X, np.zeros((4, 1), int)), ValueError,
                 E("y: expected a 1-D array of shape (N,), got shape (4, 1)"), id="softmax-y-2d"),
    pytest.param(lambda: softmax_loss(X, np.array([0, 1, 2, 3])), ValueError,
                 E("y: expected labels in [0, 3)") + r".*got values in \[0, 3\]",
                 id="softmax-y-too-large"),
    pytest.param(lambda: softmax_loss(X, np.array([0, -1, 2, 1])), ValueError,
                 E("y: expected labels in [0, 3)") + r".*got values in \[-1, 2\]",
                 id="softmax-y-negative"),
    # --- batch norm forward ---
    pytest.param(lambda: bn(x=np.ones((4, 3, 1))), ValueError,
                 E("x: expected a 2-D array of shape (N, D), got shape (4, 3, 1)"), id="bn-x-3d"),
    pytest.param(lambda: bn(gamma=np.ones(4)), ValueError,
                 E("gamma: expected shape (3,) to match x's D = 3 features, got (4,)"),
                 id="bn-gamma-size"),
    pytest.param(lambda: bn(beta=np.zeros(2)), ValueError,
                 E("beta: expected shape (3,) to match x's D = 3 features, got (2,)"),
                 id="bn-beta-size"),
    pytest.param(lambda: bn(gamma=np.ones((1, 3))), ValueError,
                 E("gamma: expected shape (3,) to match x's D = 3 features, got (1, 3)"),
                 id="bn-gamma-row-vector"),
    pytest.param(lambda: bn(gamma=np.ones(1)), ValueError,
                 E("gamma: expected shape (3,) to match x's D = 3 features, got (1,)"),
                 id="bn-gamma-broadcasts"),
    pytest.param(lambda: batchnorm_forward(X, G, B, "train"), TypeError,
                 r"bn_param: expected a dict, got str", id="bn-param-not-dict"),
    pytest.param(lambda: batchnorm_forward(X, G, B, {}), ValueError,
                 r"bn_param: missing required key 'mode'", id="bn-mode-missing"),
    pytest.param(lambda: bn(mode="eval"), ValueError,
                 E("bn_param['mode']: expected 'train' or 'test', got 'eval'"), id="bn-mode-eval"),
    pytest.param(lambda: bn(x=X[:1]), ValueError,
                 r"x: batch normalization in training mode needs N >= 2.*got shape \(1, 3\)",
                 id="bn-train-N1"),
    pytest.param(lambda: bn(eps=0.0), ValueError,
                 E("bn_param['eps']: expected a finite number > 0, got 0.0"), id="bn-eps-zero"),
    pytest.param(lambda: bn(eps=-1e-5), ValueError,
                 E("bn_param['eps']: expected a finite number > 0, got -1e-05"),
                 id="bn-eps-negative"),
    pytest.param(lambda: bn(eps=float("nan")), ValueError,
                 E("bn_param['eps']: expected a finite number > 0, got nan"), id="bn-eps-nan"),
    pytest.param(lambda: bn(eps=float("inf")), ValueError,
                 E("bn_param['eps']: expected a finite number > 0, got inf"), id="bn-eps-inf"),
    pytest.param(lambda: bn(eps="1e-5"), TypeError,
                 E("bn_param['eps']: expected a real number, got str"), id="bn-eps-string"),
    pytest.param(lambda: bn(momentum=1.5), ValueError,
                 E("bn_param['momentum']: expected a number in [0, 1], got 1.5"),
                 id="bn-momentum-above-1"),
    pytest.param(lambda: bn(momentum=-0.1), ValueError,
                 E("bn_param['momentum']: expected a number in [0, 1], got -0.1"),
                 id="bn-momentum-negative"),
    pytest.param(lambda: bn(running_mean=np.zeros(4)), ValueError,
                 E("bn_param['running_mean']: expected shape (3,), got (4,)"),
                 id="bn-running-mean-size"),
    pytest.param(lambda: bn(mode="test", running_var=np.zeros((3, 1))), ValueError,
                 E("bn_param['running_var']: expected shape (3,), got (3, 1)"),
                 id="bn-running-var-2d"),
    # --- batch norm backward ---
    pytest.param(lambda: batchnorm_backward(np.ones((4, 4)), bn_cache()), ValueError,
                 E("dout: expected shape (4, 3), got (4, 4)"), id="bn-backward-dout-shape"),
    pytest.param(lambda: batchnorm_backward_alt(np.ones(3), bn_cache()), ValueError,
                 E("dout: expected shape (4, 3), got (3,)"), id="bn-backward-alt-dout-shape"),
    pytest.param(lambda: batchnorm_backward(np.ones((1, 3)), bn_cache()), ValueError,
                 E("dout: expected shape (4, 3), got (1, 3)"), id="bn-backward-dout-broadcasts"),
    pytest.param(lambda: batchnorm_backward(np.ones((4, 3)), bn(mode="test")[1]), TypeError,
                 r"cache: expected the cache returned by batchnorm_forward in train mode.*got NoneType",
                 id="bn-backward-test-mode-cache"),
    # --- layer norm ---
    pytest.param(lambda: ln(x=np.ones(3)), ValueError,
                 E("x: expected a 2-D array of shape (N, D), got shape (3,)"), id="ln-x-1d"),
    pytest.param(lambda: ln(gamma=np.ones(2)), ValueError,
                 E("gamma: expected shape (3,) to match x's D = 3 features, got (2,)"),
                 id="ln-gamma-size"),
    pytest.param(lambda: ln(eps=0), ValueError,
                 E("ln_param['eps']: expected a finite number > 0, got 0.0"), id="ln-eps-zero"),
    pytest.param(lambda: layernorm_forward(X, G, B, None), TypeError,
                 r"ln_param: expected a dict, got NoneType", id="ln-param-none"),
    pytest.param(lambda: layernorm_backward(np.ones((3, 4)), ln_cache()), ValueError,
                 E("dout: expected shape (4, 3), got (3, 4)"), id="ln-backward-dout-shape"),
    pytest.param(lambda: layernorm_backward(np.ones((4, 3)), bn_cache()["x_hat"]), TypeError,
                 r"cache: expected the cache returned by layernorm_forward.*got ndarray",
                 id="ln-backward-not-a-cache"),
    # --- dropout ---
    pytest.param(lambda: drop(mode="train", p=0.0), ValueError,
                 E("dropout_param['p']: expected a number in (0, 1], got 0.0"), id="dropout-p-zero"),
    pytest.param(lambda: drop(mode="train", p=1.5), ValueError,
                 E("dropout_param['p']: expected a number in (0, 1], got 1.5"), id="dropout-p-above-1"),
    pytest.param(lambda: drop(mode="test", p=-0.2), ValueError,
                 E("dropout_param['p']: expected a number in (0, 1], got -0.2"),
                 id="dropout-p-negative-test-mode"),
    pytest.param(lambda: drop(mode="train", p=float("nan")), ValueError,
                 E("dropout_param['p']: expected a number in (0, 1], got nan"), id="dropout-p-nan"),
    pytest.param(lambda: drop(mode="train", p=True), TypeError,
                 E("dropout_param['p']: expected a real number, got bool"), id="dropout-p-bool"),
    pytest.param(lambda: drop(mode="train"), ValueError,
                 r"dropout_param: missing required key 'p'", id="dropout-p-missing"),
    pytest.param(lambda: drop(p=0.5), ValueError,
                 r"dropout_param: missing required key 'mode'", id="dropout-mode-missing"),
    pytest.param(lambda: drop(mode="Train", p=0.5), ValueError,
                 E("dropout_param['mode']: expected 'train' or 'test', got 'Train'"),
                 id="dropout-mode-capitalized"),
    pytest.param(lambda: dropout_backward(np.ones((4, 4)), drop_cache()), ValueError,
                 E("dout: expected shape (4, 3), got (4, 4)"), id="dropout-backward-dout-shape"),
    pytest.param(lambda: dropout_backward(np.ones((3, 4)), drop_test_cache()), ValueError,
                 E("dout: expected shape (4, 3), got (3, 4)"),
                 id="dropout-backward-test-mode-dout-shape"),
    pytest.param(lambda: dropout_backward(np.ones((4, 1)), drop_cache()), ValueError,
                 E("dout: expected shape (4, 3), got (4, 1)"),
                 id="dropout-backward-dout-broadcasts"),
    # --- sandwich ---
    pytest.param(lambda: affine_norm_relu_forward(X, W, WB, np.ones(5), np.zeros(5),
                                                  {"mode": "train"}, "groupnorm"), ValueError,
                 E("normalization: expected one of [None, 'batchnorm', 'layernorm'], got 'groupnorm'"),
                 id="sandwich-normalization-unknown"),
    pytest.param(lambda: affine_norm_relu_forward(X, W, WB, np.ones(3), np.zeros(5),
                                                  {"mode": "train"}, "batchnorm"), ValueError,
                 E("gamma: expected shape (5,) to match x's D = 5 features, got (3,)"),
                 id="sandwich-gamma-size"),
]


@pytest.mark.parametrize("call, error, message", CASES)
def test_bad_input_raises_with_a_helpful_message(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_validation_survives_python_O():
    # The checks are plain raises, not asserts: prove it by running one under -O.
    import subprocess
    import sys

    code = ("import numpy as np\nfrom cs231n.layers import dropout_forward\n"
            "try:\n    dropout_forward(np.ones(3), {'mode': 'train', 'p': 2.0})\n"
            "except ValueError as e:\n    print('raised', e)\n")
    result = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.startswith("raised dropout_param['p']")


@pytest.mark.parametrize("momentum", [0, 1, 0.0, 1.0], ids=["int0", "int1", "float0", "float1"])
def test_momentum_bounds_are_accepted(momentum):
    # The closed interval: momentum 1 keeps the old running mean (zeros), 0 takes the batch's.
    bn_param = {"mode": "train", "momentum": momentum}
    batchnorm_forward(X, G, B, bn_param)
    expected = X.mean(axis=0) if momentum == 0 else np.zeros(3)
    np.testing.assert_allclose(bn_param["running_mean"], expected, rtol=1e-15, atol=0)
