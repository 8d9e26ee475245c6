"""First-order update rules used by the Solver (CS231N assignment 2).

Every rule has the same interface::

    next_w, config = update(w, dw, config=None)

- w: array of any shape, the current value of one parameter (e.g. W1: (D, H))
- dw: array of the same shape as w, the gradient of the loss with respect to w
- config: dict of hyperparameters AND of the rule's running state (velocity, moment
  estimates, step counter). Missing hyperparameters are filled in with ``setdefault`` so the
  caller sees the values that were used. The Solver keeps one config per parameter, so
  running state is never shared between parameters.

Conventions where they bite:
- ``next_w`` has ``w``'s dtype (dw is cast to it). Hyperparameters are read as Python
  floats, so a float32 network stays float32 even when a learning rate comes from numpy
  (``10 ** np.random.uniform(-4, -2)`` is a float64 scalar, which would otherwise upcast
  every update to float64).
- ``sgd`` updates ``w`` in place and returns it (as CS231N); the other rules return new
  arrays. The Solver copies parameters it wants to keep (``best_params``), so in-place
  updates are safe there.
- State arrays (velocity, cache, m, v) are created with ``w``'s shape and dtype; a state
  array passed in config is cast to w's dtype. Each step stores new state arrays in config.
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
    # A float64 dw on a float32 w would turn w (and every later step) into float64.
    return dw.astype(w.dtype, copy=False), config


def _hyper(config, key, default):
    """config[key], set to default if absent, as a Python float (see the module docstring).

    learning_rate and epsilon must lie in (0, inf), the decay rates (momentum, decay_rate,
    beta1, beta2) in [0, 1).
    """
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
    """The running-state array config[key] in w's dtype, zeros like w on first use."""
    state = config.get(key)
    if state is None:
        return np.zeros_like(w)
    if not isinstance(state, np.ndarray) or state.shape != w.shape:
        got = state.shape if isinstance(state, np.ndarray) else type(state).__name__
        raise ValueError(
            f"config[{key!r}]: expected an array of w's shape {w.shape}, got {got} "
            "(is one config dict shared between parameters?)"
        )
    return state.astype(w.dtype, copy=False)


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent.

        w <- w - learning_rate * dw

    config format:
    - learning_rate: scalar learning rate (default 1e-2).

    Updates w in place and returns it.
    """
    dw, config = _start(w, dw, config)
    learning_rate = _hyper(config, "learning_rate", 1e-2)

    w -= learning_rate * dw
    return w, config


def sgd_momentum(w, dw, config=None):
    """Stochastic gradient descent with momentum.

        v      <- momentum * v - learning_rate * dw
        next_w <- w + v

    config format:
    - learning_rate: scalar learning rate (default 1e-2).
    - momentum: scalar in [0, 1) giving the momentum value (default 0.9);
      momentum = 0 reduces to sgd.
    - velocity: array of the same shape as w and dw holding a moving average of the
      gradients (created as zeros on the first call).
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
    """RMSProp: a per-coordinate step scaled by a moving average of squared gradients.

        cache  <- decay_rate * cache + (1 - decay_rate) * dw**2
        next_w <- w - learning_rate * dw / (sqrt(cache) + epsilon)

    config format:
    - learning_rate: scalar learning rate (default 1e-2).
    - decay_rate: scalar in [0, 1) giving the decay rate of the squared gradient cache
      (default 0.99).
    - epsilon: small scalar > 0 used for smoothing, added OUTSIDE the square root
      (default 1e-8).
    - cache: moving average of second moments of gradients (created as zeros).
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
    """Adam (Kingma & Ba, 2015): moving averages of the gradient and its square, with
    bias correction.

        t      <- t + 1                      (incremented BEFORE use: the first step has t = 1)
        m      <- beta1 * m + (1 - beta1) * dw
        v      <- beta2 * v + (1 - beta2) * dw**2
        m_hat  =  m / (1 - beta1**t)
        v_hat  =  v / (1 - beta2**t)
        next_w <- w - learning_rate * m_hat / (sqrt(v_hat) + epsilon)

    At t = 1 the bias correction makes m_hat = dw and v_hat = dw**2, so the first step
    moves every coordinate by about learning_rate * sign(dw).

    config format:
    - learning_rate: scalar learning rate (default 1e-3).
    - beta1: decay rate for the moving average of the first moment, in [0, 1) (default 0.9).
    - beta2: decay rate for the moving average of the second moment, in [0, 1)
      (default 0.999).
    - epsilon: small scalar > 0 added outside the square root (default 1e-8).
    - m: moving average of the gradient (created as zeros).
    - v: moving average of the squared gradient (created as zeros).
    - t: iteration number (default 0; the count of steps taken so far).
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


# The names the Solver accepts as update_rule (an explicit table, not hasattr(optim, name),
# so that e.g. update_rule="np" is refused instead of failing later).
UPDATE_RULES = {
    "sgd": sgd,
    "sgd_momentum": sgd_momentum,
    "rmsprop": rmsprop,
    "adam": adam,
}
