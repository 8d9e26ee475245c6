"""Layer norm: the self-check's properties (cs231n.properties) over cases, and hand values."""
import numpy as np
import pytest

from cs231n import layers, properties
from cs231n.layers import layernorm_backward, layernorm_forward

SHAPES = {"N1_D2": (1, 2), "N1_D6": (1, 6), "N2_D3": (2, 3), "N4_D5": (4, 5), "N7_D12": (7, 12)}


@pytest.mark.parametrize("eps", [None, 1e-3, 1e-8, 1.0], ids=lambda e: f"eps_{e}")
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_backward_matches_numerical_gradient(shape, eps):
    properties.norm_gradients(layers, "layernorm_backward", *shape, np.random.default_rng(0), eps)


@pytest.mark.parametrize("eps", [1e-5, 1e-2, 1.0], ids=lambda e: f"eps_{e:g}")
def test_per_example_statistics_independent_of_batch_and_mode(eps):
    properties.layernorm_statistics(layernorm_forward, np.random.default_rng(1), eps)


def test_forward_hand_values():
    # x = [[1, 3], [2, 6]], per example: mean [2, 4], biased var [1, 4] (divide by D = 2).
    # eps = 6.5625: sqrt(var + eps) = [2.75, 3.25], x_hat = [[-4/11, 4/11], [-8/13, 8/13]];
    # gamma = [2, -1], beta = [0.5, 3] per feature.
    out, cache = layernorm_forward(np.array([[1.0, 3.0], [2.0, 6.0]]), np.array([2.0, -1.0]),
                                   np.array([0.5, 3.0]), {"eps": 6.5625})
    expected = np.array([[0.5 - 8 / 11, 3 - 4 / 11], [0.5 - 16 / 13, 3 - 8 / 13]])
    np.testing.assert_allclose(out, expected, rtol=1e-14)
    np.testing.assert_allclose(cache["x_hat"], [[-4 / 11, 4 / 11], [-8 / 13, 8 / 13]], rtol=1e-15)
    np.testing.assert_allclose(cache["inv_std"], [[4 / 11], [4 / 13]], rtol=1e-15)
    # One example, x = [0, 0, 3]: mean 1, biased var 2 (unbiased: 3), eps = 2: x_hat =
    # [-0.5, -0.5, 1].
    out, _ = layernorm_forward(np.array([[0.0, 0.0, 3.0]]), np.ones(3), np.zeros(3), {"eps": 2.0})
    np.testing.assert_allclose(out, [[-0.5, -0.5, 1.0]], rtol=1e-15)


def test_each_example_backward_is_independent_of_the_batch():
    x, gamma, beta = properties.norm_data(np.random.default_rng(3), 7, 9, axis=1)
    dout = np.random.default_rng(4).standard_normal((7, 9))
    _, cache_batch = layernorm_forward(x, gamma, beta, {})
    _, cache_alone = layernorm_forward(x[3:4].copy(), gamma, beta, {})
    np.testing.assert_allclose(layernorm_backward(dout[3:4].copy(), cache_alone)[0][0],
                               layernorm_backward(dout, cache_batch)[0][3], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_dtype_and_no_state(dtype):
    x, gamma, beta = (a.astype(dtype) for a in properties.norm_data(np.random.default_rng(7), 4, 6))
    ln_param = {"mode": "train", "eps": 1e-5}
    out, cache = layernorm_forward(x, gamma, beta, ln_param)
    assert out.dtype == dtype and ln_param == {"mode": "train", "eps": 1e-5}
    assert all(g.dtype == dtype for g in layernorm_backward(np.ones_like(x), cache))
