"""The boundary checks every module uses: each accepts what it documents and names the argument,
the expectation and what arrived when it refuses."""
import math

import numpy as np
import pytest

from cs231n import validation as v


@pytest.mark.parametrize(
    "call, error, fragments",
    [
        pytest.param(lambda: v.check_array([1, 2], "x"), TypeError, ["x", "numpy array", "list"], id="array-not-ndarray"),
        pytest.param(lambda: v.check_array(np.zeros((2, 3, 4)), "x", ndim=2, shape_doc="(N, D)"), ValueError, ["x", "2-D", "(N, D)", "(2, 3, 4)"], id="array-wrong-ndim"),
        pytest.param(lambda: v.check_array(np.zeros(3, dtype=int), "x", floating=True), TypeError, ["x", "floating", "int"], id="array-not-floating"),
        pytest.param(lambda: v.check_shape(np.zeros((2, 3)), "dout", (2, 4)), ValueError, ["dout", "(2, 4)", "(2, 3)"], id="shape-mismatch"),
        pytest.param(lambda: v.check_mode({"mode": "eval"}, "bn_param"), ValueError, ["bn_param['mode']", "'train' or 'test'", "'eval'"], id="mode-unknown"),
        pytest.param(lambda: v.check_mode({}, "bn_param"), ValueError, ["bn_param", "missing", "'mode'"], id="mode-missing"),
        pytest.param(lambda: v.check_real("0.5", "p"), TypeError, ["p", "real number", "str"], id="real-from-string"),
        pytest.param(lambda: v.check_real(True, "p"), TypeError, ["p", "bool"], id="real-from-bool"),
        pytest.param(lambda: v.check_positive_finite(0.0, "eps"), ValueError, ["eps", "> 0", "0.0"], id="eps-zero"),
        pytest.param(lambda: v.check_positive_finite(math.inf, "eps"), ValueError, ["eps", "finite", "inf"], id="eps-inf"),
        pytest.param(lambda: v.check_positive_finite(math.nan, "eps"), ValueError, ["eps", "nan"], id="eps-nan"),
        pytest.param(lambda: v.check_probability(0.0, "p"), ValueError, ["p", "(0, 1]", "0.0"], id="keep-prob-zero"),
        pytest.param(lambda: v.check_probability(1.5, "p"), ValueError, ["p", "(0, 1]", "1.5"], id="keep-prob-above-one"),
        pytest.param(lambda: v.check_probability(-0.1, "momentum", closed=True), ValueError, ["momentum", "[0, 1]", "-0.1"], id="closed-interval"),
        pytest.param(lambda: v.check_positive_int(2.0, "batch_size"), TypeError, ["batch_size", "integer", "float"], id="int-from-float"),
        pytest.param(lambda: v.check_positive_int(0, "batch_size"), ValueError, ["batch_size", ">= 1", "0"], id="int-zero"),
        pytest.param(lambda: v.check_choice("groupnorm", "normalization", [None, "batchnorm"]), ValueError, ["normalization", "batchnorm", "groupnorm"], id="choice-unknown"),
        pytest.param(lambda: v.check_same_length(np.zeros(3), "X_train", np.zeros(4), "y_train"), ValueError, ["X_train", "y_train", "3", "4"], id="lengths-differ"),
    ],
)
def test_refusal_names_argument_expectation_and_value(call, error, fragments):
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from {message!r}"


def test_accepted_values_come_back_unchanged_or_normalized():
    x = np.zeros((2, 3))
    assert v.check_array(x, "x", ndim=2, floating=True) is x
    assert v.check_shape(x, "x", (2, 3)) is x
    assert v.check_mode({"mode": "test"}, "bn_param") == "test"
    assert v.check_positive_finite(1e-5, "eps") == 1e-5
    assert v.check_probability(1, "p") == 1.0
    assert v.check_probability(0.0, "momentum", closed=True) == 0.0
    assert v.check_positive_int(np.int64(3), "n") == 3


def test_positive_means_at_least_one_and_nonnegative_allows_zero():
    with pytest.raises(ValueError, match=">= 1"):
        v.check_positive_int(0, "n")
    with pytest.raises(TypeError):
        v.check_positive_int(1, "n", minimum=0)  # no way to make "positive" accept 0
    assert v.check_nonnegative_int(0, "seed") == 0
    with pytest.raises(ValueError, match=">= 0"):
        v.check_nonnegative_int(-1, "seed")
    assert v.check_choice(None, "normalization", [None, "batchnorm"]) is None
    v.check_same_length(np.zeros(3), "X", np.zeros(3), "y")


def test_layer_checks_return_what_the_layer_needs_in_x_dtype():
    # Python floats and x's dtype: a numpy float64 eps or running statistic must not turn a
    # float32 layer into a float64 one.
    x = np.zeros((4, 3), dtype=np.float32)
    bn_param = {"mode": "train", "eps": np.float64(1e-3), "running_mean": np.ones(3)}
    mode, eps, momentum, running_mean, running_var = v.check_batchnorm_inputs(
        x, np.ones(3), np.zeros(3), bn_param)
    assert (mode, eps, momentum) == ("train", 1e-3, 0.9)
    assert type(eps) is float and type(momentum) is float
    assert running_mean.dtype == running_var.dtype == np.float32
    np.testing.assert_array_equal(running_var, np.zeros(3))
    assert v.check_norm_inputs(x, np.ones(3), np.zeros(3), {"mode": "anything"}, "ln_param") == 1e-5
    assert v.check_dropout_inputs({"mode": "test", "p": 1}) == ("test", 1.0)


def test_batchnorm_test_mode_leaves_bn_param_untouched_dtype_included():
    """The checks hand the layer float32 copies of float64 running statistics for a float32 x;
    test mode must still leave bn_param's own arrays in place (same objects, float64), as
    batchnorm_forward's docstring says. (Layer code outside the solution regions.)"""
    from cs231n.layers import batchnorm_forward

    rng = np.random.default_rng(3)
    mean, var = rng.standard_normal(4), rng.uniform(0.5, 2, 4)
    bn_param = {"mode": "test", "running_mean": mean, "running_var": var}
    x = rng.standard_normal((5, 4)).astype(np.float32)
    try:
        batchnorm_forward(x, np.ones(4, np.float32), np.zeros(4, np.float32), bn_param)
    except NotImplementedError:  # the student release: the region is theirs to write
        pytest.skip("batchnorm_forward not implemented")
    assert bn_param["running_mean"] is mean and bn_param["running_var"] is var
    assert bn_param["running_mean"].dtype == np.float64
    assert set(bn_param) == {"mode", "running_mean", "running_var"}
