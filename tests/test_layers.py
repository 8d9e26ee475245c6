"""Affine, ReLU, softmax and the layer_utils sandwiches: gradients and forward values.

Gradients are checked against centred differences in float64 with a random upstream
gradient; a correct float64 backward reaches a relative error of about 1e-9 here, so
GRAD_RTOL = 1e-7 leaves room for rounding but not for a wrong term.
"""
import numpy as np
import pytest

from cs231n.gradient_check import (
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    rel_error,
)
from cs231n.layer_utils import (
    affine_norm_relu_backward,
    affine_norm_relu_forward,
    affine_relu_backward,
    affine_relu_forward,
)
from cs231n.layers import (
    affine_backward,
    affine_forward,
    relu_backward,
    relu_forward,
    softmax_loss,
)

GRAD_RTOL = 1e-7


def away_from_kinks(rng, shape, margin=1e-2):
    """Standard normal values with none closer than margin to 0 (ReLU's kink).

    A centred difference straddling the kink measures a slope between 0 and 1, which
    would make a ReLU gradient check fail for the wrong reason.
    """
    x = rng.standard_normal(shape)
    x[np.abs(x) < margin] += 2 * margin
    return x


# ---------------------------------------------------------------------------
# affine
# ---------------------------------------------------------------------------

AFFINE_SHAPES = {
    "N2_D1_M1": ((2, 1), 1),
    "N4_D6_M5": ((4, 6), 5),
    "N3_image_2x3x4_M7": ((3, 2, 3, 4), 7),
    "N1_D5_M3": ((1, 5), 3),
}


@pytest.mark.parametrize("x_shape, M", AFFINE_SHAPES.values(), ids=AFFINE_SHAPES.keys())
def test_affine_backward_matches_numerical_gradient(x_shape, M):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape)
    D = int(np.prod(x_shape[1:]))
    w = rng.standard_normal((D, M))
    b = rng.standard_normal(M)
    dout = rng.standard_normal((x_shape[0], M))

    _, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache)

    dx_num = eval_numerical_gradient_array(lambda v: affine_forward(v, w, b)[0], x, dout)
    dw_num = eval_numerical_gradient_array(lambda v: affine_forward(x, v, b)[0], w, dout)
    db_num = eval_numerical_gradient_array(lambda v: affine_forward(x, w, v)[0], b, dout)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    assert rel_error(dx, dx_num) < GRAD_RTOL
    assert rel_error(dw, dw_num) < GRAD_RTOL
    assert rel_error(db, db_num) < GRAD_RTOL


def test_affine_forward_equals_loop_over_examples():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 5))
    w = rng.standard_normal((10, 4))
    b = rng.standard_normal(4)
    out, _ = affine_forward(x, w, b)
    expected = np.array([[sum(x[i].ravel()[d] * w[d, m] for d in range(10)) + b[m]
                          for m in range(4)] for i in range(3)])
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_affine_keeps_dtype(dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3)).astype(dtype)
    w = rng.standard_normal((3, 2)).astype(dtype)
    b = rng.standard_normal(2).astype(dtype)
    out, cache = affine_forward(x, w, b)
    grads = affine_backward(rng.standard_normal((4, 2)).astype(dtype), cache)
    assert out.dtype == dtype
    assert all(g.dtype == dtype for g in grads)


# ---------------------------------------------------------------------------
# ReLU
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 1), (5, 7), (3, 2, 4)], ids=["N2_D1", "N5_D7", "3d"])
def test_relu_backward_matches_numerical_gradient(shape):
    rng = np.random.default_rng(3)
    x = away_from_kinks(rng, shape)
    dout = rng.standard_normal(shape)
    _, cache = relu_forward(x)
    dx = relu_backward(dout, cache)
    dx_num = eval_numerical_gradient_array(lambda v: relu_forward(v)[0], x, dout)
    assert rel_error(dx, dx_num) < GRAD_RTOL


def test_relu_forward_hand_values():
    x = np.array([[-2.0, -0.0, 0.0, 0.5, 3.0]])
    out, _ = relu_forward(x)
    np.testing.assert_array_equal(out, [[0.0, 0.0, 0.0, 0.5, 3.0]])
    dx = relu_backward(np.array([[1.0, 2.0, 3.0, 4.0, 5.0]]), x)
    # Subgradient 0 at x == 0.
    np.testing.assert_array_equal(dx, [[0.0, 0.0, 0.0, 4.0, 5.0]])


# ---------------------------------------------------------------------------
# softmax loss
# ---------------------------------------------------------------------------

SOFTMAX_SHAPES = {"N1_C2": (1, 2), "N2_C3": (2, 3), "N8_C10": (8, 10)}


@pytest.mark.parametrize("N, C", SOFTMAX_SHAPES.values(), ids=SOFTMAX_SHAPES.keys())
def test_softmax_loss_gradient_matches_numerical(N, C):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((N, C))
    y = rng.integers(0, C, size=N)
    _, dx = softmax_loss(x, y)
    dx_num = eval_numerical_gradient(lambda v: softmax_loss(v, y)[0], x, verbose=False)
    assert rel_error(dx, dx_num) < GRAD_RTOL


def test_softmax_loss_uniform_scores_give_log_C():
    # Equal scores: every class has probability 1/C, so loss = log C exactly.
    N, C = 5, 10
    loss, dx = softmax_loss(np.zeros((N, C)), np.arange(N))
    np.testing.assert_allclose(loss, np.log(C), rtol=1e-15)
    expected = np.full((N, C), 1.0 / C)
    expected[np.arange(N), np.arange(N)] -= 1.0
    np.testing.assert_allclose(dx, expected / N, rtol=1e-14, atol=1e-17)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_loss_stable_for_huge_scores(dtype):
    # exp(1000) overflows; the row-max shift must keep loss and gradient finite.
    x = np.array([[1000.0, 0.0, -1000.0], [1000.0, 1000.0, 0.0]], dtype=dtype)
    y = np.array([2, 0])
    loss, dx = softmax_loss(x, y)
    # Hand values: row 0 loses 2000, row 1 loses log 2 (two equal top classes).
    np.testing.assert_allclose(loss, (2000.0 + np.log(2.0)) / 2, rtol=1e-6)
    expected = np.array([[1.0, 0.0, -1.0], [-0.5, 0.5, 0.0]]) / 2
    np.testing.assert_allclose(dx, expected, rtol=1e-6, atol=1e-7)
    assert dx.dtype == dtype


def test_softmax_loss_perfect_score_is_positive_zero():
    loss, _ = softmax_loss(np.array([[1000.0, 0.0]]), np.array([0]))
    assert loss == 0.0 and np.copysign(1.0, loss) == 1.0


# ---------------------------------------------------------------------------
# layer_utils sandwiches
# ---------------------------------------------------------------------------


def test_affine_relu_backward_matches_numerical_gradient():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 2, 3))
    w = rng.standard_normal((6, 5))
    b = rng.standard_normal(5)
    dout = rng.standard_normal((4, 5))
    out, cache = affine_relu_forward(x, w, b)
    # The check is only valid away from ReLU's kink.
    assert np.min(np.abs(affine_forward(x, w, b)[0])) > 1e-3
    dx, dw, db = affine_relu_backward(dout, cache)
    f = lambda xv, wv, bv: affine_relu_forward(xv, wv, bv)[0]
    assert rel_error(dx, eval_numerical_gradient_array(lambda v: f(v, w, b), x, dout)) < GRAD_RTOL
    assert rel_error(dw, eval_numerical_gradient_array(lambda v: f(x, v, b), w, dout)) < GRAD_RTOL
    assert rel_error(db, eval_numerical_gradient_array(lambda v: f(x, w, v), b, dout)) < GRAD_RTOL


@pytest.mark.parametrize("normalization", [None, "batchnorm", "layernorm"])
def test_affine_norm_relu_backward_matches_numerical_gradient(normalization):
    rng = np.random.default_rng(6)
    N, D, M = 4, 6, 5
    x = rng.standard_normal((N, D))
    w = rng.standard_normal((D, M))
    b = rng.standard_normal(M)
    gamma = rng.standard_normal(M)
    beta = rng.standard_normal(M)
    dout = rng.standard_normal((N, M))

    def f(xv, wv, bv, gv, betav):
        return affine_norm_relu_forward(xv, wv, bv, gv, betav, {"mode": "train"}, normalization)[0]

    out, cache = affine_norm_relu_forward(x, w, b, gamma, beta, {"mode": "train"}, normalization)
    # Every ReLU input away from the kink (those at exactly 0 are the clipped ones).
    pre_relu = cache[2]
    assert np.min(np.abs(pre_relu)) > 1e-3
    dx, dw, db, dgamma, dbeta = affine_norm_relu_backward(dout, cache)
    params = [x, w, b, gamma, beta]
    grads = [dx, dw, db, dgamma, dbeta]
    checked = 5 if normalization else 3
    for k in range(checked):
        def fk(v, k=k):
            args = list(params)
            args[k] = v
            return f(*args)

        num = eval_numerical_gradient_array(fk, params[k], dout)
        if k == 2 and normalization == "batchnorm":
            # Batch norm subtracts the batch mean, so b cancels: db is exactly 0 in
            # theory and a relative error of two rounding residues means nothing.
            np.testing.assert_allclose(grads[k], 0.0, atol=1e-12)
            np.testing.assert_allclose(num, 0.0, atol=1e-8)
        else:
            assert rel_error(grads[k], num) < GRAD_RTOL, f"gradient {k}"
    if normalization is None:
        assert dgamma is None and dbeta is None


def test_affine_norm_relu_batchnorm_updates_running_stats_and_test_mode_uses_them():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((8, 4))
    w = rng.standard_normal((4, 3))
    b = rng.standard_normal(3)
    gamma, beta = rng.uniform(0.5, 2.0, 3), rng.standard_normal(3)
    bn_param = {"mode": "train", "momentum": 0.0}  # momentum 0: running = this batch's stats
    affine_norm_relu_forward(x, w, b, gamma, beta, bn_param, "batchnorm")
    a = x @ w + b
    np.testing.assert_allclose(bn_param["running_mean"], a.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn_param["running_var"], a.var(axis=0), rtol=1e-12)

    # With momentum 0 the running statistics are this batch's, so test mode must give
    # the training-mode output, for the whole batch and for one example on its own.
    train_out, _ = affine_norm_relu_forward(x, w, b, gamma, beta, {"mode": "train"},
                                            "batchnorm")
    bn_param["mode"] = "test"
    out, _ = affine_norm_relu_forward(x, w, b, gamma, beta, bn_param, "batchnorm")
    np.testing.assert_allclose(out, train_out, rtol=1e-12, atol=1e-14)
    out_one, _ = affine_norm_relu_forward(x[:1], w, b, gamma, beta, bn_param, "batchnorm")
    np.testing.assert_allclose(out_one, train_out[:1], rtol=1e-12, atol=1e-14)


def test_affine_norm_relu_without_normalization_is_affine_relu():
    rng = np.random.default_rng(8)
    x, w, b = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    dout = rng.standard_normal((5, 3))
    out, cache = affine_norm_relu_forward(x, w, b, None, None, None, None)
    ref_out, ref_cache = affine_relu_forward(x, w, b)
    np.testing.assert_array_equal(out, ref_out)
    *grads, dgamma, dbeta = affine_norm_relu_backward(dout, cache)
    for g, ref in zip(grads, affine_relu_backward(dout, ref_cache)):
        np.testing.assert_array_equal(g, ref)
    assert dgamma is None and dbeta is None
