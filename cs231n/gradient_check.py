"""Numerical gradients by centred differences, and the relative error used to compare:

    df/dx_i ~= (f(x + h e_i) - f(x - h e_i)) / (2 h)        error O(h ** 2)

Use float64: in float32 the rounding of f (about 1e-7 relative) divided by 2h = 2e-5 swamps
the result. x is perturbed IN PLACE one entry at a time and restored afterwards (also if f
raises), so f must read x afresh on each call.
"""
import numpy as np

from cs231n.validation import check_array, check_positive_finite, check_positive_int, check_shape

# CS231N's gradient checkers, and rel_error, which CS231N's notebooks define themselves.
__all__ = ["eval_numerical_gradient", "eval_numerical_gradient_array", "grad_check_sparse",
           "rel_error"]


def _perturbed(f, x, ix, h):
    """(f(x + h e_ix), f(x - h e_ix)) with x[ix] restored afterwards."""
    old = x[ix]
    try:
        x[ix] = old + h
        # Copy: f may return a buffer that the next call overwrites (or x itself).
        plus = np.array(f(x), copy=True)
        x[ix] = old - h
        minus = np.array(f(x), copy=True)
    finally:
        x[ix] = old
    return plus, minus


def eval_numerical_gradient(f, x, verbose=True, h=1e-5):
    """Numerical gradient at x (floating, any shape) of f, a function of one array returning
    a scalar (a loss). verbose prints each index and its entry.

    Returns grad, x's shape: grad[i] = (f(x + h e_i) - f(x - h e_i)) / (2 h).
    """
    check_array(x, "x", floating=True)
    h = check_positive_finite(h, "h")
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        plus, minus = _perturbed(f, x, ix, h)
        if plus.size != 1:
            raise ValueError(f"f: expected a scalar result, got an array of shape {plus.shape} "
                             "(use eval_numerical_gradient_array with an upstream gradient df)")
        grad[ix] = (plus.item() - minus.item()) / (2 * h)
        if verbose:
            print(ix, grad[ix])
    return grad


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """Numerical gradient of sum(f(x) * df) at x, for array-valued f: with out = f(x) and
    df = dL/dout, this is dL/dx, what a layer's backward pass must return.

    Use a random df: an all-ones df can hide bugs (batch norm's dx is then exactly zero).

    Returns grad, x's shape: grad[i] = sum((f(x + h e_i) - f(x - h e_i)) * df) / (2 h).
    """
    check_array(x, "x", floating=True)
    check_array(df, "df")
    h = check_positive_finite(h, "h")
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        plus, minus = _perturbed(f, x, ix, h)
        check_shape(plus, "f(x)", df.shape)
        grad[ix] = np.sum((plus - minus) * df) / (2 * h)
    return grad


def grad_check_sparse(f, x, analytic_grad, num_checks=10, h=1e-5):
    """Compare analytic_grad (x's shape) with the numerical gradient of the scalar f at
    num_checks entries drawn with np.random: prints both values and their relative error
    |numerical - analytic| / max(1e-8, |numerical| + |analytic|), one line per entry.
    """
    check_array(x, "x", floating=True)
    check_shape(check_array(analytic_grad, "analytic_grad"), "analytic_grad", x.shape)
    num_checks = check_positive_int(num_checks, "num_checks")
    h = check_positive_finite(h, "h")
    for _ in range(num_checks):
        ix = tuple(int(np.random.randint(m)) for m in x.shape)
        plus, minus = _perturbed(f, x, ix, h)
        grad_numerical = (plus.item() - minus.item()) / (2 * h)
        grad_analytic = float(analytic_grad[ix])
        error = abs(grad_numerical - grad_analytic) / max(
            1e-8, abs(grad_numerical) + abs(grad_analytic))
        print("numerical: %f analytic: %f, relative error: %e"
              % (grad_numerical, grad_analytic, error))


def rel_error(x, y):
    """Largest elementwise relative error of x and y (same shape), a Python float:

        max |x - y| / max(1e-8, |x| + |y|)

    0 means identical; a correct float64 gradient reaches about 1e-7 or less.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"x and y: expected the same shape, got {x.shape} and {y.shape}")
    if x.size == 0:
        return 0.0
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))
