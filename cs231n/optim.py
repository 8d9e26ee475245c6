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
- ``next_w`` has ``w``'s dtype (dw is cast to it). Hyperparameters are read as Python floats, so a float32
  network stays float32 even when a learning rate comes from numpy
  (``10 ** np.random.uniform(-4, -2)`` is a float64 scalar, which would otherwise upcast
  every update to float64).
- ``sgd`` updates ``w`` in place and returns it (as CS231N); the other rules return new
  arrays. The Solver copies parameters it wants to keep (``best_params``), so in-place
  updates are safe there.
- State arrays (velocity, cache, m, v) are created with ``w``'s shape and dtype; a state
  array passed in config is cast to w's dtype. Adam updates m and v in place (speed,
  see adam); the other rules store new arrays in config.
"""
import math
import numbers

import numpy as np

from cs231n.validation import check_array, check_nonnegative_int, check_positive_int, check_shape

__all__ = ["sgd", "sgd_momentum", "rmsprop", "adam", "UPDATE_RULES"]


# The checks below run once per parameter per training iteration (about 30 times per
# iteration for the notebooks' deep networks), so each has a cheap test for the common,
# valid case and calls the shared validation helpers, which build the error message,
# only when that test fails.


def _start(w, dw, config):
    """Validate the common arguments; return (dw in w's dtype, the config dict to fill in)."""
    if not (isinstance(w, np.ndarray) and w.dtype.kind == "f"):
        check_array(w, "w", floating=True)
    if not (isinstance(dw, np.ndarray) and dw.dtype.kind == "f"):
        check_array(dw, "dw", floating=True)
    if dw.shape != w.shape:
        check_shape(dw, "dw", w.shape)
    if config is None:
        config = {}
    elif not isinstance(config, dict):
        raise TypeError(f"config: expected a dict or None, got {type(config).__name__}")
    # A float64 gradient on a float32 parameter would otherwise turn the parameter
    # (and every later step) into float64.
    return dw.astype(w.dtype, copy=False), config


def _hyper(config, key, default, low, high, low_open=False, high_open=False):
    """setdefault a real hyperparameter and check it lies in [low, high] (ends as given).

    Returns it as a Python float (see the module docstring on dtypes).
    """
    value = config.setdefault(key, default)
    if type(value) is not float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(
                f"config[{key!r}]: expected a real number, got {type(value).__name__}"
            )
        value = float(value)
    # NaN fails every comparison; +-inf fails the finite bounds or the open ends at inf.
    ok = (value > low if low_open else value >= low) and (
        value < high if high_open else value <= high
    )
    if not ok:
        interval = ("(" if low_open else "[") + f"{low}, {high}" + (")" if high_open else "]")
        raise ValueError(f"config[{key!r}]: expected a number in {interval}, got {value!r}")
    return value


def _learning_rate(config, default):
    return _hyper(config, "learning_rate", default, 0.0, math.inf, low_open=True, high_open=True)


def _state(config, key, w):
    """The running-state array ``config[key]`` in w's dtype (stored back in config),
    created as zeros like w on first use."""
    state = config.get(key)
    if state is None:
        state = np.zeros_like(w)
    elif not isinstance(state, np.ndarray) or state.shape != w.shape:
        got = state.shape if isinstance(state, np.ndarray) else type(state).__name__
        raise ValueError(
            f"config[{key!r}]: expected an array of w's shape {w.shape}, got {got} "
            "(is one config dict shared between parameters?)"
        )
    else:
        state = state.astype(w.dtype, copy=False)
    config[key] = state
    return state


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent.

        w <- w - learning_rate * dw

    config format:
    - learning_rate: scalar learning rate (default 1e-2).

    Updates w in place and returns it.
    """
    dw, config = _start(w, dw, config)
    learning_rate = _learning_rate(config, 1e-2)
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
    learning_rate = _learning_rate(config, 1e-2)
    momentum = _hyper(config, "momentum", 0.9, 0.0, 1.0, high_open=True)
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
    learning_rate = _learning_rate(config, 1e-2)
    decay_rate = _hyper(config, "decay_rate", 0.99, 0.0, 1.0, high_open=True)
    epsilon = _hyper(config, "epsilon", 1e-8, 0.0, math.inf, low_open=True, high_open=True)
    cache = _state(config, "cache", w)

    cache = decay_rate * cache + (1 - decay_rate) * (dw * dw)
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
    - m: moving average of the gradient (created as zeros; updated in place).
    - v: moving average of the squared gradient (created as zeros; updated in place).
    - t: iteration number (default 0; the count of steps taken so far).
    """
    dw, config = _start(w, dw, config)
    learning_rate = _learning_rate(config, 1e-3)
    beta1 = _hyper(config, "beta1", 0.9, 0.0, 1.0, high_open=True)
    beta2 = _hyper(config, "beta2", 0.999, 0.0, 1.0, high_open=True)
    epsilon = _hyper(config, "epsilon", 1e-8, 0.0, math.inf, low_open=True, high_open=True)
    m = _state(config, "m", w)
    v = _state(config, "v", w)
    t = check_nonnegative_int(config.setdefault("t", 0), "config['t']")

    t += 1
    # The equations above, rearranged to work in place in m, v and ONE scratch array:
    # Adam runs once per parameter per iteration and the first layer's W is the largest
    # array of a training step, so each temporary costs a pass through memory
    # (this version is about 4x faster than the literal one at W1: (3072, 50), float32).
    scratch = np.subtract(dw, m)  # m <- m + (1 - beta1) * (dw - m)
    scratch *= 1 - beta1
    m += scratch
    np.multiply(dw, dw, out=scratch)  # v <- v + (1 - beta2) * (dw**2 - v)
    scratch -= v
    scratch *= 1 - beta2
    v += scratch
    # learning_rate * m_hat / (sqrt(v_hat) + epsilon) with the bias corrections moved into
    # scalars (Kingma & Ba, section 2): with c1 = 1 - beta1**t and c2 = 1 - beta2**t it
    # equals (learning_rate * sqrt(c2) / c1) * m / (sqrt(v) + epsilon * sqrt(c2)).
    sqrt_c2 = math.sqrt(1 - beta2**t)
    np.sqrt(v, out=scratch)
    scratch += epsilon * sqrt_c2
    np.divide(m, scratch, out=scratch)
    scratch *= learning_rate * sqrt_c2 / (1 - beta1**t)
    next_w = np.subtract(w, scratch, out=scratch)  # the scratch array becomes next_w
    config["t"] = t
    return next_w, config


# The names the Solver accepts as update_rule (an explicit table, not hasattr(optim, name),
# so that e.g. update_rule="np" is refused instead of failing later).
UPDATE_RULES = {
    "sgd": sgd,
    "sgd_momentum": sgd_momentum,
    "rmsprop": rmsprop,
    "adam": adam,
}
