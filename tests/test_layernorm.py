"""Layer normalization: gradients, per-example statistics, no dependence on the batch.

Gradient checks as in test_batchnorm.py: float64, centred differences, random dout,
|analytic - numerical| <= GRAD_RTOL * |numerical| + GRAD_ATOL.
"""
import numpy as np
import pytest

from cs231n.gradient_check import eval_numerical_gradient_array
from cs231n.layers import layernorm_backward, layernorm_forward

GRAD_RTOL = 1e-7
GRAD_ATOL = 1e-9

SHAPES = {"N1_D2": (1, 2), "N1_D6": (1, 6), "N2_D3": (2, 3), "N4_D5": (4, 5), "N7_D12": (7, 12),
          "N5_D2": (5, 2)}
EPS = {"eps_default": None, "eps_1e-3": 1e-3, "eps_1e-8": 1e-8, "eps_1": 1.0}


def make_inputs(shape, seed=0):
    """Rows with their own mean and scale, each with std >= 0.5 (see test_batchnorm)."""
    rng = np.random.default_rng(seed)
    N, D = shape
    x = np.zeros(shape)
    while x.std(axis=1).min() < 0.5:
        x = (rng.standard_normal(shape) * rng.uniform(0.5, 3.0, (N, 1))
             + rng.uniform(-5, 5, (N, 1)))
    return x, rng.standard_normal(D), rng.standard_normal(D), rng.standard_normal(shape)


def ln_param(eps):
    return {} if eps is None else {"eps": eps}


@pytest.mark.parametrize("eps", EPS.values(), ids=EPS.keys())
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_backward_matches_numerical_gradient(shape, eps):
    x, gamma, beta, dout = make_inputs(shape)

    def f(xv, gv, bv):
        return layernorm_forward(xv, gv, bv, ln_param(eps))[0]

    _, cache = layernorm_forward(x, gamma, beta, ln_param(eps))
    dx, dgamma, dbeta = layernorm_backward(dout, cache)
    checks = (
        ("dx", dx, eval_numerical_gradient_array(lambda v: f(v, gamma, beta), x, dout)),
        ("dgamma", dgamma, eval_numerical_gradient_array(lambda v: f(x, v, beta), gamma, dout)),
        ("dbeta", dbeta, eval_numerical_gradient_array(lambda v: f(x, gamma, v), beta, dout)),
    )
    for name, analytic, numerical in checks:
        np.testing.assert_allclose(
            analytic, numerical, rtol=GRAD_RTOL, atol=GRAD_ATOL, err_msg=name
        )


@pytest.mark.parametrize("eps", [1e-5, 1e-2, 1.0], ids=lambda e: f"eps_{e:g}")
def test_rows_have_zero_mean_and_expected_std(eps):
    x, _, _, _ = make_inputs((6, 50), seed=1)
    out, _ = layernorm_forward(x, np.ones(50), np.zeros(50), {"eps": eps})
    var = x.var(axis=1)
    np.testing.assert_allclose(out.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=1), np.sqrt(var / (var + eps)), rtol=1e-12)


def test_forward_hand_values():
    # x = [[1, 3], [2, 6]], per example (axis 1): mean [2, 4], biased var [1, 4] (divide
    # by D = 2), x - mean = [[-1, 1], [-2, 2]]. eps = 6.5625 makes the square roots exact:
    # sqrt(var + eps) = [2.75, 3.25], x_hat = [[-4/11, 4/11], [-8/13, 8/13]].
    # gamma = [2, -1], beta = [0.5, 3] (per feature):
    # out = [[0.5 - 8/11, 3 - 4/11], [0.5 - 16/13, 3 - 8/13]].
    x = np.array([[1.0, 3.0], [2.0, 6.0]])
    out, cache = layernorm_forward(x, np.array([2.0, -1.0]), np.array([0.5, 3.0]),
                                   {"eps": 6.5625})
    expected = np.array([[0.5 - 8 / 11, 3 - 4 / 11], [0.5 - 16 / 13, 3 - 8 / 13]])
    np.testing.assert_allclose(out, expected, rtol=1e-14)
    np.testing.assert_allclose(cache["x_hat"], [[-4 / 11, 4 / 11], [-8 / 13, 8 / 13]],
                               rtol=1e-15)
    np.testing.assert_allclose(cache["inv_std"], [[4 / 11], [4 / 13]], rtol=1e-15)


def test_forward_hand_values_three_features():
    # One example, x = [0, 0, 3]: mean 1, biased var (1 + 1 + 4) / 3 = 2 (the unbiased
    # one would be 3), eps = 2 gives sqrt(var + eps) = 2 and x_hat = [-0.5, -0.5, 1].
    out, _ = layernorm_forward(np.array([[0.0, 0.0, 3.0]]), np.ones(3), np.zeros(3),
                               {"eps": 2.0})
    np.testing.assert_allclose(out, [[-0.5, -0.5, 1.0]], rtol=1e-15)


@pytest.mark.parametrize("row", [0, 3, 6])
def test_each_example_is_independent_of_the_batch(row):
    x, gamma, beta, dout = make_inputs((7, 9), seed=3)
    out_batch, cache_batch = layernorm_forward(x, gamma, beta, {})
    out_alone, cache_alone = layernorm_forward(x[row:row + 1].copy(), gamma, beta, {})
    np.testing.assert_allclose(out_alone[0], out_batch[row], rtol=1e-14, atol=1e-15)
    dx_batch = layernorm_backward(dout, cache_batch)[0]
    dx_alone = layernorm_backward(dout[row:row + 1].copy(), cache_alone)[0]
    np.testing.assert_allclose(dx_alone[0], dx_batch[row], rtol=1e-13, atol=1e-15)


def test_train_and_test_mode_give_the_same_output():
    x, gamma, beta, _ = make_inputs((5, 4), seed=4)
    out_train, _ = layernorm_forward(x, gamma, beta, {"mode": "train"})
    out_test, _ = layernorm_forward(x, gamma, beta, {"mode": "test"})
    out_none, _ = layernorm_forward(x, gamma, beta, {})
    np.testing.assert_array_equal(out_train, out_test)
    np.testing.assert_array_equal(out_train, out_none)


def test_keeps_no_state_in_ln_param():
    ln_param = {"mode": "train", "eps": 1e-5}
    x, gamma, beta, _ = make_inputs((3, 4), seed=5)
    layernorm_forward(x, gamma, beta, ln_param)
    assert ln_param == {"mode": "train", "eps": 1e-5}


def test_single_example_hand_values():
    # Row (1, 3): mu = 2, var = 1, x_hat = (-1, 1) * 1 / sqrt(1 + eps).
    eps = 1e-5
    gamma, beta = np.array([2.0, 3.0]), np.array([0.5, -0.5])
    out, _ = layernorm_forward(np.array([[1.0, 3.0]]), gamma, beta, {"eps": eps})
    expected = gamma * np.array([-1.0, 1.0]) / np.sqrt(1.0 + eps) + beta
    np.testing.assert_allclose(out, [expected], rtol=1e-15)


def test_dx_rows_sum_to_zero():
    # out is invariant to adding a constant to a row, so each row of dx sums to 0.
    x, gamma, beta, dout = make_inputs((6, 8), seed=6)
    _, cache = layernorm_forward(x, gamma, beta, {})
    dx, _, _ = layernorm_backward(dout, cache)
    np.testing.assert_allclose(dx.sum(axis=1), 0.0, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_dtype(dtype):
    x, gamma, beta, dout = (a.astype(dtype) for a in make_inputs((4, 6), seed=7))
    out, cache = layernorm_forward(x, gamma, beta, {})
    assert out.dtype == dtype
    assert all(g.dtype == dtype for g in layernorm_backward(dout, cache))


def test_float32_close_to_float64():
    x, gamma, beta, dout = make_inputs((16, 64), seed=8)
    out64, cache64 = layernorm_forward(x, gamma, beta, {})
    f32 = [a.astype(np.float32) for a in (x, gamma, beta, dout)]
    out32, cache32 = layernorm_forward(*f32[:3], {})
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-5)
    for g32, g64 in zip(layernorm_backward(f32[3], cache32), layernorm_backward(dout, cache64)):
        np.testing.assert_allclose(g32, g64, rtol=1e-3, atol=1e-4)


def test_does_not_modify_inputs_or_cache():
    x, gamma, beta, dout = make_inputs((5, 3), seed=9)
    copies = [a.copy() for a in (x, gamma, beta, dout)]
    _, cache = layernorm_forward(x, gamma, beta, {})
    first = layernorm_backward(dout, cache)
    second = layernorm_backward(dout, cache)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    for original, copy in zip((x, gamma, beta, dout), copies):
        np.testing.assert_array_equal(original, copy)
