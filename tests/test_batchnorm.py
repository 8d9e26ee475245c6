"""Batch normalization: gradients (staged and closed form), statistics, running averages.

Gradient checks: float64, centred differences, random upstream dout (an all-ones dout
makes dx exactly 0 on both sides and could never fail). Each entry must satisfy
|analytic - numerical| <= GRAD_RTOL * |numerical| + GRAD_ATOL. The absolute floor is
needed for N = 2: both normalized values are then -+sqrt(var / (var + eps)), nearly
constant, so dx is of order eps / var and the centred difference's rounding noise
(about 1e-16 * |out| * sum|dout| / h ~ 1e-10) is a sizeable part of it. A wrong
formula errs by O(|dout|), many orders above the floor.
"""
import types

import numpy as np
import pytest

from cs231n import layers
from cs231n.gradient_check import eval_numerical_gradient_array, rel_error
from cs231n.layers import batchnorm_backward, batchnorm_backward_alt, batchnorm_forward

GRAD_RTOL = 1e-7
GRAD_ATOL = 1e-9

SHAPES = {"N2_D1": (2, 1), "N2_D3": (2, 3), "N4_D5": (4, 5), "N10_D1": (10, 1), "N16_D7": (16, 7)}
EPS = {"eps_default": None, "eps_1e-3": 1e-3, "eps_1e-8": 1e-8, "eps_1": 1.0}
BACKWARDS = {"staged": batchnorm_backward, "alt": batchnorm_backward_alt}


def make_inputs(shape, seed=0):
    """x with a non-trivial mean and scale per feature, random gamma/beta/dout.

    Redraws x until every feature's std is at least 0.5: with N = 2 two nearly equal
    values make var tiny, the function's curvature ~ 1 / var huge, and the centred
    difference's truncation error O(h ** 2 / var ** 1.5) would fail a correct backward.
    """
    rng = np.random.default_rng(seed)
    N, D = shape
    x = np.zeros(shape)
    while x.std(axis=0).min() < 0.5:
        x = rng.standard_normal(shape) * rng.uniform(0.5, 3.0, D) + rng.uniform(-5, 5, D)
    gamma = rng.standard_normal(D)
    beta = rng.standard_normal(D)
    dout = rng.standard_normal(shape)
    return x, gamma, beta, dout


def train_param(eps):
    return {"mode": "train"} if eps is None else {"mode": "train", "eps": eps}


@pytest.mark.parametrize("backward", BACKWARDS.values(), ids=BACKWARDS.keys())
@pytest.mark.parametrize("eps", EPS.values(), ids=EPS.keys())
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_backward_matches_numerical_gradient(shape, eps, backward):
    x, gamma, beta, dout = make_inputs(shape)

    def f(xv, gv, bv):
        return batchnorm_forward(xv, gv, bv, train_param(eps))[0]

    _, cache = batchnorm_forward(x, gamma, beta, train_param(eps))
    dx, dgamma, dbeta = backward(dout, cache)

    dx_num = eval_numerical_gradient_array(lambda v: f(v, gamma, beta), x, dout)
    dgamma_num = eval_numerical_gradient_array(lambda v: f(x, v, beta), gamma, dout)
    dbeta_num = eval_numerical_gradient_array(lambda v: f(x, gamma, v), beta, dout)
    for name, analytic, numerical in (
        ("dx", dx, dx_num), ("dgamma", dgamma, dgamma_num), ("dbeta", dbeta, dbeta_num)
    ):
        np.testing.assert_allclose(
            analytic, numerical, rtol=GRAD_RTOL, atol=GRAD_ATOL, err_msg=name
        )


@pytest.mark.parametrize("shape", [(2, 1), (5, 4), (64, 30), (200, 3)], ids=str)
def test_staged_and_alt_backward_agree(shape):
    x, gamma, beta, dout = make_inputs(shape, seed=1)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    for staged, alt in zip(batchnorm_backward(dout, cache), batchnorm_backward_alt(dout, cache)):
        assert rel_error(staged, alt) < 1e-10


def _names_used(code):
    """The global and attribute names a code object and the code nested in it use."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names_used(const)
    return names


def test_alt_backward_is_a_closed_form_not_a_call_to_the_staged_one(monkeypatch):
    # batchnorm_backward_alt must compute the gradients itself. Its code may not name
    # batchnorm_backward, nor a global that holds it (an alias such as
    # `staged = batchnorm_backward` at module level) ...
    names = _names_used(layers.batchnorm_backward_alt.__code__)
    aliases = sorted(n for n in names - {"batchnorm_backward"}
                     if getattr(layers, n, None) is layers.batchnorm_backward)
    assert "batchnorm_backward" not in names and not aliases, (
        f"batchnorm_backward_alt calls batchnorm_backward"
        f"{f' (through {aliases})' if aliases else ''}: write the closed form"
    )

    # ... and it must still work when batchnorm_backward is not there to call.
    def staged_is_off_limits(*args, **kwargs):
        raise AssertionError("batchnorm_backward_alt called batchnorm_backward: write the "
                             "closed form")

    x, gamma, beta, dout = make_inputs((6, 4), seed=11)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    monkeypatch.setattr(layers, "batchnorm_backward", staged_is_off_limits)
    dx, dgamma, dbeta = layers.batchnorm_backward_alt(dout, cache)
    assert dx.shape == x.shape and dgamma.shape == dbeta.shape == gamma.shape


def test_dgamma_dbeta_hand_values():
    # x = [[0, 10], [4, 30]]: per feature mean [2, 20], biased var [4, 100], so
    # x_hat = [[-1, -1], [1, 1]] * s with s = sqrt(var / (var + eps)).
    # out = gamma * x_hat + beta and the loss sum(out * dout) with
    # dout = [[1, 2], [3, 5]]: as a function of gamma it is gamma * s * [3 - 1, 5 - 2]
    # (+ terms without gamma), and of beta, beta * [1 + 3, 2 + 5].
    x = np.array([[0.0, 10.0], [4.0, 30.0]])
    dout = np.array([[1.0, 2.0], [3.0, 5.0]])
    eps = 1e-5
    _, cache = batchnorm_forward(x, np.ones(2), np.zeros(2), {"mode": "train", "eps": eps})
    var = np.array([4.0, 100.0])
    s = np.sqrt(var / (var + eps))
    for backward in BACKWARDS.values():
        _, dgamma, dbeta = backward(dout, cache)
        np.testing.assert_allclose(dgamma, np.array([2.0, 3.0]) * s, rtol=1e-14)
        np.testing.assert_allclose(dbeta, [4.0, 7.0], rtol=1e-15)


def test_dx_is_zero_for_constant_upstream():
    # The reason tests use a random dout: with dout = ones, dx = 0 exactly.
    x, gamma, beta, _ = make_inputs((6, 4), seed=2)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    for backward in BACKWARDS.values():
        dx, _, _ = backward(np.ones((6, 4)), cache)
        np.testing.assert_allclose(dx, 0.0, atol=1e-12)


# ---------------------------------------------------------------------------
# Training-mode statistics
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("eps", [1e-5, 1e-2, 1.0], ids=lambda e: f"eps_{e:g}")
def test_train_output_has_zero_mean_and_expected_std(eps):
    x, _, _, _ = make_inputs((200, 5), seed=3)
    D = x.shape[1]
    out, _ = batchnorm_forward(x, np.ones(D), np.zeros(D), {"mode": "train", "eps": eps})
    var = x.var(axis=0)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-7)
    # Biased variance, eps inside the sqrt: std(out) = sqrt(var / (var + eps)).
    np.testing.assert_allclose(out.std(axis=0), np.sqrt(var / (var + eps)), rtol=1e-12)


def test_train_output_mean_is_beta_and_std_is_gamma():
    x, _, _, _ = make_inputs((300, 4), seed=4)
    gamma = np.array([1.0, 3.0, 0.5, 2.0])
    beta = np.array([11.0, 12.0, -13.0, 0.0])
    eps = 1e-5
    out, _ = batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": eps})
    var = x.var(axis=0)
    np.testing.assert_allclose(out.mean(axis=0), beta, rtol=1e-12, atol=1e-7)
    np.testing.assert_allclose(out.std(axis=0), gamma * np.sqrt(var / (var + eps)), rtol=1e-12)


# A tiny input whose statistics are easy by hand. x = [[1, 2], [3, 6]], per feature:
# mean [2, 4], biased var [1, 4] (divide by N = 2), x - mean = [[-1, -2], [1, 2]].
# eps = 6.5625 makes the square roots exact: sqrt(var + eps) = [2.75, 3.25],
# inv_std = [4/11, 4/13], x_hat = [[-4/11, -8/13], [4/11, 8/13]].
HAND_X = np.array([[1.0, 2.0], [3.0, 6.0]])
HAND_EPS = 6.5625
HAND_INV_STD = np.array([4 / 11, 4 / 13])
HAND_X_HAT = np.array([[-4 / 11, -8 / 13], [4 / 11, 8 / 13]])


def test_train_forward_hand_values():
    # gamma = [2, -1], beta = [0.5, 3]: out = [[0.5 - 8/11, 3 + 8/13], [0.5 + 8/11, 3 - 8/13]].
    gamma, beta = np.array([2.0, -1.0]), np.array([0.5, 3.0])
    out, _ = batchnorm_forward(HAND_X, gamma, beta, {"mode": "train", "eps": HAND_EPS})
    expected = np.array([[0.5 - 8 / 11, 3 + 8 / 13], [0.5 + 8 / 11, 3 - 8 / 13]])
    np.testing.assert_allclose(out, expected, rtol=1e-14)


def test_train_forward_hand_values_three_examples():
    # One feature, x = [0, 0, 3]: mean 1, biased var (1 + 1 + 4) / 3 = 2 (the unbiased
    # one would be 3), eps = 2 gives sqrt(var + eps) = 2 and x_hat = [-0.5, -0.5, 1].
    out, _ = batchnorm_forward(np.array([[0.0], [0.0], [3.0]]), np.array([1.0]),
                               np.array([0.0]), {"mode": "train", "eps": 2.0})
    np.testing.assert_allclose(out, [[-0.5], [-0.5], [1.0]], rtol=1e-15)


# ---------------------------------------------------------------------------
# Running statistics and test mode
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("momentum", [0.0, 0.25, 0.9, 1.0], ids=lambda m: f"momentum_{m}")
def test_running_stats_after_two_steps_hand_values(momentum):
    # Batch 1, x = [[1, 2], [3, 6]]: mean [2, 4], biased var [1, 4].
    # Batch 2, x = [[0, 0], [4, -2]]: mean [2, -1], biased var [4, 1].
    # From zeros, with m = momentum the weight of the old value, two steps give
    # m * (1 - m) * (batch 1 statistic) + (1 - m) * (batch 2 statistic).
    m = momentum
    bn_param = {"mode": "train", "momentum": m}
    batchnorm_forward(np.array([[1.0, 2.0], [3.0, 6.0]]), np.ones(2), np.zeros(2), bn_param)
    batchnorm_forward(np.array([[0.0, 0.0], [4.0, -2.0]]), np.ones(2), np.zeros(2), bn_param)
    expected_mean = m * (1 - m) * np.array([2.0, 4.0]) + (1 - m) * np.array([2.0, -1.0])
    expected_var = m * (1 - m) * np.array([1.0, 4.0]) + (1 - m) * np.array([4.0, 1.0])
    np.testing.assert_allclose(bn_param["running_mean"], expected_mean, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(bn_param["running_var"], expected_var, rtol=1e-14, atol=1e-15)


def test_test_mode_uses_running_stats_and_leaves_them_unchanged():
    # running_mean [1, -2], running_var [3.75, 0.75], eps 0.25: sqrt(var + eps) = [2, 1].
    # x = [[5, -2], [1, 0], [-3, -5]] -> (x - mean) / 2 and / 1 = [[2, 0], [0, 2], [-2, -3]]
    # -> with gamma [3, -1], beta [1, 10]: [[7, 10], [1, 8], [-5, 13]]. (The batch's own
    # statistics would give other values.)
    running_mean, running_var = np.array([1.0, -2.0]), np.array([3.75, 0.75])
    bn_param = {"mode": "test", "eps": 0.25,
                "running_mean": running_mean.copy(), "running_var": running_var.copy()}
    x = np.array([[5.0, -2.0], [1.0, 0.0], [-3.0, -5.0]])
    out, _ = batchnorm_forward(x, np.array([3.0, -1.0]), np.array([1.0, 10.0]), bn_param)
    np.testing.assert_allclose(out, [[7.0, 10.0], [1.0, 8.0], [-5.0, 13.0]], rtol=1e-15)
    np.testing.assert_array_equal(bn_param["running_mean"], running_mean)
    np.testing.assert_array_equal(bn_param["running_var"], running_var)


def test_test_mode_works_for_a_single_example():
    bn_param = {"mode": "test", "running_mean": np.array([1.0]), "running_var": np.array([3.0])}
    out, _ = batchnorm_forward(np.array([[3.0]]), np.array([2.0]), np.array([0.5]), bn_param)
    np.testing.assert_allclose(out, [[2.0 * 2.0 / np.sqrt(3.0 + 1e-5) + 0.5]], rtol=1e-14)


def test_running_stats_created_as_zeros_then_written_back():
    bn_param = {"mode": "train", "momentum": 0.9}
    x = np.array([[1.0, 2.0], [3.0, 6.0]])
    batchnorm_forward(x, np.ones(2), np.zeros(2), bn_param)
    # 0.9 * 0 + 0.1 * batch statistic.
    np.testing.assert_allclose(bn_param["running_mean"], [0.2, 0.4], rtol=1e-15)
    np.testing.assert_allclose(bn_param["running_var"], [0.1, 0.4], rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["train", "test"])
def test_keeps_dtype(dtype, mode):
    x, gamma, beta, dout = (a.astype(dtype) for a in make_inputs((6, 3), seed=8))
    bn_param = {"mode": mode}
    out, cache = batchnorm_forward(x, gamma, beta, bn_param)
    assert out.dtype == dtype
    assert bn_param["running_mean"].dtype == dtype
    assert bn_param["running_var"].dtype == dtype
    if mode == "train":
        for backward in BACKWARDS.values():
            assert all(g.dtype == dtype for g in backward(dout.astype(dtype), cache))


def test_float32_forward_close_to_float64():
    x, gamma, beta, dout = make_inputs((64, 10), seed=9)
    out64, cache64 = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    f32 = [a.astype(np.float32) for a in (x, gamma, beta, dout)]
    out32, cache32 = batchnorm_forward(*f32[:3], {"mode": "train"})
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-5)
    grads32 = batchnorm_backward_alt(f32[3], cache32)
    for g32, g64 in zip(grads32, batchnorm_backward_alt(dout, cache64)):
        np.testing.assert_allclose(g32, g64, rtol=1e-3, atol=1e-4)


def test_forward_and_backward_modify_neither_inputs_nor_cache():
    # The notebook runs both backwards on one cache: neither may write into it.
    x, gamma, beta, dout = make_inputs((5, 3), seed=10)
    copies = [a.copy() for a in (x, gamma, beta, dout)]
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    cache_copy = {k: v.copy() for k, v in cache.items()}
    first = batchnorm_backward(dout, cache) + batchnorm_backward_alt(dout, cache)
    second = batchnorm_backward_alt(dout, cache) + batchnorm_backward(dout, cache)
    for a, b in zip(first, second[3:] + second[:3]):
        np.testing.assert_array_equal(a, b)
    for key, value in cache_copy.items():
        np.testing.assert_array_equal(cache[key], value)
    for original, copy in zip((x, gamma, beta, dout), copies):
        np.testing.assert_array_equal(original, copy)


def test_cache_holds_x_hat_inv_std_gamma_only():
    # The hand values above (HAND_X, HAND_EPS).
    gamma, beta = np.array([2.0, -1.0]), np.array([0.5, 3.0])
    _, cache = batchnorm_forward(HAND_X, gamma, beta, {"mode": "train", "eps": HAND_EPS})
    assert set(cache) == {"x_hat", "inv_std", "gamma"}
    np.testing.assert_allclose(cache["inv_std"], HAND_INV_STD, rtol=1e-15)
    np.testing.assert_allclose(cache["x_hat"], HAND_X_HAT, rtol=1e-15)
    np.testing.assert_array_equal(cache["gamma"], gamma)
    _, test_cache = batchnorm_forward(HAND_X, gamma, beta, {"mode": "test"})
    assert test_cache is None


def test_float64_running_stats_are_kept_in_x_dtype():
    x = make_inputs((4, 3), seed=12)[0].astype(np.float32)
    bn_param = {"mode": "train", "running_mean": np.zeros(3), "running_var": np.ones(3)}
    out, _ = batchnorm_forward(x, np.ones(3, np.float32), np.zeros(3, np.float32), bn_param)
    assert out.dtype == np.float32
    assert bn_param["running_mean"].dtype == bn_param["running_var"].dtype == np.float32


def test_test_mode_leaves_bn_param_untouched_dtype_included():
    """float32 x in test mode with float64 running statistics: bn_param keeps its own
    arrays (the same objects, float64), as the docstring says."""
    rng = np.random.default_rng(3)
    mean, var = rng.standard_normal(4), rng.uniform(0.5, 2, 4)
    bn_param = {"mode": "test", "running_mean": mean, "running_var": var}
    x = rng.standard_normal((5, 4)).astype(np.float32)
    batchnorm_forward(x, np.ones(4, np.float32), np.zeros(4, np.float32), bn_param)
    assert bn_param["running_mean"] is mean and bn_param["running_var"] is var
    assert bn_param["running_mean"].dtype == np.float64
