"""Batch norm: the self-check's properties (cs231n.properties) over cases, and hand values."""
import numpy as np
import pytest

from cs231n import layers, properties
from cs231n.layers import batchnorm_backward, batchnorm_backward_alt, batchnorm_forward

SHAPES = {"N2_D1": (2, 1), "N2_D3": (2, 3), "N4_D5": (4, 5), "N10_D1": (10, 1), "N16_D7": (16, 7)}
BACKWARDS = {"staged": batchnorm_backward, "alt": batchnorm_backward_alt}


@pytest.mark.parametrize("backward", ["batchnorm_backward", "batchnorm_backward_alt"])
@pytest.mark.parametrize("eps", [None, 1e-3, 1e-8, 1.0], ids=lambda e: f"eps_{e}")
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_backward_matches_numerical_gradient(shape, eps, backward):
    properties.norm_gradients(layers, backward, *shape, np.random.default_rng(0), eps)


@pytest.mark.parametrize("eps", [1e-5, 1e-2, 1.0], ids=lambda e: f"eps_{e:g}")
def test_train_statistics(eps):
    properties.bn_train_statistics(batchnorm_forward, np.random.default_rng(1), eps)


@pytest.mark.parametrize("momentum", [None, 0.0, 0.25, 0.7, 1.0], ids=lambda m: f"momentum_{m}")
def test_running_averages(momentum):
    properties.bn_running_averages(batchnorm_forward, np.random.default_rng(2), momentum)


@pytest.mark.parametrize("eps", [1e-5, 0.5], ids=lambda e: f"eps_{e:g}")
def test_test_mode_uses_running_statistics(eps):
    properties.bn_test_mode(batchnorm_forward, np.random.default_rng(3), eps)


# x = [[1, 2], [3, 6]], per feature: mean [2, 4], biased var [1, 4] (divide by N = 2).
# eps = 6.5625 makes the square roots exact: sqrt(var + eps) = [2.75, 3.25],
# inv_std = [4/11, 4/13], x_hat = [[-4/11, -8/13], [4/11, 8/13]].
HAND_X, HAND_EPS = np.array([[1.0, 2.0], [3.0, 6.0]]), 6.5625


def test_train_forward_and_cache_hand_values():
    # gamma = [2, -1], beta = [0.5, 3]: out = [[0.5 - 8/11, 3 + 8/13], [0.5 + 8/11, 3 - 8/13]].
    gamma, beta = np.array([2.0, -1.0]), np.array([0.5, 3.0])
    out, cache = batchnorm_forward(HAND_X, gamma, beta, {"mode": "train", "eps": HAND_EPS})
    expected = np.array([[0.5 - 8 / 11, 3 + 8 / 13], [0.5 + 8 / 11, 3 - 8 / 13]])
    np.testing.assert_allclose(out, expected, rtol=1e-14)
    assert set(cache) == {"x_hat", "inv_std", "gamma"}
    np.testing.assert_allclose(cache["inv_std"], [4 / 11, 4 / 13], rtol=1e-15)
    np.testing.assert_allclose(cache["x_hat"], [[-4 / 11, -8 / 13], [4 / 11, 8 / 13]], rtol=1e-15)
    assert batchnorm_forward(HAND_X, gamma, beta, {"mode": "test"})[1] is None
    # One feature, x = [0, 0, 3]: mean 1, biased var 2 (the unbiased one would be 3),
    # eps = 2 gives sqrt(var + eps) = 2 and x_hat = [-0.5, -0.5, 1].
    out, _ = batchnorm_forward(np.array([[0.0], [0.0], [3.0]]), np.ones(1), np.zeros(1),
                               {"mode": "train", "eps": 2.0})
    np.testing.assert_allclose(out, [[-0.5], [-0.5], [1.0]], rtol=1e-15)


@pytest.mark.parametrize("backward", BACKWARDS.values(), ids=BACKWARDS.keys())
def test_dgamma_dbeta_hand_values(backward):
    # x = [[0, 10], [4, 30]]: x_hat = [[-1, -1], [1, 1]] * s, s = sqrt(var / (var + eps)),
    # var = [4, 100]. With dout = [[1, 2], [3, 5]], sum(out * dout) is gamma * s * [3 - 1,
    # 5 - 2] + beta * [1 + 3, 2 + 5] + terms without gamma or beta.
    x, dout, var = np.array([[0.0, 10.0], [4.0, 30.0]]), np.array([[1.0, 2.0], [3.0, 5.0]]), \
        np.array([4.0, 100.0])
    _, cache = batchnorm_forward(x, np.ones(2), np.zeros(2), {"mode": "train", "eps": 1e-5})
    _, dgamma, dbeta = backward(dout, cache)
    s = np.sqrt(var / (var + 1e-5))
    np.testing.assert_allclose(dgamma, np.array([2.0, 3.0]) * s, rtol=1e-14)
    np.testing.assert_allclose(dbeta, [4.0, 7.0], rtol=1e-15)


@pytest.mark.parametrize("momentum", [0.0, 0.25, 0.9, 1.0], ids=lambda m: f"momentum_{m}")
def test_running_stats_after_two_steps_hand_values(momentum):
    # Batch 1: mean [2, 4], biased var [1, 4]; batch 2: mean [2, -1], biased var [4, 1].
    # From zeros, two steps give m * (1 - m) * batch 1 + (1 - m) * batch 2.
    m, bn_param = momentum, {"mode": "train", "momentum": momentum}
    batchnorm_forward(HAND_X, np.ones(2), np.zeros(2), bn_param)
    batchnorm_forward(np.array([[0.0, 0.0], [4.0, -2.0]]), np.ones(2), np.zeros(2), bn_param)
    for key, first, second in (("running_mean", [2.0, 4.0], [2.0, -1.0]),
                               ("running_var", [1.0, 4.0], [4.0, 1.0])):
        expected = m * (1 - m) * np.array(first) + (1 - m) * np.array(second)
        np.testing.assert_allclose(bn_param[key], expected, rtol=1e-14, atol=1e-15)


def test_test_mode_hand_values():
    # running_mean [1, -2], running_var [3.75, 0.75], eps 0.25: sqrt(var + eps) = [2, 1];
    # x_hat = [[2, 0], [0, 2], [-2, -3]]; gamma [3, -1], beta [1, 10].
    running_mean, running_var = np.array([1.0, -2.0]), np.array([3.75, 0.75])
    bn_param = {"mode": "test", "eps": 0.25, "running_mean": running_mean,
                "running_var": running_var}
    x = np.array([[5.0, -2.0], [1.0, 0.0], [-3.0, -5.0]])
    out, _ = batchnorm_forward(x, np.array([3.0, -1.0]), np.array([1.0, 10.0]), bn_param)
    np.testing.assert_allclose(out, [[7.0, 10.0], [1.0, 8.0], [-5.0, 13.0]], rtol=1e-15)
    one, _ = batchnorm_forward(x[:1], np.array([3.0, -1.0]), np.array([1.0, 10.0]), bn_param)
    np.testing.assert_allclose(one, out[:1], rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["train", "test"])
def test_keeps_dtype(dtype, mode):
    x, gamma, beta = (a.astype(dtype) for a in properties.norm_data(np.random.default_rng(8), 6, 3))
    bn_param = {"mode": mode, "running_mean": np.zeros(3), "running_var": np.ones(3)}
    out, cache = batchnorm_forward(x, gamma, beta, bn_param)
    assert out.dtype == dtype
    # Train mode writes float64 statistics back in x's dtype; test mode changes nothing.
    expected = dtype if mode == "train" else np.float64
    assert bn_param["running_mean"].dtype == bn_param["running_var"].dtype == expected
    if mode == "train":
        for backward in BACKWARDS.values():
            assert all(g.dtype == dtype for g in backward(np.ones_like(x), cache))


def test_backwards_modify_neither_inputs_nor_cache():
    # The notebook runs both backwards on one cache: neither may write into it.
    x, gamma, beta = properties.norm_data(np.random.default_rng(10), 5, 3)
    dout = np.random.default_rng(11).standard_normal((5, 3))
    copies = [a.copy() for a in (x, gamma, beta, dout)]
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    saved = {k: v.copy() for k, v in cache.items()}
    first = batchnorm_backward(dout, cache) + batchnorm_backward_alt(dout, cache)
    second = batchnorm_backward_alt(dout, cache) + batchnorm_backward(dout, cache)
    for a, b in zip(first + tuple(saved.values()) + tuple(copies),
                    second[3:] + second[:3] + tuple(cache.values()) + (x, gamma, beta, dout)):
        np.testing.assert_array_equal(a, b)
