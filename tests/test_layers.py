"""Affine, ReLU, softmax and the layer_utils sandwiches: gradients against centred
differences (cs231n.properties.layer_gradients, float64, random dout) and hand values."""
import numpy as np
import pytest

from cs231n.gradient_check import eval_numerical_gradient, rel_error
from cs231n.layer_utils import (affine_norm_relu_backward, affine_norm_relu_forward,
                                affine_relu_backward, affine_relu_forward)
from cs231n.layers import affine_backward, affine_forward, relu_backward, relu_forward, softmax_loss
from cs231n.properties import layer_gradients

AFFINE = {"N2_D1_M1": ((2, 1), 1), "N4_D6_M5": ((4, 6), 5), "N3_image_M7": ((3, 2, 3, 4), 7),
          "N1_D5_M3": ((1, 5), 3)}


@pytest.mark.parametrize("x_shape, M", AFFINE.values(), ids=AFFINE.keys())
def test_affine_backward_matches_numerical_gradient(x_shape, M):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(x_shape), rng.standard_normal((np.prod(x_shape[1:]), M))
    b = rng.standard_normal(M)
    layer_gradients(affine_forward, affine_backward, [x, w, b], ["dx", "dw", "db"], rng)


def test_affine_forward_equals_loop_over_examples():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((3, 2, 5)), rng.standard_normal((10, 4)), rng.standard_normal(4)
    expected = [[sum(x[i].ravel()[d] * w[d, m] for d in range(10)) + b[m] for m in range(4)]
                for i in range(3)]
    np.testing.assert_allclose(affine_forward(x, w, b)[0], expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(2, 1), (5, 7), (3, 2, 4)], ids=["N2_D1", "N5_D7", "3d"])
def test_relu_backward_matches_numerical_gradient(shape):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    x[np.abs(x) < 1e-2] += 2e-2  # away from the kink, where centred differences mislead
    layer_gradients(relu_forward, relu_backward, [x], ["dx"], rng)


def test_relu_hand_values():
    x = np.array([[-2.0, -0.0, 0.0, 0.5, 3.0]])
    np.testing.assert_array_equal(relu_forward(x)[0], [[0.0, 0.0, 0.0, 0.5, 3.0]])
    # Subgradient 0 at x == 0.
    dx = relu_backward(np.array([[1.0, 2, 3, 4, 5]]), x)
    np.testing.assert_array_equal(dx, [[0.0, 0, 0, 4, 5]])


@pytest.mark.parametrize("N, C", [(1, 2), (2, 3), (8, 10)], ids=str)
def test_softmax_loss_gradient_matches_numerical(N, C):
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((N, C)), rng.integers(0, C, size=N)
    dx_num = eval_numerical_gradient(lambda v: softmax_loss(v, y)[0], x, verbose=False)
    assert rel_error(softmax_loss(x, y)[1], dx_num) < 1e-7


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_loss_hand_values(dtype):
    # Equal scores: every class has probability 1/C, so loss = log C.
    loss, dx = softmax_loss(np.zeros((5, 10)), np.arange(5))
    np.testing.assert_allclose(loss, np.log(10), rtol=1e-15)
    expected = (np.full((5, 10), 0.1) - np.eye(5, 10)) / 5
    np.testing.assert_allclose(dx, expected, rtol=1e-14, atol=1e-17)
    # exp(1000) overflows; the row-max shift keeps both finite. Row 0 loses 2000, row 1
    # log 2 (two equal top classes).
    x = np.array([[1000.0, 0.0, -1000.0], [1000.0, 1000.0, 0.0]], dtype=dtype)
    loss, dx = softmax_loss(x, np.array([2, 0]))
    np.testing.assert_allclose(loss, (2000.0 + np.log(2.0)) / 2, rtol=1e-6)
    expected = np.array([[1.0, 0.0, -1.0], [-0.5, 0.5, 0.0]]) / 2
    np.testing.assert_allclose(dx, expected, rtol=1e-6, atol=1e-7)
    assert dx.dtype == dtype
    loss, _ = softmax_loss(np.array([[1000.0, 0.0]]), np.array([0]))
    assert loss == 0.0 and np.copysign(1.0, loss) == 1.0  # +0.0, not -0.0


@pytest.mark.parametrize("normalization", [None, "batchnorm", "layernorm"])
def test_sandwich_backward_matches_numerical_gradient(normalization):
    rng = np.random.default_rng(6)
    x, w, b, gamma, beta = (rng.standard_normal(s) for s in ((4, 6), (6, 5), 5, 5, 5))
    layer_gradients(affine_relu_forward, affine_relu_backward, [x, w, b], ["dx", "dw", "db"], rng)
    n = 5 if normalization else 3  # without normalization gamma and beta are ignored
    layer_gradients(lambda *a: affine_norm_relu_forward(*a, {"mode": "train"}, normalization),
                    affine_norm_relu_backward, [x, w, b, gamma, beta],
                    ["dx", "dw", "db", "dgamma", "dbeta"][:n], rng)


def test_sandwich_batchnorm_running_stats_and_test_mode():
    rng = np.random.default_rng(7)
    x, w, b = rng.standard_normal((8, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    gamma, beta = rng.uniform(0.5, 2.0, 3), rng.standard_normal(3)
    bn_param = {"mode": "train", "momentum": 0.0}  # momentum 0: running = this batch's stats
    train_out, _ = affine_norm_relu_forward(x, w, b, gamma, beta, bn_param, "batchnorm")
    np.testing.assert_allclose(bn_param["running_mean"], (x @ w + b).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn_param["running_var"], (x @ w + b).var(axis=0), rtol=1e-12)
    bn_param["mode"] = "test"  # so test mode gives the training output, for any batch
    out, _ = affine_norm_relu_forward(x[:1], w, b, gamma, beta, bn_param, "batchnorm")
    np.testing.assert_allclose(out, train_out[:1], rtol=1e-12, atol=1e-14)


def test_sandwich_without_normalization_is_affine_relu():
    rng = np.random.default_rng(8)
    x, w, b, dout = (rng.standard_normal(s) for s in ((5, 4), (4, 3), 3, (5, 3)))
    out, cache = affine_norm_relu_forward(x, w, b, None, None, None, None)
    ref_out, ref_cache = affine_relu_forward(x, w, b)
    np.testing.assert_array_equal(out, ref_out)
    *grads, dgamma, dbeta = affine_norm_relu_backward(dout, cache)
    assert dgamma is None and dbeta is None
    for g, ref in zip(grads, affine_relu_backward(dout, ref_cache)):
        np.testing.assert_array_equal(g, ref)
