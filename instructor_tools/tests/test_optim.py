"""Update rules: one step against the rule's equations written out in the test, the
defaults they fill in, Adam's bias correction at t = 1, dtype preservation, and that each
rule actually minimizes a tiny quadratic."""
import numpy as np
import pytest

from cs231n import optim

RTOL, ATOL = 1e-12, 1e-15  # float64: the test's arithmetic and the rule's may round differently


def _arrays(seed=0, shape=(4, 5)):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape), rng.standard_normal(shape), rng.random(shape)


def test_sgd_one_step_and_in_place():
    w, dw, _ = _arrays()
    expected = w - 0.3 * dw
    w_in = w.copy()
    next_w, config = optim.sgd(w_in, dw, {"learning_rate": 0.3})
    np.testing.assert_allclose(next_w, expected, rtol=RTOL, atol=ATOL)
    assert next_w is w_in, "sgd updates w in place, as CS231N"
    assert config == {"learning_rate": 0.3}


def test_sgd_momentum_two_steps():
    w, dw, v0 = _arrays(1)
    lr, mu = 0.05, 0.8
    config = {"learning_rate": lr, "momentum": mu, "velocity": v0.copy()}
    w1, config = optim.sgd_momentum(w, dw, config)
    v1 = mu * v0 - lr * dw
    np.testing.assert_allclose(w1, w + v1, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(config["velocity"], v1, rtol=RTOL, atol=ATOL)

    dw2 = np.cos(dw)
    w2, config = optim.sgd_momentum(w1, dw2, config)
    v2 = mu * v1 - lr * dw2
    np.testing.assert_allclose(w2, w + v1 + v2, rtol=RTOL, atol=ATOL)


def test_rmsprop_one_step_from_given_cache():
    w, dw, cache0 = _arrays(2)
    lr, decay, eps = 1e-2, 0.9, 1e-6
    config = {"learning_rate": lr, "decay_rate": decay, "epsilon": eps, "cache": cache0.copy()}
    next_w, config = optim.rmsprop(w, dw, config)
    cache = decay * cache0 + (1 - decay) * dw**2
    np.testing.assert_allclose(config["cache"], cache, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(next_w, w - lr * dw / (np.sqrt(cache) + eps), rtol=RTOL, atol=ATOL)


def test_adam_one_step_from_given_state():
    w, dw, v0 = _arrays(3)
    m0 = np.sin(w)
    lr, b1, b2, eps, t0 = 1e-2, 0.8, 0.99, 1e-7, 5
    config = {"learning_rate": lr, "beta1": b1, "beta2": b2, "epsilon": eps,
              "m": m0.copy(), "v": v0.copy(), "t": t0}
    next_w, config = optim.adam(w, dw, config)
    t = t0 + 1
    m = b1 * m0 + (1 - b1) * dw
    v = b2 * v0 + (1 - b2) * dw**2
    expected = w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    assert config["t"] == t
    np.testing.assert_allclose(config["m"], m, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(config["v"], v, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(next_w, expected, rtol=RTOL, atol=ATOL)


def test_adam_bias_correction_at_t1():
    """From zero moments, t is incremented to 1 BEFORE use, so m_hat = dw and
    v_hat = dw**2: the first step is lr * dw / (|dw| + eps), about lr * sign(dw).
    Without the correction (or with t = 0) it would be 10x or 0x that."""
    w, dw, _ = _arrays(4)
    next_w, config = optim.adam(w, dw, {"learning_rate": 0.01})
    assert config["t"] == 1
    np.testing.assert_allclose(next_w, w - 0.01 * dw / (np.abs(dw) + 1e-8), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    "rule, defaults",
    [
        ("sgd", {"learning_rate": 1e-2}),
        ("sgd_momentum", {"learning_rate": 1e-2, "momentum": 0.9}),
        ("rmsprop", {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8}),
        ("adam", {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "t": 1}),
    ],
)
def test_defaults_are_filled_in(rule, defaults):
    w, dw, _ = _arrays(5)
    _, config = optim.UPDATE_RULES[rule](w.copy(), dw, None)
    for key, value in defaults.items():
        assert config[key] == value, key


@pytest.mark.parametrize("rule", sorted(optim.UPDATE_RULES))
def test_float32_stays_float32_with_numpy_hyperparameters(rule):
    """A float64 numpy learning rate (what 10 ** np.random.uniform(...) gives) and a
    float64 gradient must not turn a float32 parameter or its state into float64."""
    w, dw, _ = _arrays(6)
    w = w.astype(np.float32)
    config = {"learning_rate": np.float64(1e-3)}
    for _ in range(2):
        w, config = optim.UPDATE_RULES[rule](w, dw, config)  # dw is float64
    assert w.dtype == np.float32
    for key in ("velocity", "cache", "m", "v"):
        if key in config:
            assert config[key].dtype == np.float32, key


@pytest.mark.parametrize(
    "rule, config, steps",
    [
        ("sgd", {"learning_rate": 0.1}, 200),
        ("sgd_momentum", {"learning_rate": 0.02}, 300),
        ("rmsprop", {"learning_rate": 1e-2}, 400),
        ("adam", {"learning_rate": 5e-2}, 600),
    ],
)
def test_rule_minimizes_a_quadratic(rule, config, steps):
    """f(w) = 0.5 * sum(scale * (w - target)**2), ill-conditioned (scale 1..10)."""
    rng = np.random.default_rng(7)
    target = rng.standard_normal(6)
    scale = np.linspace(1.0, 10.0, 6)
    w = np.zeros(6)
    f0 = 0.5 * np.sum(scale * target**2)
    for _ in range(steps):
        w, config = optim.UPDATE_RULES[rule](w, scale * (w - target), config)
    f = 0.5 * np.sum(scale * (w - target) ** 2)
    assert f < 1e-4 * f0, f"{rule}: f went from {f0:.3g} to {f:.3g}"


def test_state_is_per_config_not_shared():
    """Two parameters with their own configs keep separate Adam moments."""
    w, dw, _ = _arrays(8)
    c1, c2 = {}, {}
    optim.adam(w, dw, c1)
    optim.adam(w, -dw, c2)
    np.testing.assert_allclose(c1["m"], -c2["m"], rtol=RTOL, atol=ATOL)
    assert c1["m"] is not c2["m"]
