"""FullyConnectedNet: the self-check's properties over cases; initialisation, state, dtypes."""
import numpy as np
import pytest

from cs231n import properties
from cs231n.classifiers.fc_net import FullyConnectedNet

NORMALIZATIONS = [None, "batchnorm", "layernorm"]


@pytest.mark.parametrize("reg", [0.0, 3.14], ids=lambda r: f"reg={r}")  # with the L2 term
@pytest.mark.parametrize("keep", [1, 0.75, 0.5], ids=lambda p: f"keep={p}")
@pytest.mark.parametrize("normalization", NORMALIZATIONS, ids=str)
def test_network_gradients(normalization, keep, reg):
    # N = 5: batch norm over 2 examples is degenerate (x_hat = +-1, gradients of order eps).
    properties.network_gradients(FullyConnectedNet, normalization, keep,
                                 np.random.default_rng(0), reg, dims=(5, 6, (7, 5), 4))


def test_empty_hidden_dims_is_softmax_classifier():
    properties.network_gradients(FullyConnectedNet, "batchnorm", 1, np.random.default_rng(2),
                                 dims=(4, 5, (), 3))


@pytest.mark.parametrize("normalization", NORMALIZATIONS, ids=str)
def test_parameters_initialised(normalization):
    hidden, D, C, scale = [100, 50], 3 * 32 * 32, 10, 3e-2
    model = FullyConnectedNet(hidden, normalization=normalization, weight_scale=scale, seed=0)
    dims = [D, *hidden, C]
    expected = {f"{k}{i}": (dims[i - 1], dims[i]) if k == "W" else (dims[i],)
                for i in (1, 2, 3) for k in "Wb"}
    if normalization is not None:  # hidden layers only: never the scores layer
        expected.update({f"{k}{i}": (dims[i],) for i in (1, 2) for k in ("gamma", "beta")})
    assert {k: v.shape for k, v in model.params.items()} == expected
    assert all(v.dtype == np.float32 for v in model.params.values())
    for k, v in model.params.items():
        if k[0] != "W":  # b and beta 0, gamma 1
            np.testing.assert_array_equal(v, 1 if k.startswith("gamma") else 0, err_msg=k)
    W1 = model.params["W1"].astype(np.float64)  # 307,200 draws of N(0, scale^2)
    assert abs(W1.mean()) < 5 * scale / np.sqrt(W1.size)
    np.testing.assert_allclose(W1.std(), scale, rtol=1e-2)
    assert (model.num_layers, model.normalization, model.dtype) == (3, normalization, np.float32)
    # One bn_param dict per hidden layer, never shared: each holds its own running statistics.
    n_dicts = 2 if normalization else 0
    assert len({id(p) for p in model.bn_params}) == len(model.bn_params) == n_dicts


@pytest.mark.parametrize("keep, seed, expected", [
    (1, None, {}), (1, 7, {}), (0.5, None, {"mode": "train", "p": 0.5}),
    (0.25, 7, {"mode": "train", "p": 0.25, "seed": 7})])
def test_dropout_param(keep, seed, expected):
    model = FullyConnectedNet([8], input_dim=4, dropout_keep_ratio=keep, seed=seed)
    assert (model.use_dropout, model.dropout_param) == (keep != 1, expected)


def test_seed_reproducible_and_no_seed_draws_from_np_random():
    state = np.random.get_state()[1].copy()
    a, b, c = (FullyConnectedNet([16, 8], input_dim=12, seed=s) for s in (5, 5, 6))
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert not np.array_equal(a.params["W1"], c.params["W1"])
    np.random.seed(231)  # CS231N notebooks make networks reproducible with np.random.seed
    a = FullyConnectedNet([16, 8], input_dim=12)
    np.random.seed(231)
    b = FullyConnectedNet([16, 8], input_dim=12)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)


@pytest.mark.parametrize("normalization", NORMALIZATIONS, ids=str)
def test_test_mode_scores(normalization):
    """y=None: dropout off (the scores of the same network without dropout), running
    statistics read, not written; one example's scores do not depend on the batch."""
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((6, 7)), rng.integers(4, size=6)
    kwargs = dict(input_dim=7, num_classes=4, normalization=normalization, dtype=np.float64, seed=9)
    model = FullyConnectedNet([9, 5], dropout_keep_ratio=0.5, **kwargs)
    plain = FullyConnectedNet([9, 5], **kwargs)
    model.loss(X, y)  # a training pass: running statistics now exist for batch norm
    for p, q in zip(plain.bn_params, model.bn_params):
        p.update({k: v.copy() for k, v in q.items() if k.startswith("running")})
    before = [dict(p) for p in model.bn_params]
    scores = model.loss(X)
    assert model.dropout_param["mode"] == "test"
    assert all(p[k] is q[k] for p, q in zip(model.bn_params, before) for k in q
               if k.startswith("running"))
    np.testing.assert_allclose(scores, plain.loss(X), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(model.loss(X[:1]), scores[:1], rtol=1e-12, atol=1e-15)


def test_batchnorm_running_stats_persist_per_layer():
    """Layer 1's running mean after two training calls is the moving average of the batch
    means of X @ W1 + b1, by hand; layer 2 keeps its own."""
    rng = np.random.default_rng(6)
    X1, X2 = rng.standard_normal((5, 7)), rng.standard_normal((5, 7)) + 2
    y = rng.integers(3, size=5)
    model = FullyConnectedNet([6, 6], input_dim=7, num_classes=3, normalization="batchnorm",
                              dtype=np.float64, seed=4)
    model.bn_params[0]["momentum"] = 0.6
    model.loss(X1, y)
    model.loss(X2, y)
    W1, b1 = model.params["W1"], model.params["b1"]
    expected = 0.6 * 0.4 * (X1 @ W1 + b1).mean(axis=0) + 0.4 * (X2 @ W1 + b1).mean(axis=0)
    np.testing.assert_allclose(model.bn_params[0]["running_mean"], expected, rtol=1e-12, atol=1e-15)
    rm2 = model.bn_params[1]["running_mean"]
    assert rm2.shape == (6,) and not np.allclose(rm2, expected) and np.abs(rm2).max() > 0


@pytest.mark.parametrize("normalization", NORMALIZATIONS, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
def test_dtype_kept_and_input_flattened(normalization, dtype):
    """float64 data into a float32 network: everything computed in float32, the loss a float."""
    rng = np.random.default_rng(9)
    X, y = rng.standard_normal((5, 2, 3)), rng.integers(4, size=5)
    model = FullyConnectedNet([8, 8], input_dim=6, num_classes=4, dropout_keep_ratio=0.5,
                              normalization=normalization, reg=0.1, dtype=dtype, seed=3)
    loss, grads = model.loss(X, y)
    assert type(loss) is float and model.loss(X).dtype == dtype
    assert {k: g.dtype for k, g in grads.items()} == {k: np.dtype(dtype) for k in grads}
    assert all(p[k].dtype == dtype for p in model.bn_params for k in p if k.startswith("running"))
    assert model.loss(X.reshape(5, 6), y)[0] == loss
