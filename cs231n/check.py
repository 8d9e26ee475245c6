"""Self-check of the pieces students implement: ``python -m cs231n.check [piece ...]``.

From a notebook cell::

    from cs231n.check import run_checks
    run_checks(["batchnorm_forward"])

prints one row per piece (piece | PASS/FAIL | hint) and returns a CheckReport. The
pieces, in the order the notebooks teach them; each needs only what comes before it:

    batchnorm_forward, batchnorm_backward, batchnorm_backward_alt,
    network_batchnorm   FullyConnectedNet without normalization and with batch norm
    layernorm           layernorm_forward and layernorm_backward
    network_layernorm   FullyConnectedNet with layer norm
    dropout             dropout_forward and dropout_backward
    network_dropout     FullyConnectedNet with dropout, alone and with each normalization
    network             the three network pieces in one row

A piece not written yet shows FAIL with the function and the notebook section to read.
A PASS hint reads the same on every machine (no measured digits; they are in
CheckResult.measured).

Every check uses only properties the documented conventions imply and numerical
gradients (cs231n.gradient_check), never a second implementation of the solution: this
file ships in the student release. The properties, for x: (N, D):

- batch norm, train mode: per feature (axis 0), the output has mean beta and standard
  deviation |gamma| * sqrt(var / (var + eps)) (biased var), and is an increasing affine
  function of x when gamma > 0; running = momentum * running + (1 - momentum) * batch
  statistic; test mode maps x = running_mean + z * sqrt(running_var + eps) to
  gamma * z + beta and leaves the running statistics alone.
- layer norm: the same per example (axis 1); examples never influence each other.
- dropout (p = KEEP probability): the kept fraction is about p, dropped units are exactly
  0, kept units are all x times one factor, the mean of the output over many units is
  close to the mean of x, cache['mask'] satisfies out = x * mask, test mode is the
  identity; the backward pass is checked against the forward pass it belongs to (the same
  mask), in test mode dx is dout.
- backward passes and the network: analytic gradients against centred differences
  in float64 with a random upstream gradient; the L2 term adds 0.5 * reg * sum(W**2).
  batchnorm_backward_alt must not call batchnorm_backward: it is the closed form.

When a property fails, the hint gives what was measured and, for the classic mistakes,
names the cause: a dropout output whose mean is off by a factor, dgamma from x instead of
x_hat, test mode with the batch's own statistics, an unbiased running variance, layer
norm over the batch axis, an alternative backward that calls the staged one.

The functions are looked up on their modules at call time, so a test (or a student
experimenting) can monkeypatch a piece and re-run the check (the network pieces call
FullyConnectedNet, which uses the functions cs231n.classifiers.fc_net imported).
"""
import argparse
import math
import re
import sys
import types
from dataclasses import dataclass

import numpy as np

# Largest error (see grad_error) a correct float64 analytic gradient shows against
# centred differences with h = 1e-5 on the inputs used here: measured below 1e-8 for the
# layers and 1e-7 for the networks over hundreds of random draws; wrong gradients give
# 1e-3 and more.
GRAD_TOL = 1e-7
NETWORK_GRAD_TOL = 1e-6
GRAD_FLOOR = 1e-3  # gradients smaller than this everywhere count as 0 (rounding noise)

# Where each piece is taught, for hints when the exception does not say (the release's
# stubs do say: "<function>: not implemented yet; see <notebook>, section ...").
_BN = "BatchNormalization.ipynb"
_NOTEBOOK = {
    "batchnorm_forward": f'{_BN}, section "Batch normalization: forward pass"',
    "batchnorm_backward": f'{_BN}, section "Batch normalization: backward pass"',
    "batchnorm_backward_alt": f'{_BN}, section "Batch normalization: alternative backward pass"',
    "network_batchnorm": f'{_BN}, section "Fully connected networks with batch normalization"',
    "layernorm": f'{_BN}, section "Layer normalization: implementation"',
    "network_layernorm": f'{_BN}, section "Layer normalization: implementation"',
    "dropout": 'Dropout.ipynb, sections "Dropout: forward pass" and "Dropout: backward pass"',
    "network_dropout": 'Dropout.ipynb, section "Fully connected networks with dropout"',
}


class CheckFailed(Exception):
    """A property did not hold; the message is the hint shown to the student."""


@dataclass
class CheckResult:
    piece: str
    passed: bool
    hint: str
    error: BaseException | None = None  # the exception raised by the student's code, if any
    # What a passing check measured, e.g. {"dx": 1.2e-10}: the largest gradient errors.
    # Kept out of the hint, whose text must not depend on the machine's floating-point
    # rounding (a notebook stores the printed table and compares it on other CPUs).
    measured: dict | None = None


@dataclass
class CheckReport:
    results: list

    @property
    def passed(self):
        return all(r.passed for r in self.results)

    def __getitem__(self, piece):
        for result in self.results:
            if result.piece == piece:
                return result
        raise KeyError(piece)

    def table(self):
        width = max([len("piece")] + [len(r.piece) for r in self.results])
        rows = [f"{'piece':<{width}} | result | hint", f"{'-' * width}-|--------|-----"]
        for r in self.results:
            rows.append(f"{r.piece:<{width}} | {'PASS' if r.passed else 'FAIL':<6} | {r.hint}")
        return "\n".join(rows)

    def __repr__(self):
        # Short and free of addresses: a notebook cell ending in run_checks(...) shows it.
        n_pass = sum(r.passed for r in self.results)
        return f"<CheckReport: {n_pass} passed, {len(self.results) - n_pass} failed>"


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------


def _layers():
    from cs231n import layers

    return layers


def _gradient_check():
    from cs231n import gradient_check

    return gradient_check


def _fmt(values):
    """A short human form of a scalar or vector: 0.53 or [0.53, -1.2, 0.07, ...]."""
    values = np.atleast_1d(np.asarray(values, dtype=np.float64)).ravel()
    shown = ", ".join(f"{v:.3g}" for v in values[:4])
    return shown if values.size == 1 else f"[{shown}{', ...' if values.size > 4 else ''}]"


def _require_array(value, what, shape):
    if not isinstance(value, np.ndarray):
        raise CheckFailed(f"{what} is a {type(value).__name__}, expected a numpy array")
    if value.shape != tuple(shape):
        raise CheckFailed(f"{what} has shape {value.shape}, expected {tuple(shape)}")
    if not np.all(np.isfinite(value)):
        raise CheckFailed(f"{what} holds NaN or inf")
    return value


def grad_error(analytic, numerical):
    """max |analytic - numerical| / max(max |analytic|, max |numerical|, GRAD_FLOOR).

    Relative to the gradient's largest entry rather than entry by entry (as rel_error
    is): an entry that should be 0, such as the bias before a batch norm, then shows
    the rounding noise of the centred difference (about 1e-11) as noise, not as 100 %.
    """
    analytic = np.asarray(analytic, dtype=np.float64)
    numerical = np.asarray(numerical, dtype=np.float64)
    scale = max(float(np.max(np.abs(analytic))), float(np.max(np.abs(numerical))), GRAD_FLOOR)
    return float(np.max(np.abs(analytic - numerical))) / scale


def _grad_errors(named_pairs, tol, context=""):
    """Compare (name, analytic, numerical) triples; fail on the first error above tol."""
    errors = {}
    for name, analytic, numerical in named_pairs:
        _require_array(analytic, name, numerical.shape)
        errors[name] = grad_error(analytic, numerical)
        if not errors[name] < tol:  # also catches NaN
            raise CheckFailed(f"{name} rel error {errors[name]:.1e}{context}, expected < {tol:.0e}")
    return errors


def _summary(errors, tol=GRAD_TOL):
    """The verdict on gradient errors in words that do not change from CPU to CPU."""
    verb = "matches" if len(errors) == 1 else "match"
    return f"{', '.join(errors)} {verb} centred differences (rel error < {tol:.0e})"


def _norm_data(rng, N, D):
    """x: (N, D) with per-feature means and scales far from 0 and 1, gamma > 0, beta."""
    x = rng.standard_normal((N, D)) * rng.uniform(0.5, 4.0, D) + rng.uniform(-5, 5, D)
    gamma = rng.uniform(0.5, 2.0, D)
    beta = rng.uniform(-2.0, 2.0, D)
    return x, gamma, beta


def _numerical_norm_grads(forward, x, gamma, beta, param_factory, dout):
    """Centred-difference dx, dgamma, dbeta of sum(forward(...)[0] * dout)."""
    num = _gradient_check().eval_numerical_gradient_array
    x, gamma, beta = x.copy(), gamma.copy(), beta.copy()
    dx = num(lambda v: forward(v, gamma, beta, param_factory())[0], x, dout)
    dgamma = num(lambda v: forward(x, v, beta, param_factory())[0], gamma, dout)
    dbeta = num(lambda v: forward(x, gamma, v, param_factory())[0], beta, dout)
    return dx, dgamma, dbeta


def _check_dgamma_source(dgamma, dgamma_num, x, dout, axis, context):
    """Name the classic mistake when dgamma is wrong: dout summed against x (or against
    the centred x - mu) instead of x_hat. axis: the axis the statistics reduce over (0 for
    batch norm, 1 for layer norm); dgamma itself always sums over the N examples."""
    if not isinstance(dgamma, np.ndarray) or dgamma.shape != dgamma_num.shape:
        return  # _grad_errors reports it
    if grad_error(dgamma, dgamma_num) < GRAD_TOL:
        return
    candidates = (
        ("sum(dout * x)", (dout * x).sum(axis=0)),
        ("sum(dout * (x - mu))", (dout * (x - x.mean(axis=axis, keepdims=True))).sum(axis=0)),
    )
    for formula, value in candidates:
        if grad_error(dgamma, value) < GRAD_TOL:
            raise CheckFailed(
                f"dgamma matches {formula}, not sum(dout * x_hat){context}: in the forward "
                f"pass gamma multiplies x_hat"
            )


# ---------------------------------------------------------------------------
# Batch normalization
# ---------------------------------------------------------------------------


def _check_bn_train_statistics(forward, rng, eps=1e-5):
    N, D = 64, 5
    x, gamma, beta = _norm_data(rng, N, D)
    out, _ = forward(x.copy(), gamma, beta, {"mode": "train", "eps": eps})
    _require_array(out, "train-mode output", (N, D))
    mean, std = out.mean(axis=0), out.std(axis=0)
    var = x.var(axis=0)
    if not np.allclose(mean, beta, rtol=0, atol=1e-9):
        raise CheckFailed(
            f"train-mode mean of output is {_fmt(mean)} per feature, expected beta = "
            f"{_fmt(beta)} (x - mu uses the batch mean over axis 0)"
        )
    expected_std = gamma * np.sqrt(var / (var + eps))
    if not np.allclose(std, expected_std, rtol=1e-9, atol=0):
        unbiased = gamma * np.sqrt(var / (x.var(axis=0, ddof=1) + eps))
        why = (
            "the variance divides by N - 1; the convention is the biased variance (divide "
            "by N)" if np.allclose(std, unbiased, rtol=1e-9) else
            "x_hat should have std sqrt(var / (var + eps)), about 1, per feature"
        )
        raise CheckFailed(
            f"train-mode std of output is {_fmt(std)} per feature, expected gamma * "
            f"sqrt(var / (var + eps)) = {_fmt(expected_std)}: {why}"
        )
    corr = [np.corrcoef(x[:, j], out[:, j])[0, 1] for j in range(D)]
    if not np.allclose(corr, 1.0, rtol=0, atol=1e-9):
        raise CheckFailed(
            f"train-mode output is not an increasing affine function of x per feature "
            f"(correlations {_fmt(corr)}, expected 1): each column must be normalized "
            f"with its own mean and std"
        )
    constant = np.tile(rng.standard_normal(D), (N, 1))
    out_const, _ = forward(constant, gamma, beta, {"mode": "train", "eps": eps})
    if not np.allclose(out_const, beta, rtol=0, atol=1e-9):
        raise CheckFailed(
            "a constant feature (variance 0) does not give output beta "
            f"(got {_fmt(out_const[0])}): eps belongs inside the square root"
        )


def _check_bn_running_averages(forward, rng, momentum):
    N, D, steps = 16, 4, 3
    param = {"mode": "train"}
    if momentum is not None:
        param["momentum"] = momentum
    m = 0.9 if momentum is None else momentum
    running_mean, running_var = np.zeros(D), np.zeros(D)
    inverted_mean, unbiased_var = np.zeros(D), np.zeros(D)
    for _ in range(steps):
        x, gamma, beta = _norm_data(rng, N, D)
        forward(x.copy(), gamma, beta, param)
        running_mean = m * running_mean + (1 - m) * x.mean(axis=0)
        running_var = m * running_var + (1 - m) * x.var(axis=0)
        inverted_mean = (1 - m) * inverted_mean + m * x.mean(axis=0)
        unbiased_var = m * unbiased_var + (1 - m) * x.var(axis=0, ddof=1)
    what = "default momentum 0.9" if momentum is None else f"momentum = {momentum}"
    for key, expected in (("running_mean", running_mean), ("running_var", running_var)):
        got = param.get(key)
        if not isinstance(got, np.ndarray) or got.shape != (D,):
            raise CheckFailed(f"bn_param[{key!r}] is not a ({D},) array after training steps")
        if not np.allclose(got, expected, rtol=1e-10, atol=1e-12):
            stat = "mean" if key == "running_mean" else "var"
            why = f"expected {key} = momentum * {key} + (1 - momentum) * sample_{stat}"
            if key == "running_mean" and np.allclose(got, inverted_mean, rtol=1e-10):
                why += " (momentum is applied inverted: it is the weight of the OLD value)"
            if key == "running_var" and np.allclose(got, unbiased_var, rtol=1e-10):
                why = ("running_var moved towards the unbiased variance (divides by N-1); "
                       "batch norm uses the biased one (divides by N), in the running "
                       "average too")
            raise CheckFailed(
                f"{key} after {steps} training steps ({what}, from zeros) is {_fmt(got)}, "
                f"expected {_fmt(expected)}: {why}"
            )


def _check_bn_test_mode(forward, rng, eps=1e-5):
    N, D = 8, 4
    gamma, beta = rng.uniform(0.5, 2.0, D), rng.uniform(-2, 2, D)
    running_mean, running_var = rng.uniform(-3, 3, D), rng.uniform(0.5, 4, D)
    z = rng.standard_normal((N, D))
    x = running_mean + z * np.sqrt(running_var + eps)
    param = {"mode": "test", "eps": eps,
             "running_mean": running_mean.copy(), "running_var": running_var.copy()}
    out, _ = forward(x, gamma, beta, param)
    _require_array(out, "test-mode output", (N, D))
    expected = gamma * z + beta
    with_batch_stats = gamma * (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps) + beta
    if np.allclose(out, with_batch_stats, rtol=1e-9, atol=1e-9):
        raise CheckFailed(
            "test mode used the batch's own statistics, not running_mean/running_var "
            "(in test mode an example's output must not depend on the rest of its batch)"
        )
    if not np.allclose(out, expected, rtol=1e-9, atol=1e-9):
        raise CheckFailed(
            "test-mode output is not gamma * (x - running_mean) / sqrt(running_var + eps) "
            f"+ beta (max abs error {np.max(np.abs(out - expected)):.2g}): test mode must use "
            "the running statistics, not the batch's"
        )
    if not (np.array_equal(param["running_mean"], running_mean)
            and np.array_equal(param["running_var"], running_var)):
        raise CheckFailed("test mode changed the running statistics; it must only read them")


def check_batchnorm_forward():
    forward = _layers().batchnorm_forward
    rng = np.random.default_rng(231)
    _check_bn_train_statistics(forward, rng)
    _check_bn_running_averages(forward, rng, momentum=None)
    _check_bn_running_averages(forward, rng, momentum=0.7)
    _check_bn_test_mode(forward, rng)
    return "train statistics, running averages and test mode as documented"


_STAGED = "batchnorm_backward"
_DELEGATES = (
    "batchnorm_backward_alt calls batchnorm_backward: write the closed form (derived in "
    f'{_BN}, section "Batch normalization: alternative backward pass")'
)


class _StagedCalled(Exception):
    """Raised by the stand-in for batchnorm_backward while batchnorm_backward_alt runs."""


def _code_names(code):
    """Global and attribute names a code object and the code nested in it use."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _refers_to_staged(function, layers):
    """Whether function's code names batchnorm_backward, directly or through an alias
    (a global or a closure variable holding that function)."""
    code = getattr(function, "__code__", None)
    if code is None:
        return False
    staged = getattr(layers, _STAGED, None)

    def is_staged(value):
        return value is not None and (
            value is staged or getattr(value, "__name__", None) == _STAGED
        )

    names = _code_names(code)
    if _STAGED in names:
        return True
    namespace = getattr(function, "__globals__", {})
    if any(is_staged(namespace.get(name)) for name in names):
        return True
    for cell in getattr(function, "__closure__", None) or ():
        try:
            if is_staged(cell.cell_contents):
                return True
        except ValueError:  # an empty cell
            pass
    return False


def _call_without_staged(layers, alt, dout, cache):
    """alt(dout, cache) with layers.batchnorm_backward replaced by a stand-in that fails."""

    def refused(*args, **kwargs):
        raise _StagedCalled

    saved = getattr(layers, _STAGED)
    setattr(layers, _STAGED, refused)
    try:
        return alt(dout, cache)
    except _StagedCalled:
        raise CheckFailed(_DELEGATES) from None
    finally:
        setattr(layers, _STAGED, saved)


def _check_bn_backward(backward_name):
    layers = _layers()
    backward = getattr(layers, backward_name)
    closed_form = backward_name == "batchnorm_backward_alt"
    if closed_form and _refers_to_staged(backward, layers):
        raise CheckFailed(_DELEGATES)
    rng = np.random.default_rng(232)
    all_errors = {}
    for N, D in ((8, 5), (4, 3)):
        x, gamma, beta = _norm_data(rng, N, D)
        dout = rng.standard_normal((N, D))
        _, cache = layers.batchnorm_forward(x.copy(), gamma, beta, {"mode": "train"})
        if closed_form:
            dx, dgamma, dbeta = _call_without_staged(layers, backward, dout.copy(), cache)
        else:
            dx, dgamma, dbeta = backward(dout.copy(), cache)
        numerical = _numerical_norm_grads(
            layers.batchnorm_forward, x, gamma, beta, lambda: {"mode": "train"}, dout
        )
        context = f" (N={N}, D={D})"
        _check_dgamma_source(dgamma, numerical[1], x, dout, 0, context)
        errors = _grad_errors(
            zip(("dx", "dgamma", "dbeta"), (dx, dgamma, dbeta), numerical), GRAD_TOL,
            context=context,
        )
        for k, v in errors.items():
            all_errors[k] = max(all_errors.get(k, 0.0), v)
    return _summary(all_errors) + " (2 shapes)", all_errors


def check_batchnorm_backward():
    return _check_bn_backward("batchnorm_backward")


def check_batchnorm_backward_alt():
    return _check_bn_backward("batchnorm_backward_alt")


# ---------------------------------------------------------------------------
# Layer normalization
# ---------------------------------------------------------------------------


def check_layernorm():
    layers = _layers()
    forward, backward = layers.layernorm_forward, layers.layernorm_backward
    rng = np.random.default_rng(233)
    eps = 1e-5
    N, D = 6, 16
    # Each example gets its own mean and scale, so normalizing over the wrong axis shows.
    x = rng.standard_normal((N, D)) * rng.uniform(0.5, 4, (N, 1)) + rng.uniform(-5, 5, (N, 1))
    ones, zeros = np.ones(D), np.zeros(D)
    plain, _ = forward(x.copy(), ones, zeros, {"eps": eps})
    _require_array(plain, "layernorm output", (N, D))
    mean, std = plain.mean(axis=1), plain.std(axis=1)
    var = x.var(axis=1)
    if not np.allclose(mean, 0.0, rtol=0, atol=1e-9):
        column_var = x.var(axis=0)
        if (np.allclose(plain.mean(axis=0), 0.0, rtol=0, atol=1e-9)
                and np.allclose(plain.std(axis=0), np.sqrt(column_var / (column_var + eps)),
                                rtol=1e-9, atol=0)):
            raise CheckFailed(
                "layer norm normalized over the batch axis (axis 0, one mean and variance "
                "per feature, as batch norm does); it normalizes each example over its D "
                "features (axis 1)"
            )
        raise CheckFailed(
            f"with gamma = 1, beta = 0 the mean of each example's output is {_fmt(mean)}, "
            f"expected 0 (layer norm normalizes each example over its D features, axis 1)"
        )
    expected_std = np.sqrt(var / (var + eps))
    if not np.allclose(std, expected_std, rtol=1e-9, atol=0):
        raise CheckFailed(
            f"with gamma = 1, beta = 0 the std of each example's output is {_fmt(std)}, "
            f"expected sqrt(var / (var + eps)) = {_fmt(expected_std)} (biased variance over D)"
        )
    gamma, beta = rng.uniform(0.5, 2.0, D), rng.uniform(-2, 2, D)
    out, _ = forward(x.copy(), gamma, beta, {"eps": eps})
    if not np.allclose(out, gamma * plain + beta, rtol=1e-12, atol=1e-12):
        raise CheckFailed("output is not gamma * x_hat + beta with gamma, beta per feature")
    single, _ = forward(x[2:3].copy(), gamma, beta, {"eps": eps})
    if not np.allclose(single[0], out[2], rtol=1e-12, atol=1e-12):
        raise CheckFailed(
            "an example's output changes with the other examples in the batch; layer norm "
            "must use only that example's own features"
        )
    for mode in ("train", "test"):
        moded, _ = forward(x.copy(), gamma, beta, {"eps": eps, "mode": mode})
        if not np.allclose(moded, out, rtol=1e-12, atol=1e-12):
            raise CheckFailed(f"ln_param mode {mode!r} changes the output; it must not")

    all_errors = {}
    for N, D in ((4, 7), (1, 5)):
        x, gamma, beta = _norm_data(rng, N, D)
        dout = rng.standard_normal((N, D))
        _, cache = forward(x.copy(), gamma, beta, {})
        grads = backward(dout.copy(), cache)
        numerical = _numerical_norm_grads(forward, x, gamma, beta, dict, dout)
        context = f" (N={N}, D={D})"
        if isinstance(grads, tuple) and len(grads) == 3:
            _check_dgamma_source(grads[1], numerical[1], x, dout, 1, context)
        errors = _grad_errors(
            zip(("dx", "dgamma", "dbeta"), grads, numerical), GRAD_TOL, context=context,
        )
        for k, v in errors.items():
            all_errors[k] = max(all_errors.get(k, 0.0), v)
    return "per-example statistics as documented; " + _summary(all_errors), all_errors


# ---------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------


def check_dropout():
    layers = _layers()
    forward, backward = layers.dropout_forward, layers.dropout_backward
    rng = np.random.default_rng(234)
    x = rng.uniform(1.0, 2.0, (400, 250))  # positive, so out != 0 exactly where kept
    for p in (0.3, 0.75):
        out, cache = forward(x.copy(), {"mode": "train", "p": p, "seed": 7})
        _require_array(out, f"train-mode output (p = {p})", x.shape)
        kept = out != 0
        fraction = kept.mean()
        # 5 binomial standard deviations: a correct layer fails this about once in 10^6.
        if abs(fraction - p) > 5 * math.sqrt(p * (1 - p) / x.size):
            raise CheckFailed(
                f"train-mode fraction of kept units is {fraction:.3f} for p = {p}, expected "
                f"about p (p is the probability of KEEPING a unit)"
            )
        factors = out[kept] / x[kept]
        factor = float(np.median(factors))
        if not np.allclose(factors, factor, rtol=1e-12, atol=0):
            raise CheckFailed(
                f"kept units are not all x times one factor in train mode (p = {p}): out / x "
                f"ranges from {factors.min():.3g} to {factors.max():.3g} where out != 0"
            )
        # The sum of the kept units fluctuates from mask to mask (binomial): its relative
        # standard deviation, and 5 of them as the tolerance.
        ratio = float(out.mean() / x.mean())
        spread = math.sqrt(p * (1 - p) * float(np.sum(x**2))) / (p * float(np.sum(x)))
        if not abs(ratio - 1) <= 5 * spread:
            raise CheckFailed(
                f"train-mode mean is {ratio:.2f}x the input's for p = {p} (kept units are "
                f"x * {factor:.3g}), expected about 1x: over many units the mean of out "
                f"should be close to the mean of x"
            )
        mask = cache.get("mask") if isinstance(cache, dict) else None
        if not (isinstance(mask, np.ndarray) and mask.shape == x.shape
                and np.allclose(x * mask, out, rtol=1e-12, atol=0)):
            raise CheckFailed(
                f"cache['mask'] is not an array with out = x * mask (p = {p}); see the cache "
                f"described in dropout_forward's docstring"
            )
        again, _ = forward(x.copy(), {"mode": "train", "p": p, "seed": 7})
        if not np.array_equal(again, out):
            raise CheckFailed("the same seed gave two different masks")
        other, _ = forward(x.copy(), {"mode": "train", "p": p, "seed": 8})
        if np.array_equal(other, out):
            raise CheckFailed("two different seeds gave the same mask")

        dout = rng.standard_normal(x.shape)
        dx = backward(dout.copy(), cache)
        _require_array(dx, f"train-mode dx (p = {p})", x.shape)
        # x > 0, so this says: dx is 0 where the unit was dropped and, where it was kept,
        # scaled from dout as out is from x.
        if not np.allclose(dx * x, dout * out, rtol=1e-12, atol=0):
            raise CheckFailed(
                f"train-mode dx does not follow the forward pass (p = {p}): dx * x should "
                f"equal dout * out elementwise; backward must reuse the forward pass's mask"
            )

        out_test, cache_test = forward(x.copy(), {"mode": "test", "p": p})
        _require_array(out_test, f"test-mode output (p = {p})", x.shape)
        if not np.array_equal(out_test, x):
            raise CheckFailed(
                f"test mode changed the input (p = {p}): the test-mode mean is "
                f"{out_test.mean() / x.mean():.2f}x the input's, largest change "
                f"{np.max(np.abs(out_test - x)):.2g}; in test mode out = x"
            )
        dx_test = backward(dout.copy(), cache_test)
        if not np.array_equal(np.asarray(dx_test), dout):
            raise CheckFailed("test-mode dx is not dout")

    out_all, _ = forward(x.copy(), {"mode": "train", "p": 1.0, "seed": 3})
    if not np.allclose(out_all, x, rtol=1e-15, atol=0):
        raise CheckFailed("p = 1 (keep everything) does not give out = x in train mode")

    # A numerical gradient too, through the fixed mask a seed gives.
    small = rng.uniform(1.0, 2.0, (5, 6))
    dout = rng.standard_normal(small.shape)
    param = {"mode": "train", "p": 0.6, "seed": 11}
    _, cache = forward(small, param)
    dx = backward(dout, cache)
    numerical = _gradient_check().eval_numerical_gradient_array(
        lambda v: forward(v, param)[0], small.copy(), dout
    )
    errors = _grad_errors([("dx", dx, numerical)], GRAD_TOL)
    hint = "kept fraction ~ p, mean of out ~ mean of x, test mode identity; "
    return hint + _summary(errors), errors


# ---------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------


def _network_class():
    from cs231n.classifiers import fc_net

    return fc_net.FullyConnectedNet


def _describe(normalization, keep):
    return f"normalization={normalization!r}, dropout_keep_ratio={keep}"


def _check_network_gradients(net_class, normalization, keep, rng):
    N, D, H1, H2, C = 5, 6, 7, 8, 4
    X = rng.standard_normal((N, D))
    y = rng.integers(C, size=N)
    model = net_class([H1, H2], input_dim=D, num_classes=C, normalization=normalization,
                      dropout_keep_ratio=keep, reg=0.0, weight_scale=5e-1,
                      dtype=np.float64, seed=231)
    expected_keys = {f"{kind}{i}" for i in (1, 2, 3) for kind in ("W", "b")}
    if normalization is not None:
        expected_keys |= {f"{kind}{i}" for i in (1, 2) for kind in ("gamma", "beta")}
    if set(model.params) != expected_keys:
        raise CheckFailed(
            f"model.params has keys {sorted(model.params)} with {_describe(normalization, keep)},"
            f" expected {sorted(expected_keys)}"
        )
    # Move every parameter off its initial value: zero biases put the ReLU inputs of a
    # fully dropped row exactly on the kink, and gamma = 1 would hide a forgotten gamma.
    for name, value in model.params.items():
        if name.startswith("b") or name.startswith("beta"):
            value += rng.normal(0.0, 0.2, value.shape)
        elif name.startswith("gamma"):
            value *= rng.uniform(0.5, 1.5, value.shape)
    loss, grads = model.loss(X, y)
    if not (np.isscalar(loss) or np.ndim(loss) == 0) or not np.isfinite(loss):
        raise CheckFailed(f"loss is {loss!r} with {_describe(normalization, keep)}, expected a "
                          f"finite number")
    if set(grads) != expected_keys:
        raise CheckFailed(f"grads has keys {sorted(grads)}, expected {sorted(expected_keys)}")
    num = _gradient_check().eval_numerical_gradient
    triples = []
    for name in sorted(expected_keys):
        f = lambda _: model.loss(X, y)[0]  # noqa: E731  reads model.params[name] in place
        triples.append((name, grads[name], num(f, model.params[name], verbose=False)))
    errors = _grad_errors(triples, NETWORK_GRAD_TOL,
                          context=f" with {_describe(normalization, keep)}")
    scores = model.loss(X)
    _require_array(scores, f"test-mode scores with {_describe(normalization, keep)}", (N, C))
    if not np.array_equal(scores, model.loss(X)):
        raise CheckFailed(
            f"two test-mode passes gave different scores with {_describe(normalization, keep)}"
            f": test mode must be deterministic (dropout off, running statistics only read)"
        )
    return max(errors.values())


def _check_network_reg(net_class, rng, normalization):
    N, D, H, C, reg = 5, 6, 7, 4, 0.7
    X = rng.standard_normal((N, D))
    y = rng.integers(C, size=N)
    model = net_class([H], input_dim=D, num_classes=C, normalization=normalization, reg=0.0,
                      weight_scale=5e-1, dtype=np.float64, seed=5)
    loss0, grads0 = model.loss(X, y)
    model.reg = reg
    loss_reg, grads_reg = model.loss(X, y)
    weights = [k for k in model.params if k.startswith("W")]
    penalty = 0.5 * reg * sum(float(np.sum(model.params[k] ** 2)) for k in weights)
    if not math.isclose(loss_reg - loss0, penalty, rel_tol=1e-9):
        raise CheckFailed(
            f"loss with reg = {reg} exceeds the loss with reg = 0 by {loss_reg - loss0:.4g} "
            f"(normalization={normalization!r}), expected 0.5 * reg * sum(W**2) over the weights = {penalty:.4g}"
        )
    for k in model.params:
        expected = grads0[k] + (reg * model.params[k] if k.startswith("W") else 0.0)
        if not np.allclose(grads_reg[k], expected, rtol=1e-9, atol=1e-12):
            raise CheckFailed(
                f"grads[{k!r}] with reg = {reg} and normalization={normalization!r} is not "
                f"the reg = 0 gradient "
                f"{'+ reg * ' + k if k.startswith('W') else '(only weights are penalized)'}"
            )


def _check_network_piece(configurations, rng, reg_normalizations):
    """Gradient checks of the (normalization, keep) configurations, then the L2 term."""
    net_class = _network_class()
    worst = 0.0
    for normalization, keep in configurations:
        worst = max(worst, _check_network_gradients(net_class, normalization, keep, rng))
    for normalization in reg_normalizations:
        _check_network_reg(net_class, rng, normalization)
    described = ", ".join(
        (n or "no normalization") + ("" if k == 1 else f" + dropout keep p = {k}")
        for n, k in configurations
    )
    hint = (f"{described}: gradients match centred differences (rel error < "
            f"{NETWORK_GRAD_TOL:.0e}); L2 term 0.5 * reg * sum(W**2)")
    return hint, {"worst rel error": worst}


def check_network_batchnorm():
    """The network without normalization and with batch norm; no layer norm, no dropout."""
    return _check_network_piece(((None, 1), ("batchnorm", 1)), np.random.default_rng(235),
                                (None, "batchnorm"))


def check_network_layernorm():
    return _check_network_piece((("layernorm", 1),), np.random.default_rng(236),
                                ("layernorm",))


def check_network_dropout():
    """Dropout alone and combined with each normalization."""
    return _check_network_piece(((None, 0.5), ("batchnorm", 0.75), ("layernorm", 0.75)),
                                np.random.default_rng(237), (None,))




# ---------------------------------------------------------------------------
# Running the checks
# ---------------------------------------------------------------------------

# In the order the notebooks teach them: each piece needs only what comes before it
# (network_batchnorm runs no layer norm and no dropout code).
PIECES = {
    "batchnorm_forward": check_batchnorm_forward,
    "batchnorm_backward": check_batchnorm_backward,
    "batchnorm_backward_alt": check_batchnorm_backward_alt,
    "network_batchnorm": check_network_batchnorm,
    "layernorm": check_layernorm,
    "network_layernorm": check_network_layernorm,
    "dropout": check_dropout,
    "network_dropout": check_network_dropout,
}
# What run_checks() and ``python -m cs231n.check`` run without names: every piece once.
DEFAULT_PIECES = list(PIECES)

_NOT_IMPLEMENTED_RE = re.compile(r"^(?P<function>[\w.]+): not implemented yet; see (?P<where>.+)$")


def _hint_for_exception(piece, exc):
    message = " ".join(str(exc).split())
    if isinstance(exc, NotImplementedError):
        match = _NOT_IMPLEMENTED_RE.match(message)
        if match:
            # Name the function when it is not the piece itself (e.g. the backward check
            # stopped in batchnorm_forward).
            function = "" if match["function"] == piece else f": {match['function']}"
            return f"not implemented yet{function} (see {match['where']})"
        return f"not implemented yet (see {_NOTEBOOK[piece]}){': ' + message if message else ''}"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def run_one(piece):
    """Run one piece's check and return its CheckResult (never raises for the piece)."""
    try:
        # Overflow or 0/0 in a broken layer shows up as a failed property, not a warning.
        with np.errstate(all="ignore"):
            outcome = PIECES[piece]()
    except CheckFailed as exc:
        return CheckResult(piece, False, str(exc))
    except Exception as exc:  # the student's code may raise anything: report, don't crash
        return CheckResult(piece, False, _hint_for_exception(piece, exc), exc)
    hint, measured = outcome if isinstance(outcome, tuple) else (outcome, None)
    return CheckResult(piece, True, hint, measured=measured)


def _normalize_names(names):
    if names is None:
        return list(DEFAULT_PIECES)
    if isinstance(names, str):
        names = [names]
    names = list(names)
    unknown = [n for n in names if n not in PIECES]
    if unknown:
        raise ValueError(
            f"names: unknown piece(s) {unknown}; expected some of {list(PIECES)}"
        )
    return names


def run_checks(names=None, file=None):
    """Check the named pieces (default: all), print the table, return a CheckReport.

    Inputs:
    - names: a piece name, a list of them, or None for DEFAULT_PIECES (every piece once)
    - file: where to print (default sys.stdout); False prints nothing
    """
    names = _normalize_names(names)
    report = CheckReport([run_one(name) for name in names])
    if file is not False:
        print(report.table(), file=file or sys.stdout)
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m cs231n.check",
        description="Check the pieces you implemented with properties and numerical "
        "gradients. Exit status 0 when every checked piece passes, 1 otherwise.",
        epilog="pieces: " + ", ".join(PIECES),
    )
    parser.add_argument("pieces", nargs="*", metavar="piece",
                        help="pieces to check (default: all)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.pieces if n not in PIECES]
    if unknown:
        parser.error(f"unknown piece(s) {', '.join(unknown)}; choose from: {', '.join(PIECES)}")
    report = run_checks(args.pieces or None)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
