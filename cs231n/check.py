"""Self-check of the pieces students implement: ``python -m cs231n.check [piece ...]``,
or in a notebook cell ``from cs231n.check import run_checks; run_checks(["dropout"])``:
one row per piece (piece | PASS/FAIL | hint), and a CheckReport returned. PIECES are in the
order the notebooks teach them, each needing only what comes before it. A piece not written
yet shows the function and notebook section to read; a failed property (cs231n.properties,
which the shipped tests check too) shows its message. A PASS hint reads the same on every
machine (the measured digits are in CheckResult.measured). Functions are looked up at call
time, so a monkeypatched piece is what gets checked.
"""
import argparse
import importlib
import re
import sys
from dataclasses import dataclass

import numpy as np

from cs231n import properties as prop
from cs231n.properties import GRAD_TOL, NETWORK_GRAD_TOL, CheckFailed, grad_error  # noqa: F401

_BN = "BatchNormalization.ipynb"
# Where each piece is taught, for hints when the exception does not say (the release's
# stubs do say: "<function>: not implemented yet; see <notebook>, section ...").
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


@dataclass
class CheckResult:
    piece: str
    passed: bool
    hint: str
    error: BaseException | None = None  # the exception raised by the student's code, if any
    measured: dict | None = None  # e.g. {"dx": 1.2e-10}: CPU-dependent, so not in the hint


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
        w = max([len("piece")] + [len(r.piece) for r in self.results])
        return "\n".join([f"{'piece':<{w}} | result | hint", f"{'-' * w}-|--------|-----"] + [
            f"{r.piece:<{w}} | {'PASS' if r.passed else 'FAIL':<6} | {r.hint}"
            for r in self.results])

    def __repr__(self):  # short, no address: a notebook cell ending in run_checks(...) shows it
        n_pass = sum(r.passed for r in self.results)
        return f"<CheckReport: {n_pass} passed, {len(self.results) - n_pass} failed>"


def _layers():
    return importlib.import_module("cs231n.layers")


def _summary(*error_dicts, tol=GRAD_TOL):
    """The largest errors per gradient, and the verdict in words that do not vary by CPU."""
    worst = {k: max(e.get(k, 0.0) for e in error_dicts) for k in error_dicts[0]}
    verb = "matches" if len(worst) == 1 else "match"
    return f"{', '.join(worst)} {verb} centred differences (rel error < {tol:.0e})", worst


def check_batchnorm_forward():
    forward, rng = _layers().batchnorm_forward, np.random.default_rng(231)
    prop.bn_train_statistics(forward, rng)
    prop.bn_running_averages(forward, rng, momentum=None)
    prop.bn_running_averages(forward, rng, momentum=0.7)
    prop.bn_test_mode(forward, rng)
    return "train statistics, running averages and test mode as documented"


def _check_norm_backward(name, shapes, seed):
    rng = np.random.default_rng(seed)
    return _summary(*(prop.norm_gradients(_layers(), name, N, D, rng) for N, D in shapes))


def check_batchnorm_backward(name="batchnorm_backward"):
    hint, errors = _check_norm_backward(name, ((8, 5), (4, 3)), 232)
    return hint + " (2 shapes)", errors


def check_layernorm():
    prop.layernorm_statistics(_layers().layernorm_forward, np.random.default_rng(233))
    hint, errors = _check_norm_backward("layernorm_backward", ((4, 7), (1, 5)), 233)
    return "per-example statistics as documented; " + hint, errors


def check_dropout():
    layers, rng = _layers(), np.random.default_rng(234)
    for p in (0.3, 0.75, 1.0):
        prop.dropout_modes(layers.dropout_forward, layers.dropout_backward, rng, p)
    hint, errors = _summary(prop.layer_gradients(  # through the fixed mask a seed gives
        lambda x: layers.dropout_forward(x, {"mode": "train", "p": 0.6, "seed": 11}),
        layers.dropout_backward, [rng.uniform(1.0, 2.0, (5, 6))], ["dx"], rng))
    return "kept fraction ~ p, mean of out ~ mean of x, test mode identity; " + hint, errors


def _check_network(configurations, seed):
    """Gradients and the L2 term of FullyConnectedNet, (normalization, keep) configurations."""
    from cs231n.classifiers.fc_net import FullyConnectedNet

    rng = np.random.default_rng(seed)
    worst = max(prop.network_gradients(FullyConnectedNet, n, k, rng, reg=0.7)
                for n, k in configurations)
    described = ", ".join((n or "no normalization") + ("" if k == 1 else f" + dropout keep p = {k}")
                          for n, k in configurations)
    return (f"{described}: gradients match centred differences (rel error < "
            f"{NETWORK_GRAD_TOL:.0e}); L2 term 0.5 * reg * sum(W**2)"), {"worst rel error": worst}


PIECES = {
    "batchnorm_forward": check_batchnorm_forward,
    "batchnorm_backward": check_batchnorm_backward,
    "batchnorm_backward_alt": lambda: check_batchnorm_backward("batchnorm_backward_alt"),
    # No layer norm and no dropout code: the notebook checks this piece before they exist.
    "network_batchnorm": lambda: _check_network(((None, 1), ("batchnorm", 1)), 235),
    "layernorm": check_layernorm,
    "network_layernorm": lambda: _check_network((("layernorm", 1),), 236),
    "dropout": check_dropout,
    "network_dropout": lambda: _check_network(
        ((None, 0.5), ("batchnorm", 0.75), ("layernorm", 0.75)), 237),
}
DEFAULT_PIECES = list(PIECES)  # what run_checks() and the command run without names

_NOT_IMPLEMENTED_RE = re.compile(r"^(?P<function>[\w.]+): not implemented yet; see (?P<where>.+)$")


def _hint_for_exception(piece, exc):
    message = " ".join(str(exc).split())
    if not isinstance(exc, NotImplementedError):
        return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    match = _NOT_IMPLEMENTED_RE.match(message)
    if match:  # name the function when it is not the piece (the backward stopped in forward)
        function = "" if match["function"] == piece else f": {match['function']}"
        return f"not implemented yet{function} (see {match['where']})"
    return f"not implemented yet (see {_NOTEBOOK[piece]}){': ' + message if message else ''}"


def run_one(piece):
    """Run one piece's check and return its CheckResult (never raises for the piece)."""
    try:
        with np.errstate(all="ignore"):  # overflow in a broken layer is a failed property
            outcome = PIECES[piece]()
    except CheckFailed as exc:
        return CheckResult(piece, False, str(exc))
    except Exception as exc:  # the student's code may raise anything: report, don't crash
        return CheckResult(piece, False, _hint_for_exception(piece, exc), exc)
    hint, measured = outcome if isinstance(outcome, tuple) else (outcome, None)
    return CheckResult(piece, True, hint, measured=measured)


def run_checks(names=None, file=None):
    """Check the named pieces and print the table (to file; sys.stdout by default, False:
    nowhere). names: a piece name, a list of them, or None for all. -> CheckReport"""
    names = DEFAULT_PIECES if names is None else [names] if isinstance(names, str) else list(names)
    unknown = [n for n in names if n not in PIECES]
    if unknown:
        raise ValueError(f"names: unknown piece(s) {unknown}; expected some of {list(PIECES)}")
    report = CheckReport([run_one(name) for name in names])
    if file is not False:
        print(report.table(), file=file or sys.stdout)
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m cs231n.check", epilog="pieces: " + ", ".join(PIECES),
        description="Check the pieces you implemented with properties and numerical "
        "gradients. Exit status 0 when every checked piece passes, 1 otherwise.")
    parser.add_argument("pieces", nargs="*", metavar="piece", help="pieces to check (default: all)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.pieces if n not in PIECES]
    if unknown:
        parser.error(f"unknown piece(s) {', '.join(unknown)}; choose from: {', '.join(PIECES)}")
    return 0 if run_checks(args.pieces or None).passed else 1


if __name__ == "__main__":
    sys.exit(main())
