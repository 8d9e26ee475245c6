"""PyTorch as an extra, optional oracle: batch norm and layer norm outputs and gradients
against torch.nn.functional in float64. Skipped when torch is not installed (it is never
a dependency of the bundle).

Convention differences, converted explicitly:
- torch's momentum weighs the NEW batch statistic: torch_momentum = 1 - our momentum;
- torch's running_var is updated with the UNBIASED batch variance (divide by N - 1),
  ours with the biased one (divide by N), so running_var is compared after rescaling.
"""
import numpy as np
import pytest

from cs231n.layers import (
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    dropout_forward,
    layernorm_backward,
    layernorm_forward,
)

torch = pytest.importorskip("torch")
F = torch.nn.functional

SHAPES = {"N2_D1": (2, 1), "N4_D5": (4, 5), "N64_D100": (64, 100), "N1_D7_ln_only": (1, 7)}
RTOL, ATOL = 1e-10, 1e-12


def make_inputs(shape, seed):
    rng = np.random.default_rng(seed)
    N, D = shape
    x = rng.standard_normal(shape) * rng.uniform(0.5, 3, D) + rng.uniform(-3, 3, D)
    return x, rng.standard_normal(D), rng.standard_normal(D), rng.standard_normal(shape)


def torch_grads(fn, x, gamma, beta, dout):
    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    out = fn(tx, tg, tb)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), tx.grad.numpy(), tg.grad.numpy(), tb.grad.numpy()


@pytest.mark.parametrize("eps", [1e-5, 1e-2], ids=["eps_1e-5", "eps_1e-2"])
@pytest.mark.parametrize("shape", [s for k, s in SHAPES.items() if "ln_only" not in k],
                         ids=[k for k in SHAPES if "ln_only" not in k])
def test_batchnorm_matches_torch(shape, eps):
    x, gamma, beta, dout = make_inputs(shape, seed=0)
    out, cache = batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": eps})
    expected = torch_grads(
        lambda tx, tg, tb: F.batch_norm(tx, None, None, tg, tb, training=True, eps=eps),
        x, gamma, beta, dout,
    )
    np.testing.assert_allclose(out, expected[0], rtol=RTOL, atol=ATOL)
    for backward in (batchnorm_backward, batchnorm_backward_alt):
        for ours, theirs in zip(backward(dout, cache), expected[1:]):
            np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL)


def test_batchnorm_running_stats_match_torch_after_conversion():
    rng = np.random.default_rng(1)
    N, D, momentum = 8, 4, 0.9
    bn_param = {"mode": "train", "momentum": momentum}
    running_mean = torch.zeros(D, dtype=torch.float64)
    running_var = torch.zeros(D, dtype=torch.float64)
    for _ in range(3):
        x = rng.standard_normal((N, D)) * 2 + 1
        batchnorm_forward(x, np.ones(D), np.zeros(D), bn_param)
        F.batch_norm(torch.tensor(x), running_mean, running_var, training=True,
                     momentum=1 - momentum)
    np.testing.assert_allclose(bn_param["running_mean"], running_mean.numpy(), rtol=1e-12)
    # Both started from 0 and average the batch variances with the same weights, so the
    # unbiased average is exactly N / (N - 1) times the biased one.
    np.testing.assert_allclose(bn_param["running_var"] * N / (N - 1), running_var.numpy(),
                               rtol=1e-12)


def test_batchnorm_test_mode_matches_torch_eval():
    rng = np.random.default_rng(2)
    D = 5
    x, gamma, beta, _ = make_inputs((6, D), seed=3)
    rm, rv = rng.standard_normal(D), rng.uniform(0.5, 2, D)
    out, _ = batchnorm_forward(x, gamma, beta, {"mode": "test", "running_mean": rm,
                                                "running_var": rv, "eps": 1e-3})
    expected = F.batch_norm(torch.tensor(x), torch.tensor(rm), torch.tensor(rv),
                            torch.tensor(gamma), torch.tensor(beta), training=False, eps=1e-3)
    np.testing.assert_allclose(out, expected.numpy(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("eps", [1e-5, 1e-2], ids=["eps_1e-5", "eps_1e-2"])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_layernorm_matches_torch(shape, eps):
    x, gamma, beta, dout = make_inputs(shape, seed=4)
    out, cache = layernorm_forward(x, gamma, beta, {"eps": eps})
    D = shape[1]
    expected = torch_grads(
        lambda tx, tg, tb: F.layer_norm(tx, (D,), tg, tb, eps=eps), x, gamma, beta, dout
    )
    np.testing.assert_allclose(out, expected[0], rtol=RTOL, atol=ATOL)
    for ours, theirs in zip(layernorm_backward(dout, cache), expected[1:]):
        np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL)


def test_dropout_scaling_matches_torch_convention():
    # torch's p is the DROP probability: torch p = 1 - our keep p; both must give kept
    # units the same factor. Masks come from different generators, so compare the factor.
    x = np.random.default_rng(5).uniform(1, 2, (50, 50))
    keep = 0.7
    ours, _ = dropout_forward(x, {"mode": "train", "p": keep, "seed": 0})
    torch.manual_seed(0)
    theirs = F.dropout(torch.tensor(x), p=1 - keep, training=True).numpy()
    torch_factor = (theirs[theirs != 0] / x[theirs != 0])[0]
    np.testing.assert_allclose(ours[ours != 0] / x[ours != 0], torch_factor, rtol=1e-15)
