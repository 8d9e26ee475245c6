"""FullyConnectedNet: whole-network numerical gradient checks, initialisation, the L2 term,
test mode, batch-norm state and dtype handling."""
import numpy as np
import pytest

from cs231n.classifiers.fc_net import FullyConnectedNet

NORMALIZATIONS = [None, "batchnorm", "layernorm"]
KEEP_RATIOS = [1, 0.75, 0.5]
REGS = [0.0, 3.14]

# Norm-wise relative error ||a - n|| / (||a|| + ||n||) of analytic vs centred-difference
# gradients. Measured at most ~5e-8 over 5 seeds for every case below; a real bug (a
# missing factor, a wrong sign, a term forgotten) gives errors of order 1e-2 to 1.
GRAD_REL_TOL = 1e-6


def numerical_gradient(f, x, h=1e-5):
    """Centred differences of the scalar f() with respect to every entry of x (in place,
    restored after each perturbation)."""
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        f_plus = f()
        x[ix] = old - h
        f_minus = f()
        x[ix] = old
        grad[ix] = (f_plus - f_minus) / (2 * h)
    return grad


def norm_rel_error(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300)


def small_problem(N=5, D=15, C=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, D)), rng.integers(C, size=N)


def check_network_gradients(normalization, keep, reg, N, D, hidden, C):
    """Every entry of every parameter's gradient against centred differences, float64.
    With dropout the seed fixes the mask, so every evaluation of the loss drops the same
    units."""
    X, y = small_problem(N, D, C)
    model = FullyConnectedNet(
        hidden, input_dim=D, num_classes=C, dropout_keep_ratio=keep,
        normalization=normalization, reg=reg, weight_scale=5e-2, dtype=np.float64, seed=123,
    )
    # Move b, gamma, beta away from their initial 0 / 1: an example whose layer input was
    # dropped entirely would otherwise sit exactly on a ReLU kink (pre-activation b = 0),
    # where centred differences are meaningless; and gamma = 1, beta = 0 would hide a
    # gradient that confuses gamma with 1 or ignores beta.
    rng = np.random.default_rng(1)
    for name, value in model.params.items():
        if not name.startswith("W"):
            value += 0.1 * rng.standard_normal(value.shape)
    loss, grads = model.loss(X, y)
    assert set(grads) == set(model.params)

    def f():
        return model.loss(X, y)[0]

    before_norm = {f"b{i}" for i in range(1, len(hidden) + 1)}
    for name in sorted(grads):
        numeric = numerical_gradient(f, model.params[name])
        if normalization == "batchnorm" and name in before_norm:
            # A bias right before batch norm is removed with the batch mean: its true
            # gradient is exactly 0, so a relative error would only compare round-off.
            np.testing.assert_allclose(grads[name], 0.0, atol=1e-12, err_msg=name)
            np.testing.assert_allclose(numeric, 0.0, atol=1e-9, err_msg=name)
            continue
        err = norm_rel_error(grads[name], numeric)
        assert err < GRAD_REL_TOL, f"{name}: relative error {err:.2e}"


@pytest.mark.parametrize("reg", REGS, ids=lambda r: f"reg={r}")
@pytest.mark.parametrize("keep", KEEP_RATIOS, ids=lambda p: f"keep={p}")
@pytest.mark.parametrize("normalization", NORMALIZATIONS, ids=str)
def test_network_gradients(normalization, keep, reg):
    # Small layers keep the 18 cases fast; N = 5 because batch norm over 2 examples is
    # degenerate (x_hat = +-1, gradients of order eps).
    check_network_gradients(normalization, keep, reg, N=5, D=6, hidden=[7, 5], C=4)


@pytest.mark.parametrize(
    "normalization, keep", [("batchnorm", 0.75), ("layernorm", 0.5)], ids=str
)
def test_network_gradients_notebook_shape(normalization, keep):
    """The shape of the notebooks' network gradient check: D=15, hidden [20, 30], C=10."""
    check_network_gradients(normalization, keep, 3.14, N=5, D=15, hidden=[20, 30], C=10)


def test_gradient_check_detects_a_wrong_gradient():
    """The check above can fail: a gradient off by a small term is caught."""
    X, y = small_problem()
    model = FullyConnectedNet([20, 30], input_dim=15, num_classes=10, reg=0.1,
                              normalization="batchnorm", dtype=np.float64, seed=1)
    _, grads = model.loss(X, y)
    numeric = numerical_gradient(lambda: model.loss(X, y)[0], model.params["W2"])
    wrong = grads["W2"] + 0.1 * 0.1 * model.params["W2"]  # reg term counted twice
    assert norm_rel_error(wrong, numeric) > 100 * GRAD_REL_TOL


@pytest.mark.parametrize("normalization", NORMALIZATIONS, ids=str)
def test_parameters_initialised(normalization):
    hidden, D, C, scale = [100, 50], 3 * 32 * 32, 10, 3e-2
    model = FullyConnectedNet(hidden, normalization=normalization, weight_scale=scale, seed=0)
    dims = [D, *hidden, C]
    expected = {}
    for i in range(1, 4):
        expected[f"W{i}"] = (dims[i - 1], dims[i])
        expected[f"b{i}"] = (dims[i],)
    if normalization is not None:
        for i in (1, 2):  # hidden layers only: never the scores layer
            expected[f"gamma{i}"] = expected[f"beta{i}"] = (dims[i],)
    assert {k: v.shape for k, v in model.params.items()} == expected
    assert all(v.dtype == np.float32 for v in model.params.values())
    for k, v in model.params.items():
        if k[0] == "b":  # b1.. and beta1..
            np.testing.assert_array_equal(v, 0, err_msg=k)
        elif k.startswith("gamma"):
            np.testing.assert_array_equal(v, 1, err_msg=k)
    W1 = model.params["W1"].astype(np.float64)  # 307,200 draws of N(0, scale^2)
    assert abs(W1.mean()) < 5 * scale / np.sqrt(W1.size)
    np.testing.assert_allclose(W1.std(), scale, rtol=1e-2)
    assert model.num_layers == 3
    assert model.normalization == normalization
    assert model.dtype is np.float32


@pytest.mark.parametrize(
    "normalization, n_dicts", [(None, 0), ("batchnorm", 2), ("layernorm", 2)], ids=str
)
def test_bn_params_one_dict_per_hidden_layer(normalization, n_dicts):
    model = FullyConnectedNet([8, 8], input_dim=4, normalization=normalization)
    assert len(model.bn_params) == n_dicts
    assert len({id(p) for p in model.bn_params}) == n_dicts  # never one shared dict


@pytest.mark.parametrize(
    "keep, seed, expected",
    [
        (1, None, {}),
        (1, 7, {}),
        (0.5, None, {"mode": "train", "p": 0.5}),
        (0.25, 7, {"mode": "train", "p": 0.25, "seed": 7}),
    ],
    ids=["no-dropout", "no-dropout-seeded", "dropout", "dropout-seeded"],
)
def test_dropout_param(keep, seed, expected):
    model = FullyConnectedNet([8], input_dim=4, dropout_keep_ratio=keep, seed=seed)
    assert model.use_dropout == (keep != 1)
    assert model.dropout_param == expected


def test_seed_reproducible_and_leaves_global_state_alone():
    state = np.random.get_state()[1].copy()
    a = FullyConnectedNet([16, 8], input_dim=12, seed=5)
    b = FullyConnectedNet([16, 8], input_dim=12, seed=5)
    c = FullyConnectedNet([16, 8], input_dim=12, seed=6)
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert not np.array_equal(a.params["W1"], c.params["W1"])


def test_no_seed_draws_from_np_random():
    """CS231N notebooks make networks reproducible with np.random.seed."""
    np.random.seed(231)
    a = FullyConnectedNet([16, 8], input_dim=12)
    np.random.seed(231)
    b = FullyConnectedNet([16, 8], input_dim=12)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    c = FullyConnectedNet([16, 8], input_dim=12)
    assert not np.array_equal(a.params["W1"], c.params["W1"])


@pytest.mark.parametrize("normalization", NORMALIZATIONS, ids=str)
@pytest.mark.parametrize("keep", [1, 0.5], ids=lambda p: f"keep={p}")
def test_l2_term_and_its_gradient(normalization, keep):
    """loss(reg) - loss(0) == 0.5 * reg * sum over W of sum(W**2); gradients differ by
    reg * W for weights only (biases, gamma, beta unpenalized)."""
    X, y = small_problem(N=6, D=7, C=4, seed=2)
    reg = 0.7

    def make(r):
        return FullyConnectedNet([9, 5], input_dim=7, num_classes=4, dropout_keep_ratio=keep,
                                 normalization=normalization, reg=r, dtype=np.float64, seed=3)

    loss0, grads0 = make(0.0).loss(X, y)
    model = make(reg)
    loss, grads = model.loss(X, y)
    penalty = 0.0
    for k in ("W1", "W2", "W3"):
        W = model.params[k]
        penalty += 0.5 * reg * sum(float(w) ** 2 for w in W.ravel())
    np.testing.assert_allclose(loss - loss0, penalty, rtol=1e-12)
    for k in grads:
        extra = reg * model.params[k] if k.startswith("W") else 0.0
        np.testing.assert_allclose(grads[k], grads0[k] + extra, rtol=1e-12, atol=1e-15, err_msg=k)


@pytest.mark.parametrize("normalization", NORMALIZATIONS, ids=str)
def test_test_mode_scores(normalization):
    """y=None: scores (N, C), no state change, dropout off (the same scores as the same
    network without dropout), deterministic."""
    X, y = small_problem(N=6, D=7, C=4, seed=4)
    kwargs = dict(input_dim=7, num_classes=4, normalization=normalization, dtype=np.float64, seed=9)
    model = FullyConnectedNet([9, 5], dropout_keep_ratio=0.5, **kwargs)
    plain = FullyConnectedNet([9, 5], **kwargs)
    model.loss(X, y)  # a training pass: running statistics now exist for batch norm
    for p, q in zip(plain.bn_params, model.bn_params):
        p.update({k: v.copy() for k, v in q.items() if k.startswith("running")})
    before = [dict(p) for p in model.bn_params]
    scores = model.loss(X)
    assert scores.shape == (6, 4) and scores.dtype == np.float64
    assert model.dropout_param["mode"] == "test"
    for p, q in zip(model.bn_params, before):
        for k in ("running_mean", "running_var"):
            if k in q:
                assert p[k] is q[k], "test mode must not touch the running statistics"
    np.testing.assert_array_equal(model.loss(X), scores)
    np.testing.assert_allclose(scores, plain.loss(X), rtol=1e-12, atol=1e-15)


def test_test_mode_of_one_example_matches_the_batch():
    """Batch norm at test time uses running statistics: an example's scores do not depend
    on the rest of the batch (in train mode they would)."""
    X, y = small_problem(N=6, D=7, C=4, seed=5)
    model = FullyConnectedNet([9, 5], input_dim=7, num_classes=4, normalization="batchnorm",
                              dtype=np.float64, seed=2)
    for _ in range(3):
        model.loss(X, y)
    np.testing.assert_allclose(model.loss(X[:1]), model.loss(X)[:1], rtol=1e-12, atol=1e-15)


def test_batchnorm_running_stats_persist_per_layer():
    """After two training calls, layer 1's running mean is the moving average of the batch
    means of its input X @ W1 + b1, computed here by hand; layer 2's is its own."""
    rng = np.random.default_rng(6)
    D, H = 7, 6
    X1, X2 = rng.standard_normal((5, D)), rng.standard_normal((5, D)) + 2
    y = rng.integers(3, size=5)
    model = FullyConnectedNet([H, H], input_dim=D, num_classes=3, normalization="batchnorm",
                              dtype=np.float64, seed=4)
    model.bn_params[0]["momentum"] = 0.6
    model.loss(X1, y)
    model.loss(X2, y)
    W1, b1 = model.params["W1"], model.params["b1"]
    mu1 = (X1 @ W1 + b1).mean(axis=0)
    mu2 = (X2 @ W1 + b1).mean(axis=0)
    expected = 0.6 * (0.6 * 0 + 0.4 * mu1) + 0.4 * mu2  # running mean starts at zeros
    np.testing.assert_allclose(model.bn_params[0]["running_mean"], expected, rtol=1e-12, atol=1e-15)
    rm2 = model.bn_params[1]["running_mean"]
    assert rm2.shape == (H,)
    assert not np.allclose(rm2, expected), "two layers share running statistics"
    assert np.abs(rm2).max() > 0


def test_multidimensional_input_is_flattened():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((4, 3, 2, 5))
    y = rng.integers(6, size=4)
    model = FullyConnectedNet([7], input_dim=30, num_classes=6, normalization="layernorm",
                              dtype=np.float64, seed=0)
    loss4, grads4 = model.loss(X, y)
    loss2, grads2 = model.loss(X.reshape(4, 30), y)
    assert loss4 == loss2
    for k in grads4:
        np.testing.assert_array_equal(grads4[k], grads2[k])


@pytest.mark.parametrize("normalization", NORMALIZATIONS, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
def test_dtype_kept_throughout(normalization, dtype):
    """float64 data into a float32 network: everything computed in float32 (an upcast
    would double the cost of every training iteration), the loss a Python float."""
    rng = np.random.default_rng(9)
    X, y = rng.standard_normal((5, 2, 3)), rng.integers(4, size=5)
    model = FullyConnectedNet([8, 8], input_dim=6, num_classes=4, dropout_keep_ratio=0.5,
                              normalization=normalization, reg=0.1, dtype=dtype)
    loss, grads = model.loss(X, y)
    assert type(loss) is float
    assert {k: g.dtype for k, g in grads.items()} == {k: np.dtype(dtype) for k in grads}
    assert model.loss(X).dtype == dtype
    for p in model.bn_params:
        for k in ("running_mean", "running_var"):
            if k in p:
                assert p[k].dtype == dtype, k


def test_empty_hidden_dims_is_softmax_classifier():
    X, y = small_problem(N=4, D=5, C=3, seed=10)
    model = FullyConnectedNet([], input_dim=5, num_classes=3, normalization="batchnorm",
                              dtype=np.float64, seed=0)
    assert model.num_layers == 1 and set(model.params) == {"W1", "b1"}
    loss, grads = model.loss(X, y)
    numeric = numerical_gradient(lambda: model.loss(X, y)[0], model.params["W1"])
    assert norm_rel_error(grads["W1"], numeric) < GRAD_REL_TOL
