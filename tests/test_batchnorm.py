"""Batch normalization: gradients (staged and closed form), statistics, running averages.

Gradient checks: float64, centred differences, random upstream dout (an all-ones dout
makes dx exactly 0 on both sides and could never fail). Each entry must satisfy
|analytic - numerical| <= GRAD_RTOL * |numerical| + GRAD_ATOL. The absolute floor is
needed for N = 2: both normalized values are then -+sqrt(var / (var + eps)), nearly
constant, so dx is of order eps / var and the centred difference's rounding noise
(about 1e-16 * |out| * sum|dout| / h ~ 1e-10) is a sizeable part of it. A wrong
formula errs by O(|dout|), many orders above the floor.
"""
import numpy as np
import pytest

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


def test_dgamma_uses_x_hat_not_x():
    # Hand-derivable: dgamma = sum_n dout * x_hat. For N = 2 the normalized values are
    # exactly -+1 * sqrt(var / (var + eps)) with var = (d / 2) ** 2 for a gap d.
    x = np.array([[0.0, 10.0], [4.0, 30.0]])
    dout = np.array([[1.0, 2.0], [3.0, 5.0]])
    eps = 1e-5
    _, cache = batchnorm_forward(x, np.ones(2), np.zeros(2), {"mode": "train", "eps": eps})
    var = np.array([4.0, 100.0])
    scale = np.sqrt(var / (var + eps))
    expected_dgamma = (dout[1] - dout[0]) * scale
    for backward in BACKWARDS.values():
        _, dgamma, dbeta = backward(dout, cache)
        np.testing.assert_allclose(dgamma, expected_dgamma, rtol=1e-14)
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


def test_train_forward_equals_loop_reference():
    x, gamma, beta, _ = make_inputs((7, 3), seed=5)
    eps = 1e-3
    out, _ = batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": eps})
    N, D = x.shape
    expected = np.empty_like(x)
    for d in range(D):
        col = [x[n, d] for n in range(N)]
        mu = sum(col) / N
        var = sum((v - mu) ** 2 for v in col) / N
        for n in range(N):
            expected[n, d] = gamma[d] * (x[n, d] - mu) / np.sqrt(var + eps) + beta[d]
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# Running statistics and test mode
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9, 1.0], ids=lambda m: f"momentum_{m}")
def test_running_stats_are_the_hand_computed_moving_average(momentum):
    rng = np.random.default_rng(6)
    D, steps = 3, 5
    bn_param = {"mode": "train", "momentum": momentum}
    expected_mean = [0.0] * D
    expected_var = [0.0] * D
    for _ in range(steps):
        x = rng.standard_normal((8, D)) * 2 + 1
        batchnorm_forward(x, np.ones(D), np.zeros(D), bn_param)
        for d in range(D):
            col = x[:, d].tolist()
            mu = sum(col) / len(col)
            var = sum((v - mu) ** 2 for v in col) / len(col)
            expected_mean[d] = momentum * expected_mean[d] + (1 - momentum) * mu
            expected_var[d] = momentum * expected_var[d] + (1 - momentum) * var
    np.testing.assert_allclose(bn_param["running_mean"], expected_mean, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(bn_param["running_var"], expected_var, rtol=1e-12, atol=1e-15)


def test_test_mode_uses_running_stats_and_leaves_them_unchanged():
    rng = np.random.default_rng(7)
    D = 4
    running_mean = rng.standard_normal(D)
    running_var = rng.uniform(0.5, 2.0, D)
    gamma, beta = rng.standard_normal(D), rng.standard_normal(D)
    eps = 1e-3
    bn_param = {"mode": "test", "eps": eps,
                "running_mean": running_mean.copy(), "running_var": running_var.copy()}
    x = rng.standard_normal((5, D)) * 3
    out, _ = batchnorm_forward(x, gamma, beta, bn_param)
    expected = (x - running_mean) / np.sqrt(running_var + eps) * gamma + beta
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
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
    x, gamma, beta, _ = make_inputs((6, 4), seed=11)
    eps = 1e-3
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": eps})
    assert set(cache) == {"x_hat", "inv_std", "gamma"}
    inv_std = 1 / np.sqrt(x.var(axis=0) + eps)
    np.testing.assert_allclose(cache["inv_std"], inv_std, rtol=1e-13)
    np.testing.assert_allclose(cache["x_hat"], (x - x.mean(axis=0)) * inv_std, rtol=1e-12,
                               atol=1e-13)
    _, test_cache = batchnorm_forward(x, gamma, beta, {"mode": "test"})
    assert test_cache is None


def test_float64_running_stats_are_kept_in_x_dtype():
    x = make_inputs((4, 3), seed=12)[0].astype(np.float32)
    bn_param = {"mode": "train", "running_mean": np.zeros(3), "running_var": np.ones(3)}
    out, _ = batchnorm_forward(x, np.ones(3, np.float32), np.zeros(3, np.float32), bn_param)
    assert out.dtype == np.float32
    assert bn_param["running_mean"].dtype == bn_param["running_var"].dtype == np.float32
