"""First-order update rules used by the Solver (CS231N assignment 2), all of the form

    next_w, config = update(w, dw, config=None)

with w one parameter of any shape, dw its gradient (w's shape), and config a dict of the
hyperparameters (absent ones are filled in with their defaults) AND the rule's running state:
the Solver keeps one config per parameter. next_w and the state keep w's dtype: dw is cast to
it and hyperparameters are read as Python floats (a float64 numpy learning rate would turn a
float32 network into float64). sgd updates w in place, as CS231N's; the others return new arrays.
"""
import math
import numbers

import numpy as np

from cs231n.validation import check_array, check_nonnegative_int, check_shape

__all__ = ["sgd", "sgd_momentum", "rmsprop", "adam", "UPDATE_RULES"]


def _start(w, dw, config):
    """Check w and dw; return (dw in w's dtype, the config dict to fill in)."""
    check_array(w, "w", floating=True)
    check_shape(check_array(dw, "dw", floating=True), "dw", w.shape)
    if config is None:
        config = {}
    elif not isinstance(config, dict):
        raise TypeError(f"config: expected a dict or None, got {type(config).__name__}")
    return dw.astype(w.dtype, copy=False), config


def _hyper(config, key, default):
    """config[key] (set to default if absent) as a Python float: learning_rate and epsilon
    in (0, inf), the decay rates (momentum, decay_rate, beta1, beta2) in [0, 1)."""
    value = config.setdefault(key, default)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"config[{key!r}]: expected a real number, got {type(value).__name__}")
    value = float(value)
    positive = key in ("learning_rate", "epsilon")
    if not (0 < value < math.inf if positive else 0 <= value < 1):  # NaN fails both
        interval = "(0.0, inf)" if positive else "[0.0, 1.0)"
        raise ValueError(f"config[{key!r}]: expected a number in {interval}, got {value!r}")
    return value


def _state(config, key, w):
    """The state array config[key] in w's dtype; zeros like w on first use."""
    state = config.get(key)
    if state is None:
        return np.zeros_like(w)
    if not isinstance(state, np.ndarray) or state.shape != w.shape:
        got = state.shape if isinstance(state, np.ndarray) else type(state).__name__
        raise ValueError(f"config[{key!r}]: expected an array of w's shape {w.shape}, got {got} "
                         "(is one config dict shared between parameters?)")
    return state.astype(w.dtype, copy=False)


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent, in place: w <- w - learning_rate * dw."""
    dw, config = _start(w, dw, config)
    learning_rate = _hyper(config, "learning_rate", 1e-2)

    w -= learning_rate * dw
    return w, config


def sgd_momentum(w, dw, config=None):
    """Stochastic gradient descent with momentum:

        v      <- momentum * v - learning_rate * dw
        next_w <- w + v

    config: learning_rate; momentum in [0, 1) (0 is sgd); velocity (zeros at first).
    """
    dw, config = _start(w, dw, config)
    learning_rate = _hyper(config, "learning_rate", 1e-2)
    momentum = _hyper(config, "momentum", 0.9)
    v = _state(config, "velocity", w)

    v = momentum * v - learning_rate * dw
    next_w = w + v
    config["velocity"] = v
    return next_w, config


def rmsprop(w, dw, config=None):
    """RMSProp: a per-coordinate step scaled by a moving average of squared gradients:

        cache  <- decay_rate * cache + (1 - decay_rate) * dw**2
        next_w <- w - learning_rate * dw / (sqrt(cache) + epsilon)

    config: learning_rate; decay_rate in [0, 1); epsilon > 0, OUTSIDE the square root;
    cache (zeros at first).
    """
    dw, config = _start(w, dw, config)
    learning_rate = _hyper(config, "learning_rate", 1e-2)
    decay_rate = _hyper(config, "decay_rate", 0.99)
    epsilon = _hyper(config, "epsilon", 1e-8)
    cache = _state(config, "cache", w)

    cache = decay_rate * cache + (1 - decay_rate) * dw**2
    next_w = w - learning_rate * dw / (np.sqrt(cache) + epsilon)
    config["cache"] = cache
    return next_w, config


def adam(w, dw, config=None):
    """Adam (Kingma & Ba, 2015): moving averages of dw and dw**2 with bias correction:

        t      <- t + 1                  (BEFORE use: the first step has t = 1)
        m      <- beta1 * m + (1 - beta1) * dw
        v      <- beta2 * v + (1 - beta2) * dw**2
        m_hat  =  m / (1 - beta1**t)
        v_hat  =  v / (1 - beta2**t)
        next_w <- w - learning_rate * m_hat / (sqrt(v_hat) + epsilon)

    At t = 1, m_hat = dw and v_hat = dw**2: the first step is about learning_rate * sign(dw).

    config: learning_rate; beta1, beta2 in [0, 1); epsilon > 0; m, v (zeros at first);
    t, the steps taken (0 at first).
    """
    dw, config = _start(w, dw, config)
    learning_rate = _hyper(config, "learning_rate", 1e-3)
    beta1 = _hyper(config, "beta1", 0.9)
    beta2 = _hyper(config, "beta2", 0.999)
    epsilon = _hyper(config, "epsilon", 1e-8)
    m, v = _state(config, "m", w), _state(config, "v", w)
    t = check_nonnegative_int(config.setdefault("t", 0), "config['t']")

    t = t + 1
    m = beta1 * m + (1 - beta1) * dw
    v = beta2 * v + (1 - beta2) * dw**2
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    next_w = w - learning_rate * m_hat / (np.sqrt(v_hat) + epsilon)
    config.update(m=m, v=v, t=t)
    return next_w, config


# The names the Solver accepts: an explicit table, so that update_rule="np" is refused
# (CS231N's hasattr(optim, name) would accept it and fail later).
UPDATE_RULES = {"sgd": sgd, "sgd_momentum": sgd_momentum, "rmsprop": rmsprop, "adam": adam}
