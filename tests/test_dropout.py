"""Dropout (p = KEEP probability): the self-check's properties over p; seeds, dtypes, modes.
The factor of the kept units is never written here: finding it is part of the exercise."""
import numpy as np
import pytest

from cs231n import properties
from cs231n.layers import dropout_backward, dropout_forward

KEEP_PROBABILITIES = [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999, 1.0]


@pytest.mark.parametrize("p", KEEP_PROBABILITIES, ids=lambda p: f"p_{p}")
def test_train_and_test_mode(p):
    properties.dropout_modes(dropout_forward, dropout_backward, np.random.default_rng(1), p)


@pytest.mark.parametrize("p", [0.3, 0.8, 1.0], ids=lambda p: f"p_{p}")
def test_backward_matches_numerical_gradient(p):
    properties.layer_gradients(lambda x: dropout_forward(x, {"mode": "train", "p": p, "seed": 8}),
                               dropout_backward, [np.random.default_rng(7).standard_normal((6, 5))],
                               ["dx"], np.random.default_rng(8))


@pytest.mark.parametrize("shape", [(4, 5), (3, 2, 7), (11,)], ids=["2d", "3d", "1d"])
def test_test_mode_is_identity(shape):
    x = np.random.default_rng(9).standard_normal(shape)
    out, cache = dropout_forward(x, {"mode": "test", "p": 0.3})
    np.testing.assert_array_equal(out, x)
    assert cache["mask"] is None and cache["shape"] == shape
    np.testing.assert_array_equal(dropout_backward(2 * x, cache), 2 * x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_seed_keeps_the_units_whose_uniform_is_below_p_for_any_dtype(dtype):
    # The documented draw: one float64 uniform per unit from default_rng(seed), kept where
    # it is below p. (The notebooks' printed numbers depend on it.)
    x = np.random.default_rng(22).uniform(1, 2, (30, 40)).astype(dtype)
    out, cache = dropout_forward(x, {"mode": "train", "p": 0.35, "seed": 23})
    np.testing.assert_array_equal(out != 0, np.random.default_rng(23).random(x.shape) < 0.35)
    assert out.dtype == cache["mask"].dtype == dropout_backward(x, cache).dtype == dtype


def test_seed_leaves_global_state_and_no_seed_follows_np_random_seed():
    x = np.ones((30, 40))
    np.random.seed(231)
    expected = np.random.random_sample(3)
    np.random.seed(231)
    dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 7})
    np.testing.assert_array_equal(np.random.random_sample(3), expected)
    np.random.seed(231)
    first, second = (dropout_forward(x, {"mode": "train", "p": 0.5})[0] for _ in range(2))
    np.random.seed(231)
    np.testing.assert_array_equal(dropout_forward(x, {"mode": "train", "p": 0.5})[0], first)
    assert np.count_nonzero(first != second) > 0.3 * x.size  # new masks, call after call


@pytest.mark.parametrize("mode", ["train", "test"])
def test_forward_modifies_neither_x_nor_dropout_param(mode):
    x, param = np.ones((5, 6)), {"mode": mode, "p": 0.5}
    dropout_forward(x, param)
    np.testing.assert_array_equal(x, np.ones((5, 6)))
    assert param == {"mode": mode, "p": 0.5}
