"""Properties that must hold for every input, checked with hypothesis on small arrays.

Tolerances are derived from float64 rounding: an error of a few ulps of the largest
intermediate, amplified at most by inv_std <= 1 / sqrt(eps). Inputs are bounded (|x| <= 100)
so those bounds are small; they are stated next to each check.
"""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cs231n.layers import (
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    dropout_backward,
    dropout_forward,
    layernorm_backward,
    layernorm_forward,
    relu_backward,
    relu_forward,
    softmax_loss,
)

SETTINGS = settings(max_examples=40, deadline=None)
ULP = np.finfo(np.float64).eps

values = st.floats(-100, 100, allow_nan=False, allow_infinity=False)
unit_values = st.floats(-3, 3, allow_nan=False, allow_infinity=False)
eps_values = st.sampled_from([1e-5, 1e-3, 0.1, 1.0])


@st.composite
def norm_inputs(draw, min_n=2):
    """(x, gamma, beta, dout, eps): x (N, D) with N in [min_n, 8], D in [1, 6]."""
    N = draw(st.integers(min_n, 8))
    D = draw(st.integers(1, 6))
    x = draw(arrays(np.float64, (N, D), elements=values))
    gamma = draw(arrays(np.float64, (D,), elements=unit_values))
    beta = draw(arrays(np.float64, (D,), elements=unit_values))
    dout = draw(arrays(np.float64, (N, D), elements=unit_values))
    return x, gamma, beta, dout, draw(eps_values)


@SETTINGS
@given(norm_inputs())
def test_batchnorm_preserves_shapes(inputs):
    x, gamma, beta, dout, eps = inputs
    out, cache = batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": eps})
    assert out.shape == x.shape
    for backward in (batchnorm_backward, batchnorm_backward_alt):
        dx, dgamma, dbeta = backward(dout, cache)
        assert (dx.shape, dgamma.shape, dbeta.shape) == (x.shape, gamma.shape, beta.shape)


@SETTINGS
@given(norm_inputs(), arrays(np.float64, st.just(6), elements=values))
def test_batchnorm_invariant_to_per_feature_shift(inputs, shift):
    x, gamma, beta, _, eps = inputs
    shift = shift[: x.shape[1]]
    out, _ = batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": eps})
    shifted, _ = batchnorm_forward(x + shift, gamma, beta, {"mode": "train", "eps": eps})
    # Centring x + shift loses ~ulp * 200 absolutely, times inv_std <= 1 / sqrt(eps), |gamma| <= 3.
    atol = 64 * ULP * 200 * 3 / np.sqrt(eps)
    np.testing.assert_allclose(shifted, out, rtol=0, atol=atol)


@SETTINGS
@given(norm_inputs(), st.floats(0.1, 10))
def test_batchnorm_scale_invariant_when_eps_scales_too(inputs, a):
    # (a x - a mu) / sqrt(a^2 var + a^2 eps) = (x - mu) / sqrt(var + eps): exact in math.
    x, gamma, beta, _, eps = inputs
    out, _ = batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": eps})
    scaled, _ = batchnorm_forward(a * x, gamma, beta, {"mode": "train", "eps": a * a * eps})
    atol = 64 * ULP * 200 * 3 / np.sqrt(eps)
    np.testing.assert_allclose(scaled, out, rtol=0, atol=atol)


@SETTINGS
@given(norm_inputs())
def test_batchnorm_backwards_agree_and_dx_columns_sum_to_zero(inputs):
    x, gamma, beta, dout, eps = inputs
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": eps})
    staged = batchnorm_backward(dout, cache)
    alt = batchnorm_backward_alt(dout, cache)
    N = x.shape[0]
    # Scale of dx here: at most about |gamma| * |dout| / sqrt(eps) <= 9 / sqrt(eps) (both <= 3);
    # a few ulps per operation, N terms.
    scale = 9 / np.sqrt(eps)
    for s, a in zip(staged, alt):
        np.testing.assert_allclose(a, s, rtol=1e-10, atol=64 * N * ULP * scale)
    # out is invariant to a per-feature shift of x, so every column of dx sums to zero.
    np.testing.assert_allclose(alt[0].sum(axis=0), 0.0, atol=64 * N * ULP * scale)


@SETTINGS
@given(norm_inputs(min_n=1))
def test_layernorm_rows_are_normalized(inputs):
    x, _, _, _, eps = inputs
    D = x.shape[1]
    out, _ = layernorm_forward(x, np.ones(D), np.zeros(D), {"eps": eps})
    var = x.var(axis=1)
    atol = 64 * D * ULP * 200 / np.sqrt(eps)
    np.testing.assert_allclose(out.mean(axis=1), 0.0, atol=atol)
    np.testing.assert_allclose(out.var(axis=1), var / (var + eps), rtol=1e-10, atol=atol)


@SETTINGS
@given(norm_inputs(min_n=1), arrays(np.float64, st.just((8, 1)), elements=values))
def test_layernorm_invariant_to_per_example_shift(inputs, shift):
    x, gamma, beta, _, eps = inputs
    shift = shift[: x.shape[0]]
    out, _ = layernorm_forward(x, gamma, beta, {"eps": eps})
    shifted, _ = layernorm_forward(x + shift, gamma, beta, {"eps": eps})
    np.testing.assert_allclose(shifted, out, rtol=0, atol=64 * ULP * 200 * 3 / np.sqrt(eps))


@SETTINGS
@given(norm_inputs(min_n=1))
def test_layernorm_preserves_shapes_and_dx_rows_sum_to_zero(inputs):
    x, gamma, beta, dout, eps = inputs
    out, cache = layernorm_forward(x, gamma, beta, {"eps": eps})
    dx, dgamma, dbeta = layernorm_backward(dout, cache)
    assert out.shape == dx.shape == x.shape
    assert dgamma.shape == dbeta.shape == gamma.shape
    D = x.shape[1]
    np.testing.assert_allclose(dx.sum(axis=1), 0.0, atol=64 * D * ULP * 9 / np.sqrt(eps))


@SETTINGS
@given(
    arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6)), elements=values),
    st.floats(0.01, 1.0),
    st.integers(0, 2**32 - 1),
)
def test_dropout_output_is_zero_or_x_times_one_factor(x, p, seed):
    out, cache = dropout_forward(x, {"mode": "train", "p": p, "seed": seed})
    assert out.shape == x.shape
    mask = cache["mask"]
    kept = mask != 0
    np.testing.assert_array_equal(out[~kept], 0.0)
    # Every kept unit gets the same factor, and out = x * mask (the cache's contract).
    np.testing.assert_array_equal(mask[kept], mask[kept][:1].repeat(kept.sum()))
    np.testing.assert_allclose(out, x * mask, rtol=4 * ULP, atol=0)
    # With dout = 1, dx is d(sum out)/dx: 0 where dropped, the kept units' factor where kept.
    dx = dropout_backward(np.ones_like(x), cache)
    np.testing.assert_array_equal(dx[~kept], 0.0)
    np.testing.assert_allclose(dx, mask, rtol=4 * ULP, atol=0)


@SETTINGS
@given(arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 5)), elements=values))
def test_relu_output_nonnegative_and_gradient_mask(x):
    out, cache = relu_forward(x)
    assert out.shape == x.shape and np.all(out >= 0)
    np.testing.assert_array_equal(out, np.where(x > 0, x, 0.0))
    np.testing.assert_array_equal(relu_backward(np.ones_like(x), cache), (x > 0).astype(float))


@st.composite
def scores_and_labels(draw):
    N = draw(st.integers(1, 6))
    C = draw(st.integers(2, 6))
    x = draw(arrays(np.float64, (N, C), elements=st.floats(-1e4, 1e4)))
    y = draw(arrays(np.int64, (N,), elements=st.integers(0, C - 1)))
    return x, y


@SETTINGS
@given(scores_and_labels(), st.floats(-1e4, 1e4))
def test_softmax_loss_finite_nonnegative_and_shift_invariant(data, c):
    x, y = data
    loss, dx = softmax_loss(x, y)
    assert np.isfinite(loss) and loss >= 0
    assert np.all(np.isfinite(dx))
    # Each row of dx is (probabilities - one_hot) / N: sums to zero.
    np.testing.assert_allclose(dx.sum(axis=1), 0.0, atol=8 * x.shape[1] * ULP)
    shifted_loss, shifted_dx = softmax_loss(x + c, y)
    # Adding c loses ~ulp * (|x| + |c|) <= ulp * 2e4 per score.
    np.testing.assert_allclose(shifted_loss, loss, rtol=1e-12, atol=16 * ULP * 2e4)
    np.testing.assert_allclose(shifted_dx, dx, rtol=0, atol=16 * ULP * 2e4)
