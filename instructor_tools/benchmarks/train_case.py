"""The training-iteration case: one step of BatchNormalization.ipynb's six-layer
batch-norm network (loss + gradients + Adam update) in numpy and in PyTorch.

The network is the notebook's deep-network experiment: hidden layers [100] * 5 on
3 * 32 * 32 inputs, 10 classes, weight_scale 2e-2, batch norm, Adam with learning rate
1e-3, batch size 50, float32 (FullyConnectedNet's default dtype, which the notebook
keeps). One iteration is what Solver._step does minus drawing the minibatch: the same
fixed batch is fed every time, already float32 on both sides.
"""
import numpy as np

from cs231n import optim
from cs231n.classifiers.fc_net import FullyConnectedNet

from instructor_tools.benchmarks.layer_cases import BenchmarkError, assert_close

HIDDEN_DIMS = [100] * 5
INPUT_SHAPE = (3, 32, 32)
NUM_CLASSES = 10
WEIGHT_SCALE = 2e-2
LEARNING_RATE = 1e-3
BATCH_SIZE = 50
DTYPE = np.float32


def make_batch(batch_size, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((batch_size, *INPUT_SHAPE)).astype(dtype)
    y = rng.integers(NUM_CLASSES, size=batch_size)
    return X, y


class NumpyTrainer:
    """FullyConnectedNet + optim.adam, one config per parameter as in the Solver."""

    def __init__(self, dtype, batch_size, seed=0):
        self.model = FullyConnectedNet(
            HIDDEN_DIMS, input_dim=int(np.prod(INPUT_SHAPE)), num_classes=NUM_CLASSES,
            normalization="batchnorm", weight_scale=WEIGHT_SCALE, dtype=dtype, seed=seed,
        )
        self.configs = {p: {"learning_rate": LEARNING_RATE} for p in self.model.params}
        self.X, self.y = make_batch(batch_size, dtype)

    def step(self):
        loss, grads = self.model.loss(self.X, self.y)
        params = self.model.params
        for p, w in params.items():
            params[p], self.configs[p] = optim.adam(w, grads[p], self.configs[p])
        return loss, grads


class TorchTrainer:
    """The same network as torch.nn modules with the same initial parameters,
    cross-entropy loss (mean over the batch) and torch.optim.Adam with its defaults
    (betas 0.9 / 0.999, eps 1e-8: those of optim.adam)."""

    def __init__(self, torch, numpy_model, batch_size):
        nn = torch.nn
        self.torch = torch
        dtype = {np.float32: torch.float32, np.float64: torch.float64}[numpy_model.dtype]
        params = numpy_model.params
        modules = [nn.Flatten()]
        dims = [int(np.prod(INPUT_SHAPE)), *HIDDEN_DIMS, NUM_CLASSES]
        for i in range(1, len(dims)):
            linear = nn.Linear(dims[i - 1], dims[i], dtype=dtype)
            with torch.no_grad():  # torch stores W transposed: y = x @ weight.T + bias
                linear.weight.copy_(torch.from_numpy(params[f"W{i}"].T.copy()))
                linear.bias.copy_(torch.from_numpy(params[f"b{i}"]))
            modules.append(linear)
            if i < len(dims) - 1:
                # torch's momentum 0.1 = our 0.9 (weight of the new value vs of the old)
                bn = nn.BatchNorm1d(dims[i], eps=1e-5, momentum=0.1, dtype=dtype)
                with torch.no_grad():
                    bn.weight.copy_(torch.from_numpy(params[f"gamma{i}"]))
                    bn.bias.copy_(torch.from_numpy(params[f"beta{i}"]))
                modules += [bn, nn.ReLU()]
        self.model = nn.Sequential(*modules)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LEARNING_RATE)
        X, y = make_batch(batch_size, numpy_model.dtype)
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y)

    def step(self):
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.torch.nn.functional.cross_entropy(self.model(self.X), self.y)
        loss.backward()
        self.optimizer.step()
        return loss

    def numpy_named(self, what):
        """Parameters ('params') or their gradients ('grads') under FullyConnectedNet's
        names (W1, b1, gamma1, beta1, ...), as numpy arrays."""
        out = {}
        linear_index = 0
        for module in self.model:
            kind = type(module).__name__
            if kind == "Linear":
                linear_index += 1
                names = (f"W{linear_index}", f"b{linear_index}")
            elif kind == "BatchNorm1d":
                names = (f"gamma{linear_index}", f"beta{linear_index}")
            else:
                continue
            for name, tensor in zip(names, (module.weight, module.bias)):
                value = tensor if what == "params" else tensor.grad
                array = value.detach().numpy()
                out[name] = array.T if name.startswith("W") else array
        return out


def check_training(torch, steps=3):
    """In float64: the same loss and gradients on the first step, and the same
    parameters after each of ``steps`` Adam updates, in numpy and in torch.

    The biases of the hidden layers feed batch norm, whose mean subtraction cancels them:
    their gradient is 0 in theory and rounding noise (~1e-17) in practice, different on
    each side. Their gradients are compared on the scale of the same layer's dbeta, and
    after Adam (which turns noise into steps of about learning_rate * noise / epsilon) they
    must merely have stayed where they were, on both sides.
    """
    numpy_side = NumpyTrainer(np.float64, BATCH_SIZE)
    torch_side = TorchTrainer(torch, numpy_side.model, BATCH_SIZE)
    start = {k: v.copy() for k, v in numpy_side.model.params.items()}
    cancelled = {f"b{i}" for i in range(1, len(HIDDEN_DIMS) + 1)}
    for step in range(1, steps + 1):
        loss, grads = numpy_side.step()
        torch_loss = torch_side.step()
        if step == 1:
            assert_close("training step 1: loss vs torch", loss, torch_loss.item())
            torch_grads = torch_side.numpy_named("grads")
            if set(torch_grads) != set(grads):
                raise BenchmarkError(
                    f"training: parameter names {sorted(grads)} vs torch's {sorted(torch_grads)}"
                )
            for name in grads:
                scale = None
                if name in cancelled:
                    scale = float(np.max(np.abs(grads["beta" + name[1:]])))
                assert_close(f"training step 1: d{name} vs torch", grads[name],
                             torch_grads[name], scale=scale)
        torch_params = torch_side.numpy_named("params")
        for name, value in numpy_side.model.params.items():
            if name in cancelled:
                for side, moved in (("numpy", value), ("torch", torch_params[name])):
                    drift = float(np.max(np.abs(moved - start[name])))
                    if drift > 1e-9:
                        raise BenchmarkError(
                            f"training step {step}: {side} {name} moved by {drift:.2e}, "
                            "although batch norm cancels its gradient"
                        )
            else:
                assert_close(f"training step {step}: {name} after Adam vs torch", value,
                             torch_params[name])
