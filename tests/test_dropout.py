"""Dropout, checked by its behaviour: the mask's statistics, the mean of the output,
test mode, seeds, dtypes, gradients.

p is the KEEP probability. These tests never write down the factor the kept units are
multiplied by (finding it is part of the exercise, Dropout.ipynb "Dropout: forward pass");
they check what it must achieve. Statistical checks use a seeded generator and a
tolerance of Z = 5 standard deviations of the binomial count, so they are deterministic
and a correct implementation passes for any seed with probability > 1 - 1e-6.
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
def test_train_mean_is_close_to_the_input_mean(p):
    # x = c everywhere. The number of kept units is binomial, relative standard deviation
    # sqrt((1 - p) / (n p)); the mean of out must match c within Z of them.
    c, n = 3.0, 200_000
    out, _ = dropout_forward(np.full(n, c), {"mode": "train", "p": p, "seed": 2})
    assert abs(out.mean() - c) <= Z * c * np.sqrt((1 - p) / (n * p))


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9], ids=lambda p: f"p_{p}")
def test_train_and_test_mode_agree_on_average(p):
    # Over many units the training output has the test output's mean (test mode: x).
    rng = np.random.default_rng(17)
    x = rng.uniform(0.5, 1.5, (500, 400))
    train, _ = dropout_forward(x, {"mode": "train", "p": p, "seed": 18})
    test, _ = dropout_forward(x, {"mode": "test", "p": p})
    spread = np.sqrt(p * (1 - p) * np.sum(x**2)) / (p * np.sum(x))  # relative, binomial mask
    assert abs(train.mean() / test.mean() - 1) <= Z * spread


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9], ids=lambda p: f"p_{p}")
def test_dropped_units_are_exactly_zero_and_kept_ones_share_one_factor(p):
    x = nonzero_x((50, 40), seed=3)
    out, cache = dropout_forward(x, {"mode": "train", "p": p, "seed": 4})
    kept = out != 0
    assert kept.any() and not kept.all()
    np.testing.assert_array_equal(out[~kept], 0.0)
    np.testing.assert_array_equal(cache["mask"][~kept], 0.0)
    factors = out[kept] / x[kept]
    np.testing.assert_allclose(factors, factors[0], rtol=1e-15, atol=0)
    # The factor depends on p only: another seed and another shape give the same one.
    other, _ = dropout_forward(np.full(300, 2.0), {"mode": "train", "p": p, "seed": 5})
    np.testing.assert_allclose(other[other != 0] / 2.0, factors[0], rtol=1e-15, atol=0)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9], ids=lambda p: f"p_{p}")
def test_cache_mask_gives_the_output(p):
    # The cache's contract (dropout_forward's docstring): out = x * mask elementwise.
    x = nonzero_x((30, 20), seed=19)
    out, cache = dropout_forward(x, {"mode": "train", "p": p, "seed": 20})
    assert {"mask", "shape"} <= set(cache) and cache["shape"] == x.shape
    assert cache["mask"].shape == x.shape
    np.testing.assert_allclose(x * cache["mask"], out, rtol=1e-15, atol=0)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9], ids=lambda p: f"p_{p}")
def test_backward_follows_the_forward_pass(p):
    rng = np.random.default_rng(5)
    x = nonzero_x((30, 20), seed=5)
    dout = rng.standard_normal(x.shape)
    out, cache = dropout_forward(x, {"mode": "train", "p": p, "seed": 6})
    dx = dropout_backward(dout, cache)
    # A dropped unit (out == 0, as x != 0) gets no gradient; a kept one is scaled from
    # dout exactly as out is from x.
    np.testing.assert_array_equal(dx[out == 0], 0.0)
    np.testing.assert_allclose(dx * x, dout * out, rtol=1e-15, atol=0)


def test_backward_reads_the_mask_from_the_cache():
    # dropout_backward works from any cache that keeps the contract, not only from the
    # mask of its own forward pass.
    rng = np.random.default_rng(21)
    dout = rng.standard_normal((4, 6))
    mask = rng.choice([0.0, 2.5], size=(4, 6))
    dx = dropout_backward(dout, {"mask": mask, "shape": (4, 6)})
    np.testing.assert_allclose(dx, dout * mask, rtol=1e-15, atol=0)


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


def test_seed_keeps_the_units_whose_uniform_is_below_p():
    # The documented draw: one float64 uniform per unit from default_rng(seed), kept where
    # it is below p. (The notebooks' printed numbers depend on it.)
    x = nonzero_x((30, 40), seed=22)
    out, _ = dropout_forward(x, {"mode": "train", "p": 0.35, "seed": 23})
    expected_kept = np.random.default_rng(23).random(x.shape) < 0.35
    np.testing.assert_array_equal(out != 0, expected_kept)


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


@pytest.mark.parametrize("mode", ["train", "test"])
def test_forward_does_not_modify_x_or_dropout_param(mode):
    x = nonzero_x((5, 6), seed=16)
    x_copy = x.copy()
    param = {"mode": mode, "p": 0.5}
    dropout_forward(x, param)
    np.testing.assert_array_equal(x, x_copy)
    assert param == {"mode": mode, "p": 0.5}
