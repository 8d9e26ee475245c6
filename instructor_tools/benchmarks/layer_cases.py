"""The layer cases of the benchmark: forward + backward of batch norm, layer norm and
dropout in numpy (cs231n.layers) and in PyTorch eager mode, the checks that both compute
the same thing, and the bytes each case must move at least.

Every case is float64 and runs forward then backward with a random upstream gradient
``dout`` (an all-ones dout would make batch norm's dx exactly zero).
"""
import numpy as np

from cs231n import layers

KEEP_P = 0.5  # dropout keep probability of the benchmark (the notebooks use 0.25 to 0.75)

# Tolerances of the numpy-vs-numpy and numpy-vs-torch comparisons (float64):
# |ours - theirs| <= RTOL * |theirs| + ATOL_SCALE * scale, scale = max|theirs| by default. The scaled absolute floor
# covers entries that are sums cancelling to nearly zero (each column of batch norm's dx
# sums to zero), whose relative error is meaningless.
RTOL = 1e-10
ATOL_SCALE = 1e-12


class BenchmarkError(RuntimeError):
    """A correctness check failed: the benchmark stops before timing anything."""


def make_inputs(shape, seed=0):
    """x (N, D) with a mean and scale per feature, gamma (D,), beta (D,), dout (N, D)."""
    rng = np.random.default_rng(seed)
    N, D = shape
    x = rng.standard_normal(shape) * rng.uniform(0.5, 3.0, D) + rng.uniform(-5.0, 5.0, D)
    gamma = rng.standard_normal(D)
    beta = rng.standard_normal(D)
    dout = rng.standard_normal(shape)
    return x, gamma, beta, dout


def assert_close(what, ours, theirs, scale=None):
    """Raise BenchmarkError unless ours matches theirs within RTOL / ATOL_SCALE.

    scale: the magnitude the absolute floor is relative to; default max|theirs|. Pass it
    for a result that is zero up to rounding, whose own maximum is rounding noise.
    """
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    if ours.shape != theirs.shape:
        raise BenchmarkError(f"{what}: shape {ours.shape}, expected {theirs.shape}")
    if scale is None:
        scale = float(np.max(np.abs(theirs))) if theirs.size else 0.0
    tolerance = RTOL * np.abs(theirs) + ATOL_SCALE * scale
    excess = np.abs(ours - theirs) - tolerance
    if not np.all(excess <= 0):  # also catches NaN
        worst = np.unravel_index(np.nanargmax(np.where(np.isnan(excess), np.inf, excess)),
                                 excess.shape)
        raise BenchmarkError(
            f"{what}: results differ beyond rtol={RTOL}, atol={ATOL_SCALE} * max|ref|; "
            f"worst at {tuple(int(i) for i in worst)}: {ours[worst]!r} vs {theirs[worst]!r}"
        )


# ---------------------------------------------------------------------------
# The timed functions
# ---------------------------------------------------------------------------


def numpy_cases(shape):
    """{case: zero-argument callable} of the numpy side at one shape.

    'batchnorm' uses the simplified backward (the one the network uses), 'batchnorm staged'
    the node-by-node one; the 'bwd' cases time a backward alone on one stored cache.
    """
    x, gamma, beta, dout = make_inputs(shape)
    bn_param = {"mode": "train"}  # the running statistics are updated on every call
    ln_param = {}
    dropout_param = {"mode": "train", "p": KEEP_P}  # no seed: a new mask every call
    _, bn_cache = layers.batchnorm_forward(x, gamma, beta, {"mode": "train"})

    def batchnorm():
        out, cache = layers.batchnorm_forward(x, gamma, beta, bn_param)
        return out, layers.batchnorm_backward_alt(dout, cache)

    def batchnorm_staged():
        out, cache = layers.batchnorm_forward(x, gamma, beta, bn_param)
        return out, layers.batchnorm_backward(dout, cache)

    def layernorm():
        out, cache = layers.layernorm_forward(x, gamma, beta, ln_param)
        return out, layers.layernorm_backward(dout, cache)

    def dropout():
        out, cache = layers.dropout_forward(x, dropout_param)
        return out, layers.dropout_backward(dout, cache)

    return {
        "batchnorm": batchnorm,
        "batchnorm staged": batchnorm_staged,
        "batchnorm bwd simplified": lambda: layers.batchnorm_backward_alt(dout, bn_cache),
        "batchnorm bwd staged": lambda: layers.batchnorm_backward(dout, bn_cache),
        "layernorm": layernorm,
        "dropout": dropout,
    }


def torch_cases(torch, shape):
    """{case: callable} of PyTorch eager mode (autograd) for 'batchnorm', 'layernorm',
    'dropout' at one shape; torch.autograd.grad returns the gradients without
    accumulating them into .grad, so nothing needs resetting between calls.
    """
    F = torch.nn.functional
    x, gamma, beta, dout = (torch.tensor(a) for a in make_inputs(shape))
    for leaf in (x, gamma, beta):
        leaf.requires_grad_(True)
    D = shape[1]
    # Running statistics as our batch norm keeps them (torch's momentum 0.1 is our 0.9).
    running_mean = torch.zeros(D, dtype=torch.float64)
    running_var = torch.ones(D, dtype=torch.float64)

    def batchnorm():
        out = F.batch_norm(x, running_mean, running_var, gamma, beta, training=True,
                           momentum=0.1, eps=1e-5)
        return out, torch.autograd.grad(out, (x, gamma, beta), dout)

    def layernorm():
        out = F.layer_norm(x, (D,), gamma, beta, eps=1e-5)
        return out, torch.autograd.grad(out, (x, gamma, beta), dout)

    def dropout():
        out = F.dropout(x, p=1 - KEEP_P, training=True)  # torch's p is the DROP probability
        return out, torch.autograd.grad(out, (x,), dout)

    return {"batchnorm": batchnorm, "layernorm": layernorm, "dropout": dropout}


# ---------------------------------------------------------------------------
# Correctness checks, run before anything is timed
# ---------------------------------------------------------------------------


def check_numpy(shape):
    """The staged and the simplified batch-norm backward agree on one cache."""
    x, gamma, beta, dout = make_inputs(shape, seed=1)
    _, cache = layers.batchnorm_forward(x, gamma, beta, {"mode": "train"})
    staged = layers.batchnorm_backward(dout, cache)
    simplified = layers.batchnorm_backward_alt(dout, cache)
    for name, ours, theirs in zip(("dx", "dgamma", "dbeta"), simplified, staged):
        assert_close(f"batchnorm {shape}: simplified vs staged backward {name}", ours, theirs)
    _check_dropout(f"numpy dropout {shape}", x, dout, *_numpy_dropout(x, dout))


def check_torch(torch, shape):
    """numpy vs torch: batch norm and layer norm outputs and gradients; dropout's
    properties on both sides (the two masks come from different generators)."""
    F = torch.nn.functional
    x, gamma, beta, dout = make_inputs(shape, seed=1)

    def torch_run(fn):
        tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
        out = fn(tx, tg, tb)
        grads = torch.autograd.grad(out, (tx, tg, tb), torch.tensor(dout))
        return [out.detach().numpy()] + [g.numpy() for g in grads]

    out, cache = layers.batchnorm_forward(x, gamma, beta, {"mode": "train"})
    expected = torch_run(lambda tx, tg, tb: F.batch_norm(tx, None, None, tg, tb,
                                                         training=True, eps=1e-5))
    for backward in (layers.batchnorm_backward, layers.batchnorm_backward_alt):
        ours = [out, *backward(dout, cache)]
        for name, a, b in zip(("out", "dx", "dgamma", "dbeta"), ours, expected):
            assert_close(f"batchnorm {shape} ({backward.__name__}) vs torch: {name}", a, b)

    out, cache = layers.layernorm_forward(x, gamma, beta, {})
    expected = torch_run(lambda tx, tg, tb: F.layer_norm(tx, (shape[1],), tg, tb, eps=1e-5))
    ours = [out, *layers.layernorm_backward(dout, cache)]
    for name, a, b in zip(("out", "dx", "dgamma", "dbeta"), ours, expected):
        assert_close(f"layernorm {shape} vs torch: {name}", a, b)

    tx = torch.tensor(x, requires_grad=True)
    t_out = F.dropout(tx, p=1 - KEEP_P, training=True)
    (t_dx,) = torch.autograd.grad(t_out, (tx,), torch.tensor(dout))
    _check_dropout(f"torch dropout {shape}", x, dout, t_out.detach().numpy(), t_dx.numpy())


def _numpy_dropout(x, dout):
    out, cache = layers.dropout_forward(x, {"mode": "train", "p": KEEP_P})
    return out, layers.dropout_backward(dout, cache)


def _check_dropout(what, x, dout, out, dx):
    """Inverted dropout: each unit is 0 or x / p, dx = dout / p exactly where kept and 0
    elsewhere, and the kept fraction lies within 6 standard deviations of p."""
    kept = out != 0
    assert_close(f"{what}: kept units are x / p", out[kept], x[kept] / KEEP_P)
    assert_close(f"{what}: dx = dout * mask / p", dx, np.where(kept, dout / KEEP_P, 0.0))
    n = x.size
    sigma = np.sqrt(KEEP_P * (1 - KEEP_P) / n)
    if abs(kept.mean() - KEEP_P) > 6 * sigma + 1 / n:
        raise BenchmarkError(f"{what}: kept fraction {kept.mean():.4f}, expected {KEEP_P}")


# ---------------------------------------------------------------------------
# The memory-traffic floor
# ---------------------------------------------------------------------------

# Arrays of x's size (N, D) that a forward + backward must move at least, per case:
# - batch/layer norm: forward reads x and writes out; backward reads dout and the saved
#   activation (x or x_hat: dgamma needs it element by element) and writes dx -> 5;
# - dropout: reads x, writes out, reads dout, writes dx -> 4 (the mask, 1 bit per unit
#   at the least, is not counted);
# - a backward alone: reads dout and x_hat, writes dx -> 3.
# The per-feature vectors (gamma, beta, mu, inv_std, ...) are negligible and not counted.
ARRAYS_MOVED = {
    "batchnorm": 5,
    "batchnorm staged": 5,
    "batchnorm bwd simplified": 3,
    "batchnorm bwd staged": 3,
    "layernorm": 5,
    "dropout": 4,
}


def floor_seconds(case, shape, bandwidth):
    """Minimum time of a case: the bytes it must move / the machine's copy bandwidth."""
    N, D = shape
    return ARRAYS_MOVED[case] * N * D * 8 / bandwidth
