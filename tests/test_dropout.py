"""Inverted dropout: statistics of the mask, the 1/p scaling, seeds, dtypes, gradients.

p is the KEEP probability. Statistical checks use a seeded generator and a tolerance of
Z = 5 standard deviations of the binomial count, so they are deterministic and a correct
implementation passes for any seed with probability > 1 - 1e-6.
"""
import numpy as np
import pytest

from cs231n.gradient_check import eval_numerical_gradient_array
from cs231n.layers import dropout_backward, dropout_forward

Z = 5.0
KEEP_PROBABILITIES = [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999]


def nonzero_x(shape, seed=0):
    """Values with |x| >= 0.1, so out == 0 means exactly 'dropped'."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.1, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


@pytest.mark.parametrize("p", KEEP_PROBABILITIES, ids=lambda p: f"p_{p}")
def test_kept_fraction_is_p(p):
    x = nonzero_x((400, 500))
    out, _ = dropout_forward(x, {"mode": "train", "p": p, "seed": 1})
    n = x.size
    kept = np.count_nonzero(out)
    assert abs(kept - n * p) <= Z * np.sqrt(n * p * (1 - p))


@pytest.mark.parametrize("p", KEEP_PROBABILITIES, ids=lambda p: f"p_{p}")
def test_mean_is_preserved(p):
    # x = c everywhere: mean(out) = c * kept / (n p), whose std is c * sqrt((1 - p) / (n p)).
    c, n = 3.0, 200_000
    out, _ = dropout_forward(np.full(n, c), {"mode": "train", "p": p, "seed": 2})
    assert abs(out.mean() - c) <= Z * c * np.sqrt((1 - p) / (n * p))


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9], ids=lambda p: f"p_{p}")
def test_kept_units_are_scaled_by_one_over_p(p):
    x = nonzero_x((50, 40), seed=3)
    out, _ = dropout_forward(x, {"mode": "train", "p": p, "seed": 4})
    kept = out != 0
    assert kept.any() and not kept.all()
    np.testing.assert_allclose(out[kept], x[kept] / p, rtol=1e-15)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9], ids=lambda p: f"p_{p}")
def test_backward_is_dout_where_kept_over_p(p):
    rng = np.random.default_rng(5)
    x = nonzero_x((30, 20), seed=5)
    dout = rng.standard_normal(x.shape)
    out, cache = dropout_forward(x, {"mode": "train", "p": p, "seed": 6})
    dx = dropout_backward(dout, cache)
    # A dropped unit (out == 0, as x != 0) gets no gradient; a kept one, out = x / p.
    np.testing.assert_array_equal(dx[out == 0], 0.0)
    np.testing.assert_allclose(dx[out != 0], dout[out != 0] / p, rtol=1e-15, atol=0)


@pytest.mark.parametrize("p", [0.3, 0.8, 1.0], ids=lambda p: f"p_{p}")
def test_backward_matches_numerical_gradient(p):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 5))
    dout = rng.standard_normal((6, 5))
    param = {"mode": "train", "p": p, "seed": 8}
    _, cache = dropout_forward(x, param)
    dx = dropout_backward(dout, cache)
    dx_num = eval_numerical_gradient_array(lambda v: dropout_forward(v, param)[0], x, dout)
    np.testing.assert_allclose(dx, dx_num, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("shape", [(4, 5), (3, 2, 7), (11,)], ids=["2d", "3d", "1d"])
def test_test_mode_is_identity(shape):
    x = nonzero_x(shape, seed=9)
    dout = nonzero_x(shape, seed=10)
    out, cache = dropout_forward(x, {"mode": "test", "p": 0.3})
    np.testing.assert_array_equal(out, x)
    assert cache["mask"] is None
    np.testing.assert_array_equal(dropout_backward(dout, cache), dout)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keep_probability_one_is_identity(dtype):
    x = nonzero_x((20, 30), seed=11).astype(dtype)
    out, cache = dropout_forward(x, {"mode": "train", "p": 1.0})
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(dropout_backward(np.ones_like(x), cache), np.ones_like(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["train", "test"])
def test_keeps_dtype(dtype, mode):
    x = nonzero_x((8, 9), seed=12).astype(dtype)
    out, cache = dropout_forward(x, {"mode": mode, "p": 0.6, "seed": 0})
    assert out.dtype == dtype
    if mode == "train":
        assert cache["mask"].dtype == dtype
    assert dropout_backward(x.copy(), cache).dtype == dtype


def test_same_seed_gives_same_mask_and_different_seeds_differ():
    x = nonzero_x((40, 50), seed=13)
    first, _ = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 123})
    again, _ = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 123})
    other, _ = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 124})
    np.testing.assert_array_equal(first, again)
    assert np.count_nonzero((first != 0) != (other != 0)) > 0.3 * x.size


def test_same_seed_keeps_the_same_units_for_float32_and_float64():
    x = nonzero_x((30, 30), seed=14)
    out64, _ = dropout_forward(x, {"mode": "train", "p": 0.4, "seed": 5})
    out32, _ = dropout_forward(x.astype(np.float32), {"mode": "train", "p": 0.4, "seed": 5})
    np.testing.assert_array_equal(out32 != 0, out64 != 0)


def test_seed_leaves_global_random_state_untouched():
    np.random.seed(0)
    expected = np.random.random_sample(3)
    np.random.seed(0)
    dropout_forward(np.ones((10, 10)), {"mode": "train", "p": 0.5, "seed": 7})
    np.testing.assert_array_equal(np.random.random_sample(3), expected)


def test_without_seed_reproducible_under_np_random_seed():
    x = nonzero_x((30, 40), seed=15)
    np.random.seed(231)
    first, _ = dropout_forward(x, {"mode": "train", "p": 0.5})
    second, _ = dropout_forward(x, {"mode": "train", "p": 0.5})
    np.random.seed(231)
    replay, _ = dropout_forward(x, {"mode": "train", "p": 0.5})
    np.testing.assert_array_equal(first, replay)
    # Consecutive unseeded calls draw new masks.
    assert np.count_nonzero((first != 0) != (second != 0)) > 0.3 * x.size


def test_forward_does_not_modify_x_or_dropout_param():
    x = nonzero_x((5, 6), seed=16)
    x_copy = x.copy()
    param = {"mode": "train", "p": 0.5}
    dropout_forward(x, param)
    np.testing.assert_array_equal(x, x_copy)
    assert param == {"mode": "train", "p": 0.5}
