"""The numerical-gradient helpers themselves, on functions with hand-known gradients."""
import re

import numpy as np
import pytest

from cs231n.gradient_check import (
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    grad_check_sparse,
    rel_error,
)


def cubic(x):
    """f(x) = sum(x ** 3) + 2 sum(x), gradient 3 x ** 2 + 2."""
    return float(np.sum(x**3) + 2 * np.sum(x))


@pytest.mark.parametrize("shape", [(1,), (5,), (3, 4), (2, 3, 2)], ids=str)
def test_eval_numerical_gradient_of_cubic(shape):
    x = np.random.default_rng(0).standard_normal(shape)
    grad = eval_numerical_gradient(cubic, x, verbose=False)
    # Centred difference of a cubic: error exactly h ** 2 per entry (third derivative 6).
    np.testing.assert_allclose(grad, 3 * x**2 + 2, rtol=0, atol=5e-10)


def test_eval_numerical_gradient_is_centred_not_forward():
    # f = x ** 2 at x = 1: centred gives 2 up to rounding, forward would give 2 + h.
    x = np.array([1.0])
    h = 1e-3
    grad = eval_numerical_gradient(lambda v: float(v[0] ** 2), x, verbose=False, h=h)
    np.testing.assert_allclose(grad, [2.0], rtol=0, atol=1e-12)


def test_eval_numerical_gradient_verbose_prints_each_index(capsys):
    x = np.array([[1.0, 2.0]])
    eval_numerical_gradient(lambda v: float(np.sum(v)), x, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("(0, 0)") and lines[1].startswith("(0, 1)")


def test_eval_numerical_gradient_array_is_vector_jacobian_product():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((4, 3))
    x = rng.standard_normal((3, 2))
    df = rng.standard_normal((4, 2))
    # f(x) = A @ x is linear, so d/dx sum(f(x) * df) = A.T @ df exactly (up to rounding).
    grad = eval_numerical_gradient_array(lambda v: A @ v, x, df)
    np.testing.assert_allclose(grad, A.T @ df, rtol=1e-9, atol=1e-10)


def test_functions_returning_x_itself_are_handled():
    # f returns its argument (a view of the buffer being perturbed): the helper must copy
    # f's result before perturbing again, or plus - minus would be 0.
    rng = np.random.default_rng(2)
    x = rng.standard_normal(5)
    df = rng.standard_normal(5)
    grad = eval_numerical_gradient_array(lambda v: v, x, df)
    np.testing.assert_allclose(grad, df, rtol=1e-9)


@pytest.mark.parametrize("helper", ["scalar", "array", "sparse"])
def test_x_restored_after_checking(helper):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 3))
    before = x.copy()
    if helper == "scalar":
        eval_numerical_gradient(cubic, x, verbose=False)
    elif helper == "array":
        eval_numerical_gradient_array(lambda v: v**2, x, np.ones((3, 3)))
    else:
        grad_check_sparse(cubic, x, 3 * x**2 + 2, num_checks=5)
    np.testing.assert_array_equal(x, before)


def test_x_restored_when_f_raises():
    x = np.array([1.0, 2.0, 3.0])
    calls = []

    def f(v):
        calls.append(v.copy())
        if len(calls) == 2:
            raise RuntimeError("boom")
        return float(v.sum())

    with pytest.raises(RuntimeError, match="boom"):
        eval_numerical_gradient(f, x, verbose=False)
    np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])
    # The failing call saw x[0] - h: the perturbation was in place, then undone.
    assert calls[1][0] < 1.0


def parse_sparse_output(text):
    pattern = r"numerical: (\S+) analytic: (\S+), relative error: (\S+)"
    return [tuple(float(v) for v in m) for m in re.findall(pattern, text)]


def test_grad_check_sparse_reports_small_error_for_correct_gradient(capsys):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 5))
    np.random.seed(0)
    grad_check_sparse(cubic, x, 3 * x**2 + 2, num_checks=7)
    rows = parse_sparse_output(capsys.readouterr().out)
    assert len(rows) == 7
    for numerical, analytic, error in rows:
        assert error < 1e-8
        np.testing.assert_allclose(numerical, analytic, rtol=1e-5)


def test_grad_check_sparse_reports_large_error_for_wrong_gradient(capsys):
    rng = np.random.default_rng(5)
    x = rng.uniform(1.0, 2.0, (3, 3))
    grad_check_sparse(cubic, x, 3 * x**2, num_checks=5)  # missing the + 2
    rows = parse_sparse_output(capsys.readouterr().out)
    assert len(rows) == 5
    # |(3x^2 + 2) - 3x^2| / (6x^2 + 2) >= 2 / 26 for x in [1, 2].
    assert all(error > 2 / 26 - 1e-6 for _, _, error in rows)


def test_grad_check_sparse_indices_follow_np_random_seed(capsys):
    x = np.arange(20.0).reshape(4, 5)
    for _ in range(2):
        np.random.seed(17)
        grad_check_sparse(cubic, x, 3 * x**2 + 2, num_checks=4)
    rows = parse_sparse_output(capsys.readouterr().out)
    assert rows[:4] == rows[4:]


REL_ERROR_CASES = {
    "identical": (np.array([1.0, -2.0]), np.array([1.0, -2.0]), 0.0),
    "opposite": (np.array([1.0]), np.array([-1.0]), 1.0),
    "one_zero": (np.array([0.0, 3.0]), np.array([0.0, 1.0]), 0.5),
    "both_zero_floor": (np.array([0.0]), np.array([1e-9]), 1e-9 / 1e-8),
    "scalars": (2.0, 2.0 + 2e-7, 2e-7 / (4.0 + 2e-7)),
}


@pytest.mark.parametrize("x, y, expected", REL_ERROR_CASES.values(), ids=REL_ERROR_CASES.keys())
def test_rel_error_hand_values(x, y, expected):
    np.testing.assert_allclose(rel_error(x, y), expected, rtol=1e-9, atol=0)


def test_rel_error_takes_the_maximum_entry():
    x = np.array([1.0, 1.0, 1.0])
    y = np.array([1.0, 1.1, 1.01])
    np.testing.assert_allclose(rel_error(x, y), 0.1 / 2.1, rtol=1e-12)


BAD_INPUTS = [
    pytest.param(lambda: eval_numerical_gradient(cubic, [1.0, 2.0]), TypeError,
                 r"x: expected a numpy array, got list", id="scalar-x-list"),
    pytest.param(lambda: eval_numerical_gradient(cubic, np.arange(3)), TypeError,
                 r"x: expected a floating-point array, got dtype int", id="scalar-x-int"),
    pytest.param(lambda: eval_numerical_gradient(cubic, np.ones(2), h=0.0), ValueError,
                 r"h: expected a finite number > 0, got 0.0", id="scalar-h-zero"),
    pytest.param(lambda: eval_numerical_gradient(lambda v: v, np.ones(2), verbose=False),
                 ValueError, r"f: expected a scalar result, got an array of shape \(2,\)",
                 id="scalar-f-returns-array"),
    pytest.param(lambda: eval_numerical_gradient_array(lambda v: v, np.ones(3), np.ones(2)),
                 ValueError, re.escape("f(x): expected shape (2,), got (3,)"),
                 id="array-df-shape"),
    pytest.param(lambda: grad_check_sparse(cubic, np.ones((2, 2)), np.ones(4)), ValueError,
                 re.escape("analytic_grad: expected shape (2, 2), got (4,)"),
                 id="sparse-grad-shape"),
    pytest.param(lambda: grad_check_sparse(cubic, np.ones(2), np.ones(2), num_checks=0),
                 ValueError, r"num_checks: expected an integer >= 1, got 0",
                 id="sparse-num-checks-zero"),
    pytest.param(lambda: rel_error(np.ones(3), np.ones(2)), ValueError,
                 re.escape("x and y: expected the same shape, got (3,) and (2,)"),
                 id="rel-error-shapes"),
]


@pytest.mark.parametrize("call, error, message", BAD_INPUTS)
def test_bad_input_raises_with_a_helpful_message(call, error, message):
    with pytest.raises(error, match=message):
        call()
