"""Tests of the students' self-check (cs231n.check).

Broken pieces are planted in two ways: by wrapping the real functions (monkeypatching
cs231n.layers), and, for the classic mistakes, by editing a copy of cs231n/layers.py the
way a student would get it wrong and running the layer checks against that copy (see
``planted_layers``). Where the real functions raise NotImplementedError (a tree whose
solution regions are stubs), every test that needs them fails with that
NotImplementedError and nothing else (see ``require_implemented``).
"""
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

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
    """Classic dropout: kept units keep their value x, so the mean of out is p times x's."""
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


def _break_running_stat(key, update):
    """A breaker: batchnorm_forward whose training step sets bn_param[key] to
    update(old value, x, momentum)."""
    def breaker(monkeypatch):
        forward = layers.batchnorm_forward

        def forward_wrong(x, gamma, beta, bn_param):
            old = np.array(bn_param.get(key, np.zeros(x.shape[1])), copy=True)
            out, cache = forward(x, gamma, beta, bn_param)
            if bn_param["mode"] == "train":
                bn_param[key] = update(old, x, bn_param.get("momentum", 0.9))
            return out, cache

        monkeypatch.setattr(layers, "batchnorm_forward", forward_wrong)

    return breaker


# running_mean = (1 - momentum) * running_mean + momentum * mu.
break_momentum_inverted = _break_running_stat(
    "running_mean", lambda old, x, m: (1 - m) * old + m * x.mean(axis=0))
# running_var averages the unbiased variance (ddof=1), as PyTorch's does.
break_running_var_unbiased = _break_running_stat(
    "running_var", lambda old, x, m: m * old + (1 - m) * x.var(axis=0, ddof=1))


def break_alt_wrong(monkeypatch):
    """A closed form with a term gone wrong in dx."""
    alt = layers.batchnorm_backward_alt

    def alt_wrong(dout, cache):
        dx, dgamma, dbeta = alt(dout, cache)
        return dx + dout.mean(axis=0), dgamma, dbeta

    monkeypatch.setattr(layers, "batchnorm_backward_alt", alt_wrong)


def break_alt_calls_staged(monkeypatch):
    """The alternative backward hands the work to the staged one, found at call time under
    a name the code does not spell out (so only calling it can tell)."""
    name = "batchnorm_" + "backward"

    def alt_delegating(dout, cache):
        return getattr(layers, name)(dout, cache)

    monkeypatch.setattr(layers, "batchnorm_backward_alt", alt_delegating)


def break_alt_calls_staged_alias(monkeypatch):
    """The alternative backward calls the staged one through a module-level alias, so
    replacing layers.batchnorm_backward while it runs would not show it."""
    namespace = {"_staged": layers.batchnorm_backward}
    exec("def batchnorm_backward_alt(dout, cache):\n    return _staged(dout, cache)\n",
         namespace)
    monkeypatch.setattr(layers, "batchnorm_backward_alt", namespace["batchnorm_backward_alt"])


def break_dgamma_uses_centred_x(monkeypatch):
    """dgamma = sum(dout * (x - mu)), with x - mu recovered as x_hat / inv_std."""
    backward = layers.batchnorm_backward

    def backward_wrong_dgamma(dout, cache):
        dx, _, dbeta = backward(dout, cache)
        return dx, (dout * (cache["x_hat"] / cache["inv_std"])).sum(axis=0), dbeta

    monkeypatch.setattr(layers, "batchnorm_backward", backward_wrong_dgamma)


def break_test_mode_batch_statistics(monkeypatch):
    """Test mode normalizes with the batch's own mean and variance (the training path
    without touching the running averages)."""
    forward = layers.batchnorm_forward

    def forward_batch_stats(x, gamma, beta, bn_param):
        if bn_param["mode"] == "test":
            return forward(x, gamma, beta, {"mode": "train", "eps": bn_param.get("eps", 1e-5)})
        return forward(x, gamma, beta, bn_param)

    monkeypatch.setattr(layers, "batchnorm_forward", forward_batch_stats)


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
DELEGATES = "batchnorm_backward_alt calls batchnorm_backward: write the closed form"
BROKEN = [
    pytest.param(break_dgamma_uses_x, ["batchnorm_backward"],
                 ["dgamma matches sum(dout * x), not sum(dout * x_hat) (N=8, D=5)"],
                 id="dgamma-uses-x"),
    pytest.param(break_dgamma_uses_centred_x, ["batchnorm_backward"],
                 ["dgamma matches sum(dout * (x - mu)), not sum(dout * x_hat)"],
                 id="dgamma-uses-centred-x"),
    pytest.param(break_dropout_not_inverted, ["dropout"],
                 ["train-mode mean is 0.30x the input's", "kept units are x * 1"],
                 id="dropout-not-inverted"),
    pytest.param(break_momentum_inverted, ["batchnorm_forward"], ["running_mean", "inverted"],
                 id="momentum-inverted"),
    pytest.param(break_test_mode_batch_statistics, ["batchnorm_forward"],
                 ["test mode used the batch's own statistics, not running_mean/running_var"],
                 id="test-mode-batch-statistics"),
    pytest.param(break_running_var_unbiased, ["batchnorm_forward"],
                 ["running_var moved towards the unbiased variance (divides by N-1); batch "
                  "norm uses the biased one"], id="running-var-unbiased"),
    pytest.param(break_alt_wrong, ["batchnorm_backward_alt"],
                 ["dx rel error", "expected < 1e-07"], id="alt-wrong"),
    pytest.param(break_alt_calls_staged, ["batchnorm_backward_alt"], [DELEGATES],
                 id="alt-calls-staged"),
    pytest.param(break_alt_calls_staged_alias, ["batchnorm_backward_alt"], [DELEGATES],
                 id="alt-calls-staged-alias"),
    pytest.param(break_layernorm_over_batch, ["layernorm"],
                 ["layer norm normalized over the batch axis"], id="layernorm-over-batch"),
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
    # p = 0.3 first: classic dropout leaves kept units at x and the mean at 0.3 x. The hint
    # says what was measured, not what the factor should be (Dropout.ipynb asks that).
    assert hint == (
        "train-mode mean is 0.30x the input's for p = 0.3 (kept units are x * 1), expected "
        "about 1x: over many units the mean of out should be close to the mean of x"
    )


def test_dropout_hint_when_test_mode_changes_the_input(monkeypatch, require_implemented):
    require_implemented("dropout")
    forward = layers.dropout_forward

    def forward_scaled_at_test_time(x, dropout_param):
        out, cache = forward(x, dropout_param)
        return (out * dropout_param["p"] if dropout_param["mode"] == "test" else out), cache

    monkeypatch.setattr(layers, "dropout_forward", forward_scaled_at_test_time)
    hint = check.run_one("dropout").hint
    assert hint.startswith("test mode changed the input (p = 0.3): the test-mode mean is "
                           "0.30x the input's")


def test_dropout_hint_when_the_cache_mask_breaks_the_contract(monkeypatch, require_implemented):
    # dropout_backward is graded with caches whose mask satisfies out = x * mask.
    require_implemented("dropout")
    forward = layers.dropout_forward

    def forward_boolean_mask(x, dropout_param):
        out, cache = forward(x, dropout_param)
        if cache["mask"] is not None:
            cache = {**cache, "mask": cache["mask"] != 0}
        return out, cache

    monkeypatch.setattr(layers, "dropout_forward", forward_boolean_mask)
    hint = check.run_one("dropout").hint
    assert hint.startswith("cache['mask'] is not an array with out = x * mask (p = 0.3)")


# ---------------------------------------------------------------------------
# The classic mistakes, planted in a copy of cs231n/layers.py
# ---------------------------------------------------------------------------

LAYER_PIECES = ["batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt",
                "layernorm", "dropout"]
ALT_REGION = ('    ### BEGIN SOLUTION (BatchNormalization.ipynb: "Batch normalization: '
              'alternative backward pass")\n')
# dgamma's line in the staged backward, with the lines after it: the closed forms share the first.
STAGED_DGAMMA = "dgamma = (dout * x_hat).sum(axis=0)\n    dx_hat = dout * gamma\n    # x_hat = xc"


def planted_text(edits, append=""):
    """cs231n/layers.py with each (old, new) edit applied (old must occur once), and append."""
    text = Path(layers.__file__).read_text(encoding="utf-8")
    for old, new in edits:
        assert text.count(old) == 1, f"the solution no longer holds {old!r} once"
        text = text.replace(old, new)
    return text + append


def planted_layers(monkeypatch, tmp_path, edits, append=""):
    """planted_text imported as its own module; the self-check's layer pieces then run
    against it."""
    path = tmp_path / "planted_layers.py"
    path.write_text(planted_text(edits, append), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("planted_layers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(check, "_layers", lambda: module)
    return module


# (edits to layers.py, text appended to it, the piece that must fail, its hint's start)
MISTAKES = {
    "dropout-without-rescaling": (
        [("mask = (rng.random(x.shape) < p).astype(x.dtype) / p", "mask = (rng.random(x.shape) < p).astype(x.dtype) / 1")],
        "", "dropout", "train-mode mean is 0.30x the input's for p = 0.3 (kept units are x * 1)"),
    "dgamma-from-x": (
        [('        cache = {"x_hat": x_hat, "inv_std": inv_std, "gamma": gamma}\n',
          '        cache = {"x_hat": x_hat, "inv_std": inv_std, "gamma": gamma, "x": x}\n'),
         (STAGED_DGAMMA, STAGED_DGAMMA.replace("x_hat)", 'cache["x"])'))],
        "", "batchnorm_backward", "dgamma matches sum(dout * x), not sum(dout * x_hat)"),
    "dgamma-from-centred-x": (
        [(STAGED_DGAMMA, STAGED_DGAMMA.replace("x_hat)", "(x_hat / inv_std))"))],
        "", "batchnorm_backward", "dgamma matches sum(dout * (x - mu)), not sum(dout * x_hat)"),
    "test-mode-batch-statistics": (
        [("x_hat = (x - running_mean) / np.sqrt(running_var + eps)",
          "x_hat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps)")],
        "", "batchnorm_forward",
        "test mode used the batch's own statistics, not running_mean/running_var"),
    "running-var-unbiased": (
        [("running_var = momentum * running_var + (1 - momentum) * var\n",
          "running_var = momentum * running_var + (1 - momentum) * var * len(x) / (len(x) - 1)"
          "\n")],
        "", "batchnorm_forward",
        "running_var after 3 training steps (default momentum 0.9, from zeros) is "),
    "layernorm-over-batch-axis": (
        [("mu = x.mean(axis=1, keepdims=True)", "mu = x.mean(axis=0, keepdims=True)"),
         ("var = ((x - mu) ** 2).mean(axis=1, keepdims=True)",
          "var = ((x - mu) ** 2).mean(axis=0, keepdims=True)")],
        "", "layernorm", "layer norm normalized over the batch axis"),
    "alt-calls-staged": (
        [(ALT_REGION, ALT_REGION + "    return batchnorm_backward(dout, cache)\n")],
        "", "batchnorm_backward_alt", DELEGATES),
    "alt-calls-staged-through-an-alias": (
        [(ALT_REGION, ALT_REGION + "    return _staged(dout, cache)\n")],
        "\n_staged = batchnorm_backward\n", "batchnorm_backward_alt", DELEGATES),
}
# Where the hint must also say the cause further on (the start gives the figures).
CAUSES = {
    "running-var-unbiased": "running_var moved towards the unbiased variance (divides by N-1); "
                            "batch norm uses the biased one",
}


def test_unedited_copy_passes(monkeypatch, tmp_path, require_implemented):
    require_implemented(*LAYER_PIECES)
    planted_layers(monkeypatch, tmp_path, [])
    report = check.run_checks(LAYER_PIECES, file=False)
    assert report.passed, report.table()


@pytest.mark.parametrize("mistake", MISTAKES)
def test_classic_mistake_fails_naming_its_cause(mistake, monkeypatch, tmp_path,
                                                require_implemented):
    require_implemented(*LAYER_PIECES)
    edits, append, piece, hint_start = MISTAKES[mistake]
    planted_layers(monkeypatch, tmp_path, edits, append)
    report = check.run_checks(LAYER_PIECES, file=False)
    result = report[piece]
    assert not result.passed
    assert result.error is None, result.hint  # failed, not crashed
    assert result.hint.startswith(hint_start), result.hint
    assert CAUSES.get(mistake, "") in result.hint
    assert [r.piece for r in report.results if not r.passed] == [piece], report.table()


@pytest.mark.slow
@pytest.mark.parametrize("mistake", [None, *MISTAKES])
def test_shipped_tests_fail_on_each_classic_mistake(mistake, tmp_path, require_implemented):
    """The shipped tests of the layers, run on a copy of the package with the mistake planted
    in its layers.py, fail; on the unedited copy (None) they pass, which shows the copy is
    what they test."""
    require_implemented(*LAYER_PIECES)
    root = Path(layers.__file__).parents[1]
    for folder in ("cs231n", "tests"):
        shutil.copytree(root / folder, tmp_path / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    edits, append = MISTAKES[mistake][:2] if mistake else ([], "")
    (tmp_path / "cs231n" / "layers.py").write_text(planted_text(edits, append), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
         *(f"tests/test_{name}.py" for name in ("batchnorm", "layernorm", "dropout"))],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == (1 if mistake else 0), done.stdout[-3000:] + done.stderr[-2000:]


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
    assert out.count("| PASS ") == len(check.DEFAULT_PIECES) == len(PIECES)


def test_module_runs_as_a_command(require_implemented):
    require_implemented("dropout")
    done = subprocess.run(
        [sys.executable, "-m", "cs231n.check", "dropout"], capture_output=True, text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "dropout | PASS" in done.stdout
