"""Tests of the students' self-check (cs231n.check).

Broken pieces are built by wrapping the real functions (never by writing a second
solution here: this file ships in the student release). In the release, where the real
functions raise NotImplementedError, every test that needs them fails with that
NotImplementedError and nothing else (see ``require_implemented``).
"""
import re
import subprocess
import sys

import numpy as np
import pytest

from cs231n import check, layer_utils, layers
from cs231n.classifiers import fc_net

PIECES = list(check.PIECES)
NETWORK_PIECES = ["network_batchnorm", "network_layernorm", "network_dropout"]
NOT_IMPLEMENTED = (
    'batchnorm_forward: not implemented yet; see BatchNormalization.ipynb, section '
    '"Batch normalization: forward pass"'
)


@pytest.fixture(scope="module")
def real_report():
    return check.run_checks(PIECES, file=False)


@pytest.fixture
def require_implemented(real_report):
    """Re-raise the NotImplementedError of any unimplemented piece the test relies on."""

    def require(*pieces):
        for piece in pieces or check.DEFAULT_PIECES:
            if isinstance(real_report[piece].error, NotImplementedError):
                raise real_report[piece].error

    return require


@pytest.mark.parametrize("piece", PIECES)
def test_real_implementation_passes(piece, real_report, require_implemented):
    require_implemented(piece)
    result = real_report[piece]
    assert result.passed, result.hint
    assert result.hint  # a PASS row still tells the student what was checked


# ---------------------------------------------------------------------------
# Deliberately broken pieces, each wrapping the real ones
# ---------------------------------------------------------------------------


def break_dgamma_uses_x(monkeypatch):
    """dgamma = sum(dout * x) instead of sum(dout * x_hat)."""
    forward, backward, alt = (
        layers.batchnorm_forward, layers.batchnorm_backward, layers.batchnorm_backward_alt
    )

    def forward_keeping_x(x, gamma, beta, bn_param):
        out, cache = forward(x, gamma, beta, bn_param)
        return out, (cache, x.copy())

    def backward_wrong_dgamma(dout, cache):
        inner, x = cache
        dx, _, dbeta = backward(dout, inner)
        return dx, (dout * x).sum(axis=0), dbeta

    monkeypatch.setattr(layers, "batchnorm_forward", forward_keeping_x)
    monkeypatch.setattr(layers, "batchnorm_backward", backward_wrong_dgamma)
    monkeypatch.setattr(layers, "batchnorm_backward_alt", lambda dout, c: alt(dout, c[0]))


def break_dropout_not_inverted(monkeypatch):
    """Classic dropout: kept units keep x (no 1/p), so E[out] = p * x."""
    forward, backward = layers.dropout_forward, layers.dropout_backward

    def forward_classic(x, dropout_param):
        out, cache = forward(x, dropout_param)
        p = dropout_param["p"] if dropout_param["mode"] == "train" else 1.0
        return out * p, (cache, p)

    def backward_classic(dout, cache):
        inner, p = cache
        return backward(dout, inner) * p

    monkeypatch.setattr(layers, "dropout_forward", forward_classic)
    monkeypatch.setattr(layers, "dropout_backward", backward_classic)


def break_momentum_inverted(monkeypatch):
    """running_mean = (1 - momentum) * running_mean + momentum * mu."""
    forward = layers.batchnorm_forward

    def forward_inverted(x, gamma, beta, bn_param):
        old = np.array(bn_param.get("running_mean", np.zeros(x.shape[1])), copy=True)
        out, cache = forward(x, gamma, beta, bn_param)
        if bn_param["mode"] == "train":
            m = bn_param.get("momentum", 0.9)
            bn_param["running_mean"] = (1 - m) * old + m * x.mean(axis=0)
        return out, cache

    monkeypatch.setattr(layers, "batchnorm_forward", forward_inverted)


def break_alt_wrong(monkeypatch):
    """The staged backward copied as the alternative one, with a term gone wrong."""
    backward = layers.batchnorm_backward

    def alt_wrong(dout, cache):
        dx, dgamma, dbeta = backward(dout, cache)
        return dx + dout.mean(axis=0), dgamma, dbeta

    monkeypatch.setattr(layers, "batchnorm_backward_alt", alt_wrong)


def break_layernorm_over_batch(monkeypatch):
    """Layer norm that normalizes over the batch axis, i.e. batch norm in train mode."""
    bn_forward, bn_backward = layers.batchnorm_forward, layers.batchnorm_backward

    def forward_over_batch(x, gamma, beta, ln_param):
        return bn_forward(x, gamma, beta, {"mode": "train", "eps": ln_param.get("eps", 1e-5)})

    monkeypatch.setattr(layers, "layernorm_forward", forward_over_batch)
    monkeypatch.setattr(layers, "layernorm_backward", bn_backward)


def break_network_reg(monkeypatch):
    """A network whose loss forgets the L2 term (in the loss and in the gradients)."""
    loss = fc_net.FullyConnectedNet.loss

    def loss_without_reg(self, X, y=None):
        saved, self.reg = self.reg, 0.0
        try:
            return loss(self, X, y)
        finally:
            self.reg = saved

    monkeypatch.setattr(fc_net.FullyConnectedNet, "loss", loss_without_reg)


# (breaker, the pieces it breaks (the first one's hint is checked), parts of that hint)
BROKEN = [
    pytest.param(break_dgamma_uses_x, ["batchnorm_backward"],
                 ["dgamma rel error", "expected < 1e-07"], id="dgamma-uses-x"),
    pytest.param(break_dropout_not_inverted, ["dropout"],
                 ["kept units are x * 1", "expected x / p"], id="dropout-not-inverted"),
    pytest.param(break_momentum_inverted, ["batchnorm_forward"], ["running_mean", "inverted"],
                 id="momentum-inverted"),
    pytest.param(break_alt_wrong, ["batchnorm_backward_alt"],
                 ["dx rel error", "expected < 1e-07"], id="alt-wrong"),
    pytest.param(break_layernorm_over_batch, ["layernorm"],
                 ["mean of each example's output", "expected 0"], id="layernorm-over-batch"),
    pytest.param(break_network_reg, NETWORK_PIECES, ["reg = 0.7", "0.5 * reg * sum(W**2)"],
                 id="network-forgets-reg"),
]


@pytest.mark.parametrize("breaker, broken_pieces, hint_parts", BROKEN)
def test_broken_piece_fails_with_hint_others_pass(
    breaker, broken_pieces, hint_parts, monkeypatch, require_implemented
):
    require_implemented()
    breaker(monkeypatch)
    report = check.run_checks(file=False)
    result = report[broken_pieces[0]]
    assert not result.passed
    for part in hint_parts:
        assert part in result.hint
    assert all(report[piece].error is None for piece in broken_pieces)  # failed, not crashed
    failed = {r.piece for r in report.results if not r.passed}
    assert failed == set(broken_pieces)


def test_network_alias_fails_naming_the_piece_that_failed(monkeypatch, require_implemented):
    require_implemented()
    assert check.run_one("network").passed
    break_network_reg(monkeypatch)
    result = check.run_one("network")
    assert not result.passed
    assert result.hint.startswith("network_batchnorm: loss with reg = 0.7 exceeds")


def test_checks_leave_numpy_global_random_state_alone(require_implemented):
    # A self-check cell in a notebook must not change what later cells draw after an
    # earlier np.random.seed (the stored outputs of the training runs depend on it).
    require_implemented()
    np.random.seed(231)
    expected = np.random.random_sample(5)
    np.random.seed(231)
    check.run_checks(PIECES, file=False)
    np.testing.assert_array_equal(np.random.random_sample(5), expected)


# ---------------------------------------------------------------------------
# Each piece is checked as soon as it exists
# ---------------------------------------------------------------------------


def _patch_everywhere(monkeypatch, name, function):
    """Replace ``name`` in every module that holds it (fc_net and layer_utils import the
    layers by name, so patching cs231n.layers alone would not reach the network)."""
    patched = []
    for module in (layers, layer_utils, fc_net):
        if hasattr(module, name):
            monkeypatch.setattr(module, name, function)
            patched.append(module.__name__)
    assert patched, name


def _stub(function, section):
    """What the release puts in place of a solution region (instructor_tools.release)."""
    return _raise(NotImplementedError(
        f'{function}: not implemented yet; see BatchNormalization.ipynb, section "{section}"'
    ))


LATER = {  # written after the batch-norm network in the notebooks
    "layernorm_forward": "Layer normalization: implementation",
    "layernorm_backward": "Layer normalization: implementation",
    "dropout_forward": "Dropout: forward pass",
    "dropout_backward": "Dropout: backward pass",
}


def test_batchnorm_network_is_checked_before_layernorm_and_dropout_exist(
    monkeypatch, require_implemented
):
    require_implemented("batchnorm_forward", "batchnorm_backward_alt", "network_batchnorm")
    for name, section in LATER.items():
        _patch_everywhere(monkeypatch, name, _stub(name, section))
    report = check.run_checks(file=False)
    passed = [r.piece for r in report.results if r.passed]
    assert passed == ["batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt",
                      "network_batchnorm"]
    section = 'BatchNormalization.ipynb, section "Layer normalization: implementation"'
    assert report["layernorm"].hint == f"not implemented yet: layernorm_forward (see {section})"
    assert report["network_layernorm"].hint == (
        f"not implemented yet: layernorm_forward (see {section})"
    )
    assert report["dropout"].hint.startswith("not implemented yet: dropout_forward (see ")
    assert isinstance(report["network_dropout"].error, NotImplementedError)


def test_network_piece_not_implemented_names_the_method_and_section(monkeypatch):
    section = "Fully connected networks with batch normalization"
    _patch_everywhere(monkeypatch, "affine_norm_relu_forward",
                      _stub("FullyConnectedNet.loss", section))
    result = check.run_one("network_batchnorm")
    assert (result.passed, result.hint) == (False, (
        f'not implemented yet: FullyConnectedNet.loss (see BatchNormalization.ipynb, section '
        f'"{section}")'
    ))


@pytest.mark.parametrize("piece", PIECES)
def test_pass_hint_holds_no_measured_digits(piece, real_report, require_implemented):
    # A notebook stores the table and nbval compares it on other CPUs: a PASS row must
    # not print rounding noise such as "rel error 1e-10" (that lives in .measured).
    require_implemented(piece)
    result = real_report[piece]
    assert result.passed
    tolerances = {f"{check.GRAD_TOL:.0e}", f"{check.NETWORK_GRAD_TOL:.0e}"}
    assert set(re.findall(r"\d(?:\.\d+)?e[-+]\d+", result.hint)) <= tolerances, result.hint


def test_the_hint_gives_the_figure_that_failed(monkeypatch, require_implemented):
    require_implemented("dropout")
    break_dropout_not_inverted(monkeypatch)
    hint = check.run_one("dropout").hint
    # p = 0.3 first: classic dropout leaves kept units at x and the mean at 0.3 x.
    assert hint.startswith("kept units are x * 1 in train mode for p = 0.3, expected x / p = x * 3.33")
    assert "mean output is 0.30 x the mean input" in hint


# ---------------------------------------------------------------------------
# Exceptions from the student's code
# ---------------------------------------------------------------------------


def _raise(exc):
    def function(*args, **kwargs):
        raise exc

    return function


def test_not_implemented_is_reported_with_its_section(monkeypatch):
    monkeypatch.setattr(layers, "batchnorm_forward", _raise(NotImplementedError(NOT_IMPLEMENTED)))
    report = check.run_checks(["batchnorm_forward", "batchnorm_backward"], file=False)
    section = 'BatchNormalization.ipynb, section "Batch normalization: forward pass"'
    assert report["batchnorm_forward"].hint == f"not implemented yet (see {section})"
    # The backward check stops in the forward pass: the hint names that function.
    assert report["batchnorm_backward"].hint == (
        f"not implemented yet: batchnorm_forward (see {section})"
    )
    assert not report.passed


def test_bare_not_implemented_points_at_the_notebook(monkeypatch):
    monkeypatch.setattr(layers, "dropout_forward", _raise(NotImplementedError()))
    result = check.run_one("dropout")
    assert (result.passed, result.hint) == (False, (
        'not implemented yet (see Dropout.ipynb, sections "Dropout: forward pass" and '
        '"Dropout: backward pass")'
    ))


@pytest.mark.parametrize("exc, hint", [
    (ValueError("x: expected a 2-D array of shape (N, D), got shape (3,)"),
     "ValueError: x: expected a 2-D array of shape (N, D), got shape (3,)"),
    (IndexError("index 5 is out of bounds\nfor axis 0"),
     "IndexError: index 5 is out of bounds for axis 0"),
    (ZeroDivisionError(), "ZeroDivisionError"),
], ids=["ValueError", "multi-line-message", "no-message"])
def test_other_exceptions_show_type_and_message(exc, hint, monkeypatch):
    monkeypatch.setattr(layers, "layernorm_forward", _raise(exc))
    result = check.run_one("layernorm")
    assert (result.passed, result.hint, result.error) == (False, hint, exc)


def test_wrong_shape_is_a_failure_not_a_crash(monkeypatch):
    monkeypatch.setattr(layers, "dropout_forward", lambda x, p: (x[:1], None))
    result = check.run_one("dropout")
    assert not result.passed
    assert result.hint == "train-mode output (p = 0.3) has shape (1, 250), expected (400, 250)"


# ---------------------------------------------------------------------------
# Table, API and command line
# ---------------------------------------------------------------------------


def test_table_has_one_row_per_piece(monkeypatch, capsys):
    monkeypatch.setattr(layers, "dropout_forward", _raise(NotImplementedError()))
    report = check.run_checks("dropout")
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "piece   | result | hint",
        "--------|--------|-----",
        'dropout | FAIL   | not implemented yet (see Dropout.ipynb, sections "Dropout: '
        'forward pass" and "Dropout: backward pass")',
    ]
    # What a notebook cell ending in run_checks(...) displays: no address, no array.
    assert repr(report) == "<CheckReport: 0 passed, 1 failed>"


def test_unknown_piece_in_python_names_the_pieces():
    with pytest.raises(ValueError, match=r"unknown piece\(s\) \['batchnorm'\]; expected some of"):
        check.run_checks(["batchnorm"], file=False)


@pytest.mark.parametrize("argv", [["batchnorm"], ["dropout", "nope"]], ids=["one", "mixed"])
def test_cli_unknown_piece_is_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        check.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: python -m cs231n.check" in err
    assert "choose from: " + ", ".join(PIECES) in err


def test_cli_exit_status_is_1_when_a_piece_fails(monkeypatch, capsys):
    # The first function the check calls, so that the release (where dropout_forward is
    # not implemented yet) shows the same.
    monkeypatch.setattr(layers, "dropout_forward", _raise(RuntimeError("boom")))
    assert check.main(["dropout"]) == 1
    assert "dropout | FAIL   | RuntimeError: boom" in capsys.readouterr().out


def test_cli_exit_status_is_0_when_all_pass(require_implemented, capsys):
    require_implemented()
    assert check.main([]) == 0
    out = capsys.readouterr().out
    # Every piece once: "network" (the three network pieces in one row) is not repeated.
    assert out.count("| PASS ") == len(check.DEFAULT_PIECES) == len(PIECES) - 1


def test_module_runs_as_a_command(require_implemented):
    require_implemented("dropout")
    done = subprocess.run(
        [sys.executable, "-m", "cs231n.check", "dropout"], capture_output=True, text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "dropout | PASS" in done.stdout
