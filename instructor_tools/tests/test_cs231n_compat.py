"""Code written for CS231N's own starter runs on this package unchanged.

The notebook built here is written the way CS231N's BatchNormalization.ipynb and
Dropout.ipynb are: star imports (``from cs231n.classifiers.fc_net import *`` gives the
layers, because CS231N's fc_net re-exports them), the notebook's own ``rel_error`` and
``print_mean_std``, its check cells (batch-norm statistics before and after, running
averages in test mode, gradient checks with eval_numerical_gradient_array, the
FullyConnectedNet gradient-check loop over regs and keep ratios) and a short Solver run.
It is executed with nbclient against the package; no cell may raise or write to stderr,
and every relative error it prints must be small.

Data: the installed CIFAR-10 (sample or full) when present, else synthetic images with the
same keys and shapes. Runs in about 10 s.
"""
import re
import textwrap

import nbformat
import numpy as np
import pytest

from cs231n.data_utils import DEFAULT_CIFAR10_DIR, TEST_BATCH, TRAIN_BATCHES

nbclient = pytest.importorskip("nbclient")

HAVE_CIFAR10 = all((DEFAULT_CIFAR10_DIR / name).is_file() for name in (*TRAIN_BATCHES, TEST_BATCH))

SETUP = """
# As in CS231N's setup cell.
import time
import numpy as np
import matplotlib.pyplot as plt
from cs231n.classifiers.fc_net import *
from cs231n.data_utils import get_CIFAR10_data
from cs231n.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array
from cs231n.solver import Solver

plt.rcParams['figure.figsize'] = (10.0, 8.0)

def rel_error(x, y):
    \"\"\" returns relative error \"\"\"
    return np.max(np.abs(x - y) / (np.maximum(1e-8, np.abs(x) + np.abs(y))))

def print_mean_std(x,axis=0):
    print(f"  means: {x.mean(axis=axis)}")
    print(f"  stds:  {x.std(axis=axis)}\\n")
"""

LAYER_NAMES = [
    "affine_forward", "affine_backward", "relu_forward", "relu_backward", "softmax_loss",
    "batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt",
    "layernorm_forward", "layernorm_backward", "dropout_forward", "dropout_backward",
]
SANDWICH_NAMES = ["affine_relu_forward", "affine_relu_backward"]
CHECKER_NAMES = ["eval_numerical_gradient", "eval_numerical_gradient_array", "grad_check_sparse"]

# Right after the setup cell: what the fc_net star import alone gave.
FC_NET_NAMES = f"""
print('missing:', [n for n in {LAYER_NAMES + SANDWICH_NAMES!r} if n not in globals()])
"""

# Last: each module's star import on its own, in a fresh namespace.
OTHER_STAR_IMPORTS = f"""
for module, names in [('cs231n.layers', {LAYER_NAMES!r}),
                      ('cs231n.layer_utils', {SANDWICH_NAMES + LAYER_NAMES!r}),
                      ('cs231n.gradient_check', {CHECKER_NAMES!r})]:
    namespace = {{}}
    exec(f'from {{module}} import *', namespace)
    print(module, 'missing:', [n for n in names if n not in namespace])
"""

DATA_CIFAR = """
# CS231N calls get_CIFAR10_data() with its defaults (49000 training images); the sample
# installed here has 5000, so ask for fewer.
data = get_CIFAR10_data(num_training=1000, num_validation=200, num_test=200)
for k, v in list(data.items()):
    print(f"{k}: {v.shape}")
"""

DATA_SYNTHETIC = """
rng = np.random.RandomState(0)
data = {}
for split, n in (('train', 1000), ('val', 200), ('test', 200)):
    data['X_' + split] = rng.randn(n, 3, 32, 32) * 60
    data['y_' + split] = rng.randint(10, size=n)
for k, v in list(data.items()):
    print(f"{k}: {v.shape}")
"""

BATCHNORM_FORWARD = """
# Check the training-time forward pass by checking means and variances
# of features both before and after batch normalization

# Simulate the forward pass for a two-layer network
np.random.seed(231)
N, D1, D2, D3 = 200, 50, 60, 3
X = np.random.randn(N, D1)
W1 = np.random.randn(D1, D2)
W2 = np.random.randn(D2, D3)
a = np.maximum(0, X.dot(W1)).dot(W2)

print('Before batch normalization:')
print_mean_std(a,axis=0)

gamma = np.ones((D3,))
beta = np.zeros((D3,))
# Means should be close to zero and stds close to one
print('After batch normalization (gamma=1, beta=0)')
a_norm, _ = batchnorm_forward(a, gamma, beta, {'mode': 'train'})
print_mean_std(a_norm,axis=0)

gamma = np.asarray([1.0, 2.0, 3.0])
beta = np.asarray([11.0, 12.0, 13.0])
# Now means should be close to beta and stds close to gamma
print('After batch normalization (gamma=', gamma, ', beta=', beta, ')')
a_norm, _ = batchnorm_forward(a, gamma, beta, {'mode': 'train'})
print_mean_std(a_norm,axis=0)
"""

BATCHNORM_RUNNING = """
# Check the test-time forward pass by running the training-time
# forward pass many times to warm up the running averages, and then
# checking the means and variances of activations after a test-time
# forward pass.

np.random.seed(231)
N, D1, D2, D3 = 200, 50, 60, 3
W1 = np.random.randn(D1, D2)
W2 = np.random.randn(D2, D3)

bn_param = {'mode': 'train'}
gamma = np.ones(D3)
beta = np.zeros(D3)

for t in range(50):
  X = np.random.randn(N, D1)
  a = np.maximum(0, X.dot(W1)).dot(W2)
  batchnorm_forward(a, gamma, beta, bn_param)

bn_param['mode'] = 'test'
X = np.random.randn(N, D1)
a = np.maximum(0, X.dot(W1)).dot(W2)
a_norm, _ = batchnorm_forward(a, gamma, beta, bn_param)

# Means should be close to zero and stds close to one, but will be
# noisier than training-time forward passes.
print('After batch normalization (test-time):')
print_mean_std(a_norm,axis=0)
"""

BATCHNORM_BACKWARD = """
# Gradient check batchnorm backward pass
np.random.seed(231)
N, D = 4, 5
x = 5 * np.random.randn(N, D) + 12
gamma = np.random.randn(D)
beta = np.random.randn(D)
dout = np.random.randn(N, D)

bn_param = {'mode': 'train'}
fx = lambda x: batchnorm_forward(x, gamma, beta, bn_param)[0]
fg = lambda a: batchnorm_forward(x, a, beta, bn_param)[0]
fb = lambda b: batchnorm_forward(x, gamma, b, bn_param)[0]

dx_num = eval_numerical_gradient_array(fx, x, dout)
da_num = eval_numerical_gradient_array(fg, gamma.copy(), dout)
db_num = eval_numerical_gradient_array(fb, beta.copy(), dout)

_, cache = batchnorm_forward(x, gamma, beta, bn_param)
dx, dgamma, dbeta = batchnorm_backward(dout, cache)
#You should expect to see relative errors between 1e-13 and 1e-8
print('dx error: ', rel_error(dx_num, dx))
print('dgamma error: ', rel_error(da_num, dgamma))
print('dbeta error: ', rel_error(db_num, dbeta))
"""

BATCHNORM_ALT = """
np.random.seed(231)
N, D = 100, 500
x = 5 * np.random.randn(N, D) + 12
gamma = np.random.randn(D)
beta = np.random.randn(D)
dout = np.random.randn(N, D)

bn_param = {'mode': 'train'}
out, cache = batchnorm_forward(x, gamma, beta, bn_param)

t1 = time.time()
dx1, dgamma1, dbeta1 = batchnorm_backward(dout, cache)
t2 = time.time()
dx2, dgamma2, dbeta2 = batchnorm_backward_alt(dout, cache)
t3 = time.time()

print('dx difference: ', rel_error(dx1, dx2))
print('dgamma difference: ', rel_error(dgamma1, dgamma2))
print('dbeta difference: ', rel_error(dbeta1, dbeta2))
print('speedup: %.2fx' % ((t2 - t1) / max(t3 - t2, 1e-9)))
"""

NETWORK_BATCHNORM = """
np.random.seed(231)
N, D, H1, H2, C = 2, 15, 20, 30, 10
X = np.random.randn(N, D)
y = np.random.randint(C, size=(N,))

# You should expect losses between 1e-4~1e-10 for W,
# losses between 1e-08~1e-10 for b,
# and losses between 1e-08~1e-09 for beta and gammas.
for reg in [0, 3.14]:
  print('Running check with reg = ', reg)
  model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C,
                            reg=reg, weight_scale=5e-2, dtype=np.float64,
                            normalization='batchnorm')

  loss, grads = model.loss(X, y)
  print('Initial loss: ', loss)

  for name in sorted(grads):
    f = lambda _: model.loss(X, y)[0]
    grad_num = eval_numerical_gradient(f, model.params[name], verbose=False, h=1e-5)
    print('%s relative error: %.2e' % (name, rel_error(grad_num, grads[name])))
  if reg == 0: print()
"""

LAYERNORM = """
# Check the training-time forward pass by checking means and variances
# of features both before and after layer normalization

# Simulate the forward pass for a two-layer network
np.random.seed(231)
N, D1, D2, D3 =4, 50, 60, 3
X = np.random.randn(N, D1)
W1 = np.random.randn(D1, D2)
W2 = np.random.randn(D2, D3)
a = np.maximum(0, X.dot(W1)).dot(W2)

print('Before layer normalization:')
print_mean_std(a,axis=1)

gamma = np.ones(D3)
beta = np.zeros(D3)
# Means should be close to zero and stds close to one
print('After layer normalization (gamma=1, beta=0)')
a_norm, _ = layernorm_forward(a, gamma, beta, {'mode': 'train'})
print_mean_std(a_norm,axis=1)

# Gradient check layernorm backward pass
np.random.seed(231)
N, D = 4, 5
x = 5 * np.random.randn(N, D) + 12
gamma = np.random.randn(D)
beta = np.random.randn(D)
dout = np.random.randn(N, D)

ln_param = {}
fx = lambda x: layernorm_forward(x, gamma, beta, ln_param)[0]
fg = lambda a: layernorm_forward(x, a, beta, ln_param)[0]
fb = lambda b: layernorm_forward(x, gamma, b, ln_param)[0]

dx_num = eval_numerical_gradient_array(fx, x, dout)
da_num = eval_numerical_gradient_array(fg, gamma.copy(), dout)
db_num = eval_numerical_gradient_array(fb, beta.copy(), dout)

_, cache = layernorm_forward(x, gamma, beta, ln_param)
dx, dgamma, dbeta = layernorm_backward(dout, cache)

#You should expect to see relative errors between 1e-12 and 1e-8
print('dx error: ', rel_error(dx_num, dx))
print('dgamma error: ', rel_error(da_num, dgamma))
print('dbeta error: ', rel_error(db_num, dbeta))
"""

DROPOUT = """
np.random.seed(231)
x = np.random.randn(500, 500) + 10

for p in [0.25, 0.4, 0.7]:
  out, _ = dropout_forward(x, {'mode': 'train', 'p': p})
  out_test, _ = dropout_forward(x, {'mode': 'test', 'p': p})

  print('Running tests with p = ', p)
  print('Mean of input: ', x.mean())
  print('Mean of train-time output: ', out.mean())
  print('Mean of test-time output: ', out_test.mean())
  print('Fraction of train-time output set to zero: ', (out == 0).mean())
  print('Fraction of test-time output set to zero: ', (out_test == 0).mean())
  print()

np.random.seed(231)
x = np.random.randn(10, 10) + 10
dout = np.random.randn(*x.shape)

dropout_param = {'mode': 'train', 'p': 0.2, 'seed': 123}
out, cache = dropout_forward(x, dropout_param)
dx = dropout_backward(dout, cache)
dx_num = eval_numerical_gradient_array(lambda xx: dropout_forward(xx, dropout_param)[0], x, dout)

# Error should be around e-10 or less
print('dx relative error: ', rel_error(dx, dx_num))
"""

NETWORK_DROPOUT = """
np.random.seed(231)
N, D, H1, H2, C = 2, 15, 20, 30, 10
X = np.random.randn(N, D)
y = np.random.randint(C, size=(N,))

for dropout_keep_ratio in [1, 0.75, 0.5]:
  print('Running check with dropout = ', dropout_keep_ratio)
  model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C,
                            weight_scale=5e-2, dtype=np.float64,
                            dropout_keep_ratio=dropout_keep_ratio, seed=123)

  loss, grads = model.loss(X, y)
  print('Initial loss: ', loss)

  # Relative errors should be around e-6 or less; Note that it's fine
  # if for dropout_keep_ratio=1 you have W2 error be on the order of e-5.
  for name in sorted(grads):
    f = lambda _: model.loss(X, y)[0]
    grad_num = eval_numerical_gradient(f, model.params[name], verbose=False, h=1e-5)
    print('%s relative error: %.2e' % (name, rel_error(grad_num, grads[name])))
  print()
"""

SOLVER = """
np.random.seed(231)
# Try training a very deep net with batchnorm
hidden_dims = [50, 50, 50]

num_train = 200
small_data = {
  'X_train': data['X_train'][:num_train],
  'y_train': data['y_train'][:num_train],
  'X_val': data['X_val'],
  'y_val': data['y_val'],
}

weight_scale = 2e-2
bn_model = FullyConnectedNet(hidden_dims, weight_scale=weight_scale, normalization='batchnorm')

print('Solver with batch norm:')
bn_solver = Solver(bn_model, small_data,
                num_epochs=2, batch_size=50,
                update_rule='adam',
                optim_config={
                  'learning_rate': 1e-3,
                },
                verbose=True,print_every=2)
bn_solver.train()
print('best val acc:', bn_solver.best_val_acc)
"""

CELLS = {
    "setup": SETUP,
    "fc_net_names": FC_NET_NAMES,
    "data": DATA_CIFAR if HAVE_CIFAR10 else DATA_SYNTHETIC,
    "batchnorm_forward": BATCHNORM_FORWARD,
    "batchnorm_running": BATCHNORM_RUNNING,
    "batchnorm_backward": BATCHNORM_BACKWARD,
    "batchnorm_alt": BATCHNORM_ALT,
    "network_batchnorm": NETWORK_BATCHNORM,
    "layernorm": LAYERNORM,
    "dropout": DROPOUT,
    "network_dropout": NETWORK_DROPOUT,
    "solver": SOLVER,
    "star_imports": OTHER_STAR_IMPORTS,
}

FLOAT = r"(-?\d+(?:\.\d*)?(?:e[-+]?\d+)?)"


def _stdout(cell):
    return "".join(o.get("text", "") for o in cell.outputs
                   if o.output_type == "stream" and o.name == "stdout")


def _floats(text, label):
    """The numbers printed after ``label`` (a regex), one per matching line."""
    return [float(m) for m in re.findall(label + r"\s*" + FLOAT, text)]


def _vectors(text, label):
    """The numpy vectors printed after ``label``, e.g. '  means: [ 1.2e-16 -3.0e-17]'."""
    found = re.findall(label + r"\s*\[([^\]]*)\]", text)
    return [np.array([float(v) for v in body.split()]) for body in found]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Every cell's stdout, by name, after running the notebook top to bottom."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(src).strip(), metadata={"name": name})
                for name, src in CELLS.items()]
    workdir = tmp_path_factory.mktemp("cs231n_style")
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", allow_errors=True,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()
    # In the student release: fail every test with the first unwritten piece's message.
    for out in (o for cell in nb.cells for o in cell.outputs if o.output_type == "error"):
        if out.ename == "NotImplementedError":
            raise NotImplementedError(out.evalue)
    problems = []
    for cell in nb.cells:
        for out in cell.outputs:
            if out.output_type == "error":
                problems.append(f"{cell.metadata['name']}: {out.ename}: {out.evalue}")
            elif out.output_type == "stream" and out.name == "stderr":
                problems.append(f"{cell.metadata['name']}: stderr: {out.text}")
    return {cell.metadata["name"]: _stdout(cell) for cell in nb.cells}, problems


def test_runs_without_error_or_stderr(executed):
    outputs, problems = executed
    assert problems == []


def test_star_imports_give_the_layers(executed):
    outputs, _ = executed
    assert outputs["fc_net_names"].strip() == "missing: []"
    assert outputs["star_imports"].splitlines() == [
        "cs231n.layers missing: []",
        "cs231n.layer_utils missing: []",
        "cs231n.gradient_check missing: []",
    ]


def test_data_has_cs231n_keys_and_shapes(executed):
    outputs, _ = executed
    assert outputs["data"].splitlines() == [
        "X_train: (1000, 3, 32, 32)", "y_train: (1000,)",
        "X_val: (200, 3, 32, 32)", "y_val: (200,)",
        "X_test: (200, 3, 32, 32)", "y_test: (200,)",
    ]


def test_batchnorm_statistics(executed):
    outputs, _ = executed
    text = outputs["batchnorm_forward"]
    means, stds = _vectors(text, "means:"), _vectors(text, "stds:")
    assert len(means) == len(stds) == 3
    # Before: far from 0 / 1; after: (0, 1), then (beta, gamma).
    assert np.max(np.abs(means[0])) > 1 and np.max(np.abs(stds[0] - 1)) > 1
    np.testing.assert_allclose(means[1], 0, atol=1e-12)
    np.testing.assert_allclose(stds[1], 1, rtol=1e-6)
    np.testing.assert_allclose(means[2], [11, 12, 13], rtol=1e-12)
    np.testing.assert_allclose(stds[2], [1, 2, 3], rtol=1e-6)
    # Test mode with running averages: noisier, but near (0, 1).
    (mean_test,), (std_test,) = (_vectors(outputs["batchnorm_running"], k)
                                 for k in ("means:", "stds:"))
    assert np.max(np.abs(mean_test)) < 0.2 and np.max(np.abs(std_test - 1)) < 0.2


def test_layer_gradient_checks_print_small_errors(executed):
    outputs, _ = executed
    for name in ("batchnorm_backward", "layernorm"):
        errors = _floats(outputs[name], r"(?:dx|dgamma|dbeta) error:")
        assert len(errors) == 3, outputs[name]
        assert max(errors) < 1e-7, (name, errors)
    differences = _floats(outputs["batchnorm_alt"], r"(?:dx|dgamma|dbeta) difference:")
    assert len(differences) == 3 and max(differences) < 1e-10, differences
    (dropout_error,) = _floats(outputs["dropout"], r"dx relative error:")
    assert dropout_error < 1e-10


def test_layernorm_statistics(executed):
    outputs, _ = executed
    means, stds = _vectors(outputs["layernorm"], "means:"), _vectors(outputs["layernorm"], "stds:")
    np.testing.assert_allclose(means[1], 0, atol=1e-12)
    np.testing.assert_allclose(stds[1], 1, rtol=1e-4)


def test_dropout_statistics(executed):
    outputs, _ = executed
    text = outputs["dropout"]
    ps = _floats(text, r"Running tests with p =")
    mean_in = _floats(text, r"Mean of input:")
    mean_train = _floats(text, r"Mean of train-time output:")
    mean_test = _floats(text, r"Mean of test-time output:")
    zero_train = _floats(text, r"Fraction of train-time output set to zero:")
    zero_test = _floats(text, r"Fraction of test-time output set to zero:")
    assert ps == [0.25, 0.4, 0.7]
    np.testing.assert_allclose(mean_train, mean_in, rtol=0.02)  # inverted dropout
    assert mean_test == mean_in
    np.testing.assert_allclose(zero_train, [1 - p for p in ps], atol=0.01)  # p keeps
    assert zero_test == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("cell, runs", [("network_batchnorm", 2), ("network_dropout", 3)])
def test_network_gradient_checks_print_small_errors(executed, cell, runs):
    outputs, _ = executed
    text = outputs[cell]
    names = re.findall(r"^(\w+) relative error:", text, flags=re.M)
    errors = _floats(text, r"relative error:")
    expected = {"W1", "W2", "W3", "b1", "b2", "b3"}
    if cell == "network_batchnorm":
        expected |= {"gamma1", "gamma2", "beta1", "beta2"}
    assert names == sorted(expected) * runs
    assert all(np.isfinite(_floats(text, r"Initial loss:")))
    # CS231N's notebook expects "1e-4~1e-10 for W": W1 with batch norm prints 1.10e-04
    # there and here (a float64 centred difference through a batch norm of N = 2). A wrong
    # gradient prints 1e-2 or more.
    worst = max(errors)
    assert len(errors) == len(names) and worst < 1e-3, list(zip(names, errors))


def test_solver_prints_cs231n_progress_lines(executed):
    outputs, _ = executed
    lines = outputs["solver"].splitlines()
    # 200 examples, batch 50: 4 iterations per epoch, 8 in all, a line every 2.
    iterations = [line for line in lines if line.startswith("(Iteration")]
    assert [line.split(")")[0] for line in iterations] == [
        "(Iteration 1 / 8", "(Iteration 3 / 8", "(Iteration 5 / 8", "(Iteration 7 / 8"
    ]
    assert all(re.fullmatch(r"\(Iteration \d+ / 8\) loss: \d+\.\d{6}", line) for line in iterations)
    epochs = [line for line in lines if line.startswith("(Epoch")]
    assert [line.split(")")[0] for line in epochs] == ["(Epoch 0 / 2", "(Epoch 1 / 2", "(Epoch 2 / 2"]
    assert all(re.fullmatch(r"\(Epoch \d / 2\) train acc: \d\.\d{6}; val_acc: \d\.\d{6}", line)
               for line in epochs)
    assert lines[-1].startswith("best val acc: ")
