"""Properties of the pieces students implement, checked by the self-check (cs231n.check,
whose hint is a failed property's message) and by the shipped tests (tests/). Only what the
documented conventions imply and numerical gradients (float64 centred differences, random
upstream gradient) are used, never a second implementation: this file ships to students.
"""
import math

import numpy as np

from cs231n.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array

# The largest grad_error a correct float64 gradient shows here: below 1e-8 for the layers,
# 1e-7 for the networks over hundreds of draws; wrong gradients give 1e-3 and more.
GRAD_TOL, NETWORK_GRAD_TOL = 1e-7, 1e-6
GRAD_FLOOR = 1e-3  # gradients smaller than this everywhere count as 0 (rounding noise)
DELEGATES = ("batchnorm_backward_alt calls batchnorm_backward: write the closed form (derived "
             'in BatchNormalization.ipynb, section "Batch normalization: alternative backward '
             'pass")')


class CheckFailed(AssertionError):
    """A property did not hold; the message says which, what was measured and why."""


def expect(holds, message):
    if not holds:
        raise CheckFailed(message)


def fmt(values):
    """A short human form of a scalar or vector: 0.53 or [0.53, -1.2, 0.07, ...]."""
    values = np.atleast_1d(np.asarray(values, dtype=np.float64)).ravel()
    shown = ", ".join(f"{v:.3g}" for v in values[:4])
    return shown if values.size == 1 else f"[{shown}{', ...' if values.size > 4 else ''}]"


def require_array(value, what, shape):
    expect(isinstance(value, np.ndarray),
           f"{what} is a {type(value).__name__}, expected a numpy array")
    expect(value.shape == tuple(shape), f"{what} has shape {value.shape}, expected {tuple(shape)}")
    expect(np.all(np.isfinite(value)), f"{what} holds NaN or inf")
    return value


def grad_error(analytic, numerical):
    """max |analytic - numerical| / max(max |analytic|, max |numerical|, GRAD_FLOOR): relative
    to the largest entry, so an entry that should be 0 shows rounding noise as noise."""
    analytic, numerical = np.asarray(analytic, np.float64), np.asarray(numerical, np.float64)
    scale = max(float(np.max(np.abs(analytic))), float(np.max(np.abs(numerical))), GRAD_FLOOR)
    return float(np.max(np.abs(analytic - numerical))) / scale


def assert_grads(named_pairs, tol=GRAD_TOL, context=""):
    """(name, analytic, numerical) triples; fail on the first error above tol. -> {name: error}"""
    errors = {}
    for name, analytic, numerical in named_pairs:
        errors[name] = grad_error(require_array(analytic, name, numerical.shape), numerical)
        expect(errors[name] < tol,  # also catches NaN
               f"{name} rel error {errors[name]:.1e}{context}, expected < {tol:.0e}")
    return errors


def layer_gradients(forward, backward, inputs, names, rng, context="", inspect=None):
    """The gradients backward(dout, cache) returns for out, cache = forward(*inputs), one per
    name, against centred differences of sum(out * dout), dout random. -> {name: error}
    inspect(grads, numerical, dout), if given, runs before the comparison."""
    out, cache = forward(*[a.copy() for a in inputs])
    dout = rng.standard_normal(np.shape(out))
    grads = backward(dout.copy(), cache)
    grads, numerical = grads if isinstance(grads, tuple) else (grads,), []
    for k in range(len(names)):
        args = [a.copy() for a in inputs]
        numerical.append(eval_numerical_gradient_array(
            lambda v: forward(*args[:k], v, *args[k + 1:])[0], args[k], dout))
    if inspect:
        inspect(grads, numerical, dout)
    return assert_grads(zip(names, grads, numerical), context=context)


def norm_data(rng, N, D, axis=0):
    """x: (N, D) with means and scales over axis far from 0 and 1, each std >= 0.5 (two close
    values of N = 2 make var tiny and centred differences useless); gamma > 0; beta."""
    size = (D,) if axis == 0 else (N, 1)
    while True:
        x = rng.standard_normal((N, D)) * rng.uniform(0.5, 4.0, size) + rng.uniform(-5, 5, size)
        if x.shape[axis] == 1 or x.std(axis=axis).min() >= 0.5:
            return x, rng.uniform(0.5, 2.0, D), rng.uniform(-2.0, 2.0, D)


def _call_without_staged(layers, alt, dout, cache):
    """alt(dout, cache) while batchnorm_backward raises: the module's name for it and the
    function object itself (its code swapped), so a call through an alias shows too."""
    def refused(*args, **kwargs):
        raise RuntimeError("batchnorm_backward refused")

    staged = layers.batchnorm_backward
    code = getattr(staged, "__code__", None)
    swap, layers.batchnorm_backward = code is not None and not code.co_freevars, refused
    try:
        if swap:
            staged.__code__ = refused.__code__
        return alt(dout, cache)
    except RuntimeError as exc:
        expect(str(exc) != "batchnorm_backward refused", DELEGATES)
        raise
    finally:
        layers.batchnorm_backward = staged
        if swap:
            staged.__code__ = code


def norm_gradients(layers, backward_name, N, D, rng, eps=None):
    """dx, dgamma, dbeta of layers.<backward_name> (batchnorm_backward, batchnorm_backward_alt
    or layernorm_backward); names the classic dgamma mistakes. -> {name: error}"""
    batch = backward_name.startswith("batchnorm")
    forward = layers.batchnorm_forward if batch else layers.layernorm_forward
    param = {**({"mode": "train"} if batch else {}), **({} if eps is None else {"eps": eps})}
    backward = alt = getattr(layers, backward_name)
    if backward_name == "batchnorm_backward_alt":
        backward = lambda dout, cache: _call_without_staged(layers, alt, dout, cache)  # noqa: E731
    x, gamma, beta = norm_data(rng, N, D, axis=0 if batch else 1)
    context = f" (N={N}, D={D})"

    def dgamma_source(grads, numerical, dout):  # dout summed against x or x - mu, not x_hat
        dgamma = grads[1] if len(grads) == 3 else None
        if not isinstance(dgamma, np.ndarray) or dgamma.shape != (D,):
            return
        centred = x - x.mean(axis=0 if batch else 1, keepdims=True)
        for formula, value in (("x", x), ("(x - mu)", centred)):
            expect(grad_error(dgamma, numerical[1]) < GRAD_TOL
                   or grad_error(dgamma, (dout * value).sum(axis=0)) >= GRAD_TOL,
                   f"dgamma matches sum(dout * {formula}), not sum(dout * x_hat){context}: "
                   f"in the forward pass gamma multiplies x_hat")

    return layer_gradients(lambda *a: forward(*a, dict(param)), backward, [x, gamma, beta],
                           ["dx", "dgamma", "dbeta"], rng, context, dgamma_source)


def _normalized(out, x, gamma, beta, eps, axis, what):
    """Over axis, out has mean beta and std gamma * sqrt(var / (var + eps)) (biased var)."""
    mean, std, var = out.mean(axis=axis), out.std(axis=axis), x.var(axis=axis)
    expect(np.allclose(mean, beta, rtol=0, atol=1e-9), f"{what}: mean of output over axis {axis} "
           f"is {fmt(mean)}, expected {fmt(beta)} (x - mu uses the mean over axis {axis})")
    expected = gamma * np.sqrt(var / (var + eps))
    unbiased = np.allclose(std, gamma * np.sqrt(var / (x.var(axis=axis, ddof=1) + eps)))
    expect(np.allclose(std, expected, rtol=1e-9, atol=0),
           f"{what}: std of output over axis {axis} is {fmt(std)}, expected gamma * sqrt(var / "
           f"(var + eps)) = {fmt(expected)}: " + ("the variance divides by N - 1; the convention"
                                                  " is the biased variance" if unbiased else
                                                  "x_hat = (x - mu) / sqrt(var + eps)"))


def bn_train_statistics(forward, rng, eps=1e-5, N=64, D=5):
    x, gamma, beta = norm_data(rng, N, D)
    out = require_array(forward(x.copy(), gamma, beta, {"mode": "train", "eps": eps})[0],
                        "train-mode output", (N, D))
    _normalized(out, x, gamma, beta, eps, 0, "train mode")
    corr = [np.corrcoef(x[:, j], out[:, j])[0, 1] for j in range(D)]
    expect(np.allclose(corr, 1.0, rtol=0, atol=1e-9),
           f"train-mode output is not an increasing affine function of x per feature "
           f"(correlations {fmt(corr)}, expected 1): each column must be normalized with its "
           f"own mean and std")
    const, _ = forward(np.tile(x[0], (N, 1)), gamma, beta, {"mode": "train", "eps": eps})
    expect(np.allclose(const, beta, rtol=0, atol=1e-9),
           f"a constant feature (variance 0) does not give output beta (got {fmt(const[0])}): "
           f"eps belongs inside the square root")


def bn_running_averages(forward, rng, momentum, N=16, D=4, steps=3):
    """momentum None: the default, 0.9."""
    param = {"mode": "train"} if momentum is None else {"mode": "train", "momentum": momentum}
    m = 0.9 if momentum is None else momentum
    mean, var, inverted_mean, unbiased_var = (np.zeros(D) for _ in range(4))
    for _ in range(steps):
        x, gamma, beta = norm_data(rng, N, D)
        forward(x.copy(), gamma, beta, param)
        mean = m * mean + (1 - m) * x.mean(axis=0)
        var = m * var + (1 - m) * x.var(axis=0)
        inverted_mean = (1 - m) * inverted_mean + m * x.mean(axis=0)
        unbiased_var = m * unbiased_var + (1 - m) * x.var(axis=0, ddof=1)
    what = "default momentum 0.9" if momentum is None else f"momentum = {momentum}"
    for key, expected, wrong in (("running_mean", mean, inverted_mean),
                                 ("running_var", var, unbiased_var)):
        got = param.get(key)
        expect(isinstance(got, np.ndarray) and got.shape == (D,),
               f"bn_param[{key!r}] is not a ({D},) array after training steps")
        why = f"expected {key} = momentum * {key} + (1 - momentum) * sample_{key[8:]}"
        if np.allclose(got, wrong, rtol=1e-10):
            why = (why + " (momentum is applied inverted: it is the weight of the OLD value)"
                   if key == "running_mean" else
                   "running_var moved towards the unbiased variance (divides by N-1); batch "
                   "norm uses the biased one (divides by N), in the running average too")
        expect(np.allclose(got, expected, rtol=1e-10, atol=1e-12),
               f"{key} after {steps} training steps ({what}, from zeros) is {fmt(got)}, "
               f"expected {fmt(expected)}: {why}")


def bn_test_mode(forward, rng, eps=1e-5, N=8, D=4):
    gamma, beta, mean, var = (rng.uniform(*r, D) for r in ((.5, 2), (-2, 2), (-3, 3), (.5, 4)))
    z = rng.standard_normal((N, D))
    x = mean + z * np.sqrt(var + eps)
    param = {"mode": "test", "eps": eps, "running_mean": mean.copy(), "running_var": var.copy()}
    out = require_array(forward(x, gamma, beta, param)[0], "test-mode output", (N, D))
    batch_stats = gamma * (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps) + beta
    expect(not np.allclose(out, batch_stats, rtol=1e-9, atol=1e-9),
           "test mode used the batch's own statistics, not running_mean/running_var (in test "
           "mode an example's output must not depend on the rest of its batch)")
    expect(np.allclose(out, gamma * z + beta, rtol=1e-9, atol=1e-9),
           f"test-mode output is not gamma * (x - running_mean) / sqrt(running_var + eps) + "
           f"beta (max abs error {np.max(np.abs(out - gamma * z - beta)):.2g}): test mode must "
           f"use the running statistics, not the batch's")
    expect(np.array_equal(param["running_mean"], mean)
           and np.array_equal(param["running_var"], var),
           "test mode changed the running statistics; it must only read them")


def layernorm_statistics(forward, rng, eps=1e-5, N=6, D=16):
    x, gamma, beta = norm_data(rng, N, D, axis=1)
    plain = require_array(forward(x.copy(), np.ones(D), np.zeros(D), {"eps": eps})[0],
                          "layernorm output", (N, D))
    col_var = x.var(axis=0)
    expect(np.allclose(plain.mean(axis=1), 0.0, rtol=0, atol=1e-9) or not (
        np.allclose(plain.mean(axis=0), 0.0, rtol=0, atol=1e-9) and np.allclose(
            plain.std(axis=0), np.sqrt(col_var / (col_var + eps)), rtol=1e-9, atol=0)),
        "layer norm normalized over the batch axis (axis 0, one mean and variance per "
        "feature, as batch norm does); it normalizes each example over its D features (axis 1)")
    _normalized(plain, x, 1.0, 0.0, eps, 1, "layer norm with gamma = 1, beta = 0")
    out, _ = forward(x.copy(), gamma, beta, {"eps": eps})
    expect(np.allclose(out, gamma * plain + beta, rtol=1e-12, atol=1e-12),
           "output is not gamma * x_hat + beta with gamma, beta per feature")
    expect(np.allclose(forward(x[2:3].copy(), gamma, beta, {"eps": eps})[0][0], out[2],
                       rtol=1e-12, atol=1e-12),
           "an example's output changes with the other examples in the batch; layer norm must "
           "use only that example's own features")
    for mode in ("train", "test"):
        expect(np.allclose(forward(x.copy(), gamma, beta, {"eps": eps, "mode": mode})[0], out,
                           rtol=1e-12, atol=1e-12),
               f"ln_param mode {mode!r} changes the output; it must not")


def dropout_modes(forward, backward, rng, p, shape=(400, 250), seed=7):
    """Train mode (kept fraction, one factor, mean, mask, seeds, backward) and test mode."""
    x = rng.uniform(1.0, 2.0, shape)  # positive, so out != 0 exactly where kept
    out, cache = forward(x.copy(), {"mode": "train", "p": p, "seed": seed})
    kept = require_array(out, f"train-mode output (p = {p})", x.shape) != 0
    # 5 binomial standard deviations: a correct layer fails this about once in 10^6.
    expect(abs(kept.mean() - p) <= 5 * math.sqrt(p * (1 - p) / x.size),
           f"train-mode fraction of kept units is {kept.mean():.3f} for p = {p}, expected "
           f"about p (p is the probability of KEEPING a unit)")
    factors = out[kept] / x[kept]
    factor = float(np.median(factors))
    expect(np.allclose(factors, factor, rtol=1e-12, atol=0),
           f"kept units are not all x times one factor in train mode (p = {p}): out / x ranges "
           f"from {factors.min():.3g} to {factors.max():.3g} where out != 0")
    # The kept sum is binomial: its relative standard deviation, 5 of them as tolerance.
    ratio = float(out.mean() / x.mean())
    spread = math.sqrt(p * (1 - p) * float(np.sum(x**2))) / (p * float(np.sum(x)))
    expect(abs(ratio - 1) <= 5 * spread,
           f"train-mode mean is {ratio:.2f}x the input's for p = {p} (kept units are x * "
           f"{factor:.3g}), expected about 1x: over many units the mean of out should be close "
           f"to the mean of x")
    mask = cache.get("mask") if isinstance(cache, dict) else None
    expect(isinstance(mask, np.ndarray) and mask.shape == x.shape
           and np.allclose(x * mask, out, rtol=1e-12, atol=0),
           f"cache['mask'] is not an array with out = x * mask (p = {p}); see the cache "
           f"described in dropout_forward's docstring")
    again, other = (forward(x.copy(), {"mode": "train", "p": p, "seed": s})[0]
                    for s in (seed, seed + 1))
    expect(np.array_equal(again, out), "the same seed gave two different masks")
    expect(p == 1 or not np.array_equal(other, out), "two different seeds gave the same mask")
    dout = rng.standard_normal(x.shape)
    dx = require_array(backward(dout.copy(), cache), f"train-mode dx (p = {p})", x.shape)
    # x > 0: dx is 0 where dropped and, where kept, scaled from dout as out is from x.
    expect(np.allclose(dx * x, dout * out, rtol=1e-12, atol=0),
           f"train-mode dx does not follow the forward pass (p = {p}): dx * x should equal "
           f"dout * out elementwise; backward must reuse the forward pass's mask")
    out, cache = forward(x.copy(), {"mode": "test", "p": p})
    expect(np.array_equal(require_array(out, f"test-mode output (p = {p})", x.shape), x),
           f"test mode changed the input (p = {p}): the test-mode mean is "
           f"{out.mean() / x.mean():.2f}x the input's, largest change "
           f"{np.max(np.abs(out - x)):.2g}; in test mode out = x")
    expect(np.array_equal(np.asarray(backward(dout.copy(), cache)), dout),
           "test-mode dx is not dout")


def network_gradients(net_class, normalization, keep, rng, reg=0.0, dims=(5, 6, (7, 8), 4)):
    """Keys, a finite loss, every gradient against centred differences, the L2 term
    0.5 * reg * sum(W**2), a deterministic test mode. dims: (N, D, hidden_dims, C).
    -> the largest gradient error."""
    N, D, hidden, C = dims
    X, y = rng.standard_normal((N, D)), rng.integers(C, size=N)
    what = f"normalization={normalization!r}, dropout_keep_ratio={keep}"
    model = net_class(list(hidden), input_dim=D, num_classes=C, normalization=normalization,
                      dropout_keep_ratio=keep, reg=reg, weight_scale=5e-1, dtype=np.float64,
                      seed=231)
    keys = {f"{k}{i}" for i in range(1, len(hidden) + 2) for k in "Wb"} | {
        f"{k}{i}" for i in range(1, len(hidden) + 1) for k in ("gamma", "beta") if normalization}
    expect(set(model.params) == keys,
           f"model.params has keys {sorted(model.params)} with {what}, expected {sorted(keys)}")
    # Off the initial values: zero biases put the ReLU inputs of a fully dropped row on the
    # kink, and gamma = 1 would hide a forgotten gamma.
    for name, value in model.params.items():
        if name.startswith("b"):  # b and beta
            value += rng.normal(0.0, 0.2, value.shape)
        elif name.startswith("gamma"):
            value *= rng.uniform(0.5, 1.5, value.shape)
    loss, grads = model.loss(X, y)
    expect((np.isscalar(loss) or np.ndim(loss) == 0) and np.isfinite(loss),
           f"loss is {loss!r} with {what}, expected a finite number")
    expect(set(grads) == keys, f"grads has keys {sorted(grads)}, expected {sorted(keys)}")
    errors = assert_grads(
        [(k, grads[k], eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[k],
                                               verbose=False)) for k in sorted(keys)],
        NETWORK_GRAD_TOL, context=f" with {what}")
    model.reg = 0.0
    penalty = 0.5 * reg * sum(float(np.sum(v**2)) for k, v in model.params.items() if k[0] == "W")
    extra = loss - model.loss(X, y)[0]
    expect(math.isclose(extra, penalty, rel_tol=1e-9, abs_tol=1e-12),
           f"loss with reg = {reg} exceeds the loss with reg = 0 by {extra:.4g} ({what}), "
           f"expected 0.5 * reg * sum(W**2) over the weights = {penalty:.4g}")
    scores = require_array(model.loss(X), f"test-mode scores with {what}", (N, C))
    expect(np.array_equal(scores, model.loss(X)),
           f"two test-mode passes gave different scores with {what}: test mode must be "
           f"deterministic (dropout off, running statistics only read)")
    return max(errors.values())
