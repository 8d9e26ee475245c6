"""Hidden tests: seeded inputs made here, raw outputs from the sandbox, verdicts made here.

Each HiddenTest has
- ``build(rng) -> (op, arrays)``: the operation the sandboxed worker runs on the student's
  package (a JSON-able dict, see worker.OPS) and its input arrays (float64), and
- ``judge(outputs, arrays) -> (passed, message)``: compares the arrays the worker
  returned (loaded with allow_pickle=False) with the reference (hidden/reference.py).

Inputs are seeded from the test's name, so a re-run grades the same inputs. Nothing of
this module is visible inside the sandbox; the worker only sees the op and the inputs.
Tolerances: float64 everywhere; a correct implementation differs from the reference by
rounding (about 1e-15 relative), the planted bugs by 1e-3 and more.
"""
import hashlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from instructor_tools.grade.hidden import reference as ref

RTOL = 1e-7  # relative error allowed against the reference (see rel_error)


def rel_error(actual, expected):
    """max |actual - expected| / max(max |expected|, 1e-8): one number per comparison."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        return np.inf
    if not np.all(np.isfinite(actual)):
        return np.inf
    if actual.size == 0:
        return 0.0
    return float(np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-8))


class Mismatch(Exception):
    """The message says which output differs, by how much, or what is missing."""


def _get(outputs, key):
    if key not in outputs:
        raise Mismatch(f"no value for {key!r} was returned")
    return outputs[key]


def _compare(outputs, key, expected, what, rtol=RTOL):
    actual = _get(outputs, key)
    if np.shape(actual) != np.shape(expected):
        raise Mismatch(f"{what}: shape {np.shape(actual)}, expected {np.shape(expected)}")
    err = rel_error(actual, expected)
    if not err <= rtol:
        raise Mismatch(f"{what}: relative error {err:.2e} against the reference "
                       f"(allowed {rtol:.0e})")


@dataclass
class HiddenTest:
    name: str
    function: str  # the graded function it exercises (for the feedback)
    description: str
    build: Callable
    judge: Callable

    def rng(self):
        seed = int.from_bytes(hashlib.sha256(self.name.encode()).digest()[:8], "little")
        return np.random.default_rng(seed)


def _data(rng, N, D):
    """(N, D) with per-feature offsets and scales far from 0 and 1."""
    return rng.standard_normal((N, D)) * rng.uniform(0.5, 3.0, D) + rng.uniform(-4, 4, D)


def _norm_params(rng, D):
    return rng.uniform(0.5, 2.0, D), rng.standard_normal(D)


# ---------------------------------------------------------------------------
# Batch norm
# ---------------------------------------------------------------------------

BN_TRAIN_SHAPES = ((8, 5), (2, 3), (31, 17))


def make_bn_train(shape):
    def build(rng):
        N, D = shape
        x = _data(rng, N, D)
        gamma, beta = _norm_params(rng, D)
        return ({"op": "forward_steps", "function": "batchnorm_forward",
                 "param": {"mode": "train", "eps": 1e-4},
                 "steps": [["x", "gamma", "beta"]]},
                {"x": x, "gamma": gamma, "beta": beta})

    def judge(out, arrays):
        expected = ref.batchnorm_train(arrays["x"], arrays["gamma"], arrays["beta"], 1e-4)[0]
        _compare(out, "out0", expected, f"train-mode output for x of shape {shape}")

    return build, judge


BN_RUNNING_MOMENTUM = 0.7


def bn_running_build(rng):
    D = 6
    arrays = {f"x{k}": _data(rng, 10, D) for k in range(3)}
    arrays["gamma"], arrays["beta"] = _norm_params(rng, D)
    op = {"op": "forward_steps", "function": "batchnorm_forward",
          "param": {"mode": "train", "momentum": BN_RUNNING_MOMENTUM},
          "steps": [[f"x{k}", "gamma", "beta"] for k in range(3)]}
    return op, arrays


def bn_running_judge(out, arrays):
    mean, var = np.zeros(6), np.zeros(6)
    for k in range(3):
        _, mu, v, _, _ = ref.batchnorm_train(arrays[f"x{k}"], arrays["gamma"], arrays["beta"],
                                             1e-5)
        mean = ref.running_average(mean, mu, BN_RUNNING_MOMENTUM)
        var = ref.running_average(var, v, BN_RUNNING_MOMENTUM)
        _compare(out, f"running_mean{k}", mean,
                 f"running_mean after {k + 1} training step(s) (momentum {BN_RUNNING_MOMENTUM})")
        _compare(out, f"running_var{k}", var,
                 f"running_var after {k + 1} training step(s) (momentum {BN_RUNNING_MOMENTUM})")


def bn_test_build(rng):
    D = 7
    arrays = {"x": _data(rng, 9, D), "running_mean": rng.standard_normal(D),
              "running_var": rng.uniform(0.2, 4.0, D)}
    arrays["gamma"], arrays["beta"] = _norm_params(rng, D)
    op = {"op": "forward_steps", "function": "batchnorm_forward",
          "param": {"mode": "test", "eps": 1e-3},
          "param_arrays": {"running_mean": "running_mean", "running_var": "running_var"},
          "steps": [["x", "gamma", "beta"]]}
    return op, arrays


def bn_test_judge(out, arrays):
    expected = ref.batchnorm_test(arrays["x"], arrays["gamma"], arrays["beta"],
                                  arrays["running_mean"], arrays["running_var"], 1e-3)
    _compare(out, "out0", expected, "test-mode output (from the running statistics)")
    _compare(out, "running_mean0", arrays["running_mean"], "running_mean after a test-mode call "
             "(must not change)", rtol=0)
    _compare(out, "running_var0", arrays["running_var"], "running_var after a test-mode call "
             "(must not change)", rtol=0)


def _norm_backward_case(rng, N, D, axis):
    x = _data(rng, N, D)
    gamma, beta = _norm_params(rng, D)
    if axis == 0:
        _, _, _, x_hat, inv_std = ref.batchnorm_train(x, gamma, beta, 1e-5)
    else:
        _, x_hat, inv_std = ref.layernorm(x, gamma, beta, 1e-5)
    return {"dout": rng.standard_normal((N, D)), "x_hat": x_hat, "inv_std": inv_std,
            "gamma": gamma}


def make_norm_backward(function, axis, shape):
    def build(rng):
        arrays = _norm_backward_case(rng, *shape, axis)
        return ({"op": "backward", "function": function, "dout": "dout",
                 "cache": {k: {"array": k} for k in ("x_hat", "inv_std", "gamma")},
                 "returns": ["dx", "dgamma", "dbeta"]}, arrays)

    def judge(out, arrays):
        dx, dgamma, dbeta = ref.norm_backward(arrays["dout"], arrays["x_hat"],
                                              arrays["inv_std"], arrays["gamma"], axis)
        for key, expected in (("dx", dx), ("dgamma", dgamma), ("dbeta", dbeta)):
            _compare(out, key, expected, f"{key} for shape {shape}")

    return build, judge


def bn_alt_alone_build(rng):
    op, arrays = make_norm_backward("batchnorm_backward_alt", 0, (12, 4))[0](rng)
    op.update(op="backward_alone", replace="batchnorm_backward")
    return op, arrays


def bn_alt_alone_judge(out, arrays):
    calls = int(_get(out, "replaced_calls"))
    if calls:
        raise Mismatch("batchnorm_backward_alt calls batchnorm_backward: the simplified "
                       "backward must compute its result in closed form itself")
    make_norm_backward("batchnorm_backward_alt", 0, (12, 4))[1](out, arrays)


# ---------------------------------------------------------------------------
# Layer norm
# ---------------------------------------------------------------------------


def make_ln_forward(shape):
    def build(rng):
        x = _data(rng, *shape)
        gamma, beta = _norm_params(rng, shape[1])
        return ({"op": "forward_steps", "function": "layernorm_forward",
                 "param": {"eps": 1e-4}, "steps": [["x", "gamma", "beta"]]},
                {"x": x, "gamma": gamma, "beta": beta})

    def judge(out, arrays):
        expected = ref.layernorm(arrays["x"], arrays["gamma"], arrays["beta"], 1e-4)[0]
        _compare(out, "out0", expected, f"output for x of shape {shape}")

    return build, judge


# ---------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------

DROPOUT_SHAPE = (400, 250)
DROPOUT_P = 0.3


def dropout_forward_build(rng):
    x = rng.uniform(1.0, 2.0, DROPOUT_SHAPE)  # no zeros: kept units are recognizable
    ops = {"op": "forward_steps", "function": "dropout_forward",
           "param": {"mode": "train", "p": DROPOUT_P, "seed": 12345},
           "steps": [["x"]]}
    return ops, {"x": x}


def _check_dropout_train(out, x, p):
    kept = out != 0
    if not np.allclose(out[kept], x[kept] / p, rtol=1e-12, atol=0):
        scale = float(np.median(out[kept] / x[kept])) if kept.any() else float("nan")
        raise Mismatch(f"train mode (p = {p} is the KEEP probability): kept units should be "
                       f"x / p = {1 / p:.4g} x, got {scale:.4g} x")
    fraction = kept.mean()
    sigma = np.sqrt(p * (1 - p) / x.size)
    if abs(fraction - p) > 6 * sigma:
        raise Mismatch(f"train mode: kept fraction {fraction:.4f}, expected about p = {p} "
                       f"(p is the probability of KEEPING a unit)")


def dropout_forward_judge(out, arrays):
    _check_dropout_train(_get(out, "out0"), arrays["x"], DROPOUT_P)


def make_dropout_mode(mode, p):
    def build(rng):
        return ({"op": "forward_steps", "function": "dropout_forward",
                 "param": {"mode": mode, "p": p, "seed": 7}, "steps": [["x"]]},
                {"x": rng.standard_normal((50, 40))})

    def judge(out, arrays):
        what = "test mode" if mode == "test" else f"train mode with p = {p}"
        _compare(out, "out0", arrays["x"], f"{what}: out must equal x", rtol=1e-15)

    return build, judge


def dropout_backward_build(rng):
    p = 0.6
    mask = (rng.random((30, 20)) < p) / p
    return ({"op": "backward", "function": "dropout_backward", "dout": "dout",
             "cache": {"mask": {"array": "mask"}, "shape": {"shape": [30, 20]}},
             "returns": ["dx"]},
            {"dout": rng.standard_normal((30, 20)), "mask": mask})


def dropout_backward_judge(out, arrays):
    _compare(out, "dx", arrays["dout"] * arrays["mask"], "dx = dout * mask", rtol=1e-14)


# ---------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------

NET = {"hidden_dims": [7, 6], "input_dim": 5, "num_classes": 4}


def make_net_init(normalization):
    def build(rng):
        return ({"op": "network", "init": {**NET, "normalization": normalization,
                                           "dtype": "float64", "seed": 3}}, {})

    def judge(out, arrays):
        dims = [NET["input_dim"], *NET["hidden_dims"], NET["num_classes"]]
        L = len(dims) - 1
        expected = {f"W{i}" for i in range(1, L + 1)} | {f"b{i}" for i in range(1, L + 1)}
        if normalization is not None:
            expected |= {f"gamma{i}" for i in range(1, L)} | {f"beta{i}" for i in range(1, L)}
        got = {k[len("param/"):] for k in out if k.startswith("param/")}
        if got != expected:
            missing, extra = sorted(expected - got), sorted(got - expected)
            raise Mismatch(f"normalization={normalization!r}: params keys differ "
                           f"(missing {missing}, unexpected {extra})")
        for i in range(1, L):
            if normalization is None:
                continue
            for name, value in ((f"gamma{i}", 1.0), (f"beta{i}", 0.0)):
                arr = out[f"param/{name}"]
                if arr.shape != (dims[i],) or not np.all(arr == value):
                    raise Mismatch(f"normalization={normalization!r}: {name} should be "
                                   f"{'ones' if value else 'zeros'} of shape ({dims[i]},), "
                                   f"got shape {arr.shape}")

    return build, judge


def _net_params(rng, normalization):
    dims = [NET["input_dim"], *NET["hidden_dims"], NET["num_classes"]]
    params = {}
    for i in range(1, len(dims)):
        params[f"W{i}"] = rng.standard_normal((dims[i - 1], dims[i])) * 0.7
        params[f"b{i}"] = rng.standard_normal(dims[i]) * 0.1
        if normalization is not None and i < len(dims) - 1:
            params[f"gamma{i}"], params[f"beta{i}"] = _norm_params(rng, dims[i])
    return params


NET_N = 9
NET_REG = 0.07


def make_net_loss(normalization, keep):
    def build(rng):
        params = _net_params(rng, normalization)
        arrays = {f"p_{k}": v for k, v in params.items()}
        arrays["X"] = rng.standard_normal((NET_N, NET["input_dim"])) * 2
        arrays["y"] = rng.integers(0, NET["num_classes"], NET_N)
        init = {**NET, "normalization": normalization, "dtype": "float64", "seed": 5,
                "reg": NET_REG, "dropout_keep_ratio": keep}
        return ({"op": "network", "init": init, "X": "X", "y": "y",
                 "params": {k: f"p_{k}" for k in params}}, arrays)

    def judge(out, arrays):
        params = {k[2:]: v for k, v in arrays.items() if k.startswith("p_")}
        masks = None
        if keep != 1:
            n_hidden = len(NET["hidden_dims"])
            found = [out.get(f"mask/{i}") for i in range(n_hidden)]
            if any(m is None for m in found):
                raise Mismatch(f"dropout (keep {keep}) was not applied after each of the "
                               f"{n_hidden} hidden layers")
            # The keep pattern the student's own dropout drew, with the 1 / p scaling.
            masks = [(np.asarray(m) != 0) / keep for m in found]
        loss, grads = ref.network_loss(params, arrays["X"], arrays["y"], normalization,
                                       masks, NET_REG)
        what = f"normalization={normalization!r}" + ("" if keep == 1 else f", keep={keep}")
        _compare(out, "loss", np.asarray(loss), f"{what}: loss")
        got = {k[len("grad/"):] for k in out if k.startswith("grad/")}
        if got != set(grads):
            raise Mismatch(f"{what}: grads keys {sorted(got)}, expected {sorted(grads)}")
        for key, expected in grads.items():
            _compare(out, f"grad/{key}", expected, f"{what}: grads['{key}']")

    return build, judge


def _test(name, function, description, pair):
    build, judge = pair
    return HiddenTest(name, function, description, build, judge)


TESTS = {t.name: t for t in [
    *[_test(f"bn_train_{N}x{D}", "batchnorm_forward",
            f"train-mode output, x of shape ({N}, {D})", make_bn_train((N, D)))
      for N, D in BN_TRAIN_SHAPES],
    _test("bn_running", "batchnorm_forward", "running mean and variance over 3 steps",
          (bn_running_build, bn_running_judge)),
    _test("bn_test", "batchnorm_forward", "test mode uses and keeps the running statistics",
          (bn_test_build, bn_test_judge)),
    _test("bn_backward", "batchnorm_backward", "dx, dgamma, dbeta (10 x 6)",
          make_norm_backward("batchnorm_backward", 0, (10, 6))),
    _test("bn_backward_small", "batchnorm_backward", "dx, dgamma, dbeta (2 x 3)",
          make_norm_backward("batchnorm_backward", 0, (2, 3))),
    _test("bn_backward_alt", "batchnorm_backward_alt", "dx, dgamma, dbeta (10 x 6)",
          make_norm_backward("batchnorm_backward_alt", 0, (10, 6))),
    _test("bn_backward_alt_small", "batchnorm_backward_alt", "dx, dgamma, dbeta (2 x 3)",
          make_norm_backward("batchnorm_backward_alt", 0, (2, 3))),
    _test("bn_backward_alt_alone", "batchnorm_backward_alt",
          "closed form without calling batchnorm_backward", (bn_alt_alone_build,
                                                             bn_alt_alone_judge)),
    _test("ln_forward", "layernorm_forward", "output, x of shape (6, 8)",
          make_ln_forward((6, 8))),
    _test("ln_forward_one", "layernorm_forward", "output, one example (1, 5)",
          make_ln_forward((1, 5))),
    _test("ln_backward", "layernorm_backward", "dx, dgamma, dbeta (7 x 9)",
          make_norm_backward("layernorm_backward", 1, (7, 9))),
    _test("dropout_train", "dropout_forward", "train mode: kept units x / p, kept fraction p",
          (dropout_forward_build, dropout_forward_judge)),
    _test("dropout_test", "dropout_forward", "test mode is the identity",
          make_dropout_mode("test", 0.4)),
    _test("dropout_keep_all", "dropout_forward", "p = 1 keeps everything",
          make_dropout_mode("train", 1.0)),
    _test("dropout_backward", "dropout_backward", "dx = dout * mask",
          (dropout_backward_build, dropout_backward_judge)),
    _test("net_init_batchnorm", "FullyConnectedNet.__init__",
          "batch norm: gamma ones, beta zeros per hidden layer", make_net_init("batchnorm")),
    _test("net_init_layernorm", "FullyConnectedNet.__init__",
          "layer norm: gamma ones, beta zeros per hidden layer", make_net_init("layernorm")),
    _test("net_init_none", "FullyConnectedNet.__init__", "no gamma/beta without normalization",
          make_net_init(None)),
    _test("net_batchnorm", "FullyConnectedNet.loss", "loss and grads with batch norm, reg",
          make_net_loss("batchnorm", 1)),
    _test("net_layernorm", "FullyConnectedNet.loss", "loss and grads with layer norm, reg",
          make_net_loss("layernorm", 1)),
    _test("net_dropout", "FullyConnectedNet.loss", "loss and grads with dropout keep 0.6, reg",
          make_net_loss(None, 0.6)),
]}


def build_all(names):
    """(ops, arrays) for the named tests: array keys are prefixed with '<test>/'."""
    ops, arrays = [], {}
    for name in names:
        test = TESTS[name]
        op, test_arrays = test.build(test.rng())
        op = _prefix(op, name)
        op["name"] = name
        ops.append(op)
        arrays.update({f"{name}/{k}": v for k, v in test_arrays.items()})
    return ops, arrays


def _prefix(op, name):
    """Rename every array reference of an op to the '<test>/' namespace."""
    op = dict(op)
    p = f"{name}/"
    if "steps" in op:
        op["steps"] = [[p + a for a in step] for step in op["steps"]]
    if "param_arrays" in op:
        op["param_arrays"] = {k: p + v for k, v in op["param_arrays"].items()}
    if "dout" in op:
        op["dout"] = p + op["dout"]
    if "cache" in op:
        op["cache"] = {k: ({"array": p + v["array"]} if "array" in v else v)
                       for k, v in op["cache"].items()}
    for key in ("X", "y"):
        if key in op:
            op[key] = p + op[key]
    if "params" in op:
        op["params"] = {k: p + v for k, v in op["params"].items()}
    return op


def judge(name, outputs, arrays):
    """(passed, message) for test name; arrays: this test's inputs (unprefixed)."""
    try:
        TESTS[name].judge(outputs, arrays)
    except Mismatch as exc:
        return False, str(exc)
    except (ValueError, TypeError, IndexError, KeyError, FloatingPointError) as exc:
        # Malformed returned values (wrong dtype or shape) are the submission's fault.
        return False, f"returned values could not be compared: {type(exc).__name__}: {exc}"
    return True, ""
