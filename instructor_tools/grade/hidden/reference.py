"""The grader's reference: plain, obviously-correct numpy, never released, never sandboxed.

Written from the equations (the conventions in README.md), not copied from the solution, so
that a bug in the solution does not hide itself. Everything is float64. Shapes: x: (N, D);
batch norm reduces over axis 0 (N), layer norm over axis 1 (D); variance is biased; eps
inside the square root; running = momentum * running + (1 - momentum) * batch statistic;
dropout's p is the KEEP probability and kept units are scaled by 1 / p.
"""
import numpy as np


def _normalize(x, axis, eps):
    """x_hat, inv_std of x over axis (biased variance)."""
    mu = x.mean(axis=axis, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axis, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    return (x - mu) * inv_std, inv_std


def batchnorm_train(x, gamma, beta, eps):
    """Returns out (N, D), mu (D,), var (D,), x_hat (N, D), inv_std (D,)."""
    x_hat, inv_std = _normalize(x, 0, eps)
    mu = x.mean(axis=0)
    var = ((x - mu) ** 2).mean(axis=0)
    return gamma * x_hat + beta, mu, var, x_hat, inv_std[0]


def batchnorm_test(x, gamma, beta, running_mean, running_var, eps):
    return gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta


def running_average(old, new, momentum):
    return momentum * old + (1 - momentum) * new


def norm_backward(dout, x_hat, inv_std, gamma, axis):
    """dx, dgamma, dbeta of out = gamma * x_hat + beta, x_hat normalized over axis.

    With g = dout * gamma and means over the normalized axis:
        dx = inv_std * (g - mean(g) - x_hat * mean(g * x_hat))
    """
    g = dout * gamma
    inv_std = inv_std if axis == 1 else np.reshape(inv_std, (1, -1))
    dx = inv_std * (g - g.mean(axis=axis, keepdims=True)
                    - x_hat * (g * x_hat).mean(axis=axis, keepdims=True))
    return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)


def layernorm(x, gamma, beta, eps):
    """Returns out (N, D), x_hat (N, D), inv_std (N, 1)."""
    x_hat, inv_std = _normalize(x, 1, eps)
    return gamma * x_hat + beta, x_hat, inv_std


def softmax_loss(scores, y):
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    N = scores.shape[0]
    loss = -log_probs[np.arange(N), y].mean()
    dscores = np.exp(log_probs)
    dscores[np.arange(N), y] -= 1
    return loss, dscores / N


def network_loss(params, X, y, normalization=None, masks=None, reg=0.0, eps=1e-5):
    """Loss and gradients of {affine - [norm] - relu - [dropout]} x (L-1) - affine - softmax.

    masks: None or one (N, d_i) array per hidden layer holding 0 or 1 / p (inverted dropout).
    Batch norm in training mode. Returns (loss, grads) with the keys of params.
    """
    L = sum(1 for k in params if k.startswith("W"))
    h = X.reshape(X.shape[0], -1)
    tape = []
    for i in range(1, L):
        a = h @ params[f"W{i}"] + params[f"b{i}"]
        record = {"h": h, "a": a}
        if normalization is not None:
            axis = 0 if normalization == "batchnorm" else 1
            x_hat, inv_std = _normalize(a, axis, eps)
            record.update(x_hat=x_hat, inv_std=inv_std)
            a = params[f"gamma{i}"] * x_hat + params[f"beta{i}"]
        record["pre_relu"] = a
        h = np.maximum(a, 0)
        if masks is not None:
            h = h * masks[i - 1]
        tape.append(record)
    scores = h @ params[f"W{L}"] + params[f"b{L}"]
    loss, dscores = softmax_loss(scores, y)
    loss += 0.5 * reg * sum(float((params[f"W{i}"] ** 2).sum()) for i in range(1, L + 1))

    grads = {f"W{L}": h.T @ dscores + reg * params[f"W{L}"], f"b{L}": dscores.sum(axis=0)}
    dh = dscores @ params[f"W{L}"].T
    for i in range(L - 1, 0, -1):
        record = tape[i - 1]
        if masks is not None:
            dh = dh * masks[i - 1]
        da = dh * (record["pre_relu"] > 0)
        if normalization is not None:
            axis = 0 if normalization == "batchnorm" else 1
            gamma = params[f"gamma{i}"]
            g = da * gamma
            x_hat, inv_std = record["x_hat"], record["inv_std"]
            grads[f"gamma{i}"] = (da * x_hat).sum(axis=0)
            grads[f"beta{i}"] = da.sum(axis=0)
            da = inv_std * (g - g.mean(axis=axis, keepdims=True)
                            - x_hat * (g * x_hat).mean(axis=axis, keepdims=True))
        grads[f"W{i}"] = record["h"].T @ da + reg * params[f"W{i}"]
        grads[f"b{i}"] = da.sum(axis=0)
        dh = da @ params[f"W{i}"].T
    return loss, grads
