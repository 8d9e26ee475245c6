"""Solver: overfitting a small set, history lengths, best-model tracking and restoring,
checkpoints, learning-rate decay, per-parameter optimizer state, output (nbval safety) and
reproducibility."""
import pickle

import numpy as np
import pytest

from cs231n.classifiers.fc_net import FullyConnectedNet
from cs231n.solver import Solver


def random_data(n_train=50, n_val=20, shape=(3, 4, 4), C=5, seed=0):
    """Random images with random labels: only memorization can fit them."""
    rng = np.random.default_rng(seed)
    return {
        "X_train": rng.standard_normal((n_train, *shape)),
        "y_train": rng.integers(C, size=n_train),
        "X_val": rng.standard_normal((n_val, *shape)),
        "y_val": rng.integers(C, size=n_val),
    }


@pytest.mark.parametrize(
    "normalization, keep",
    [(None, 1), ("batchnorm", 1), ("layernorm", 1), ("batchnorm", 0.75), (None, 0.5)],
    ids=["plain", "batchnorm", "layernorm", "batchnorm+dropout", "dropout"],
)
def test_overfits_small_data(normalization, keep):
    """50 random examples memorized. The training set doubles as validation set, so the
    restored best parameters are the most memorized ones: accuracy 1 after train()."""
    data = random_data()
    data["X_val"], data["y_val"] = data["X_train"], data["y_train"]
    np.random.seed(0)
    model = FullyConnectedNet([100, 100], input_dim=48, num_classes=5,
                              dropout_keep_ratio=keep, normalization=normalization,
                              weight_scale=5e-2)
    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-2},
                    num_epochs=30, batch_size=25, verbose=False)
    solver.train()
    assert solver.best_val_acc == 1.0
    assert solver.check_accuracy(data["X_train"], data["y_train"]) == 1.0
    assert solver.train_acc_history[0] < 0.5
    assert np.mean(solver.loss_history[-5:]) < 0.25 * solver.loss_history[0]


class CountingModel:
    """A fake model whose accuracy after k updates is a scripted value.

    params['w'] counts the updates (count_rule adds 1). Each row of X holds
    [label, rank] with ranks (i + 0.5) / N spread over (0, 1): an example is classified
    correctly iff its rank < the scripted accuracy, so any batching gives the same
    accuracy."""

    def __init__(self, accuracies, num_classes=4):
        self.params = {"w": np.zeros(1)}
        self.accuracies = accuracies
        self.C = num_classes

    def loss(self, X, y=None):
        if y is not None:
            return 1.0 / (1 + self.params["w"][0]), {"w": np.zeros(1)}
        k = int(self.params["w"][0])
        acc = self.accuracies[min(k, len(self.accuracies) - 1)]
        labels = X[:, 0].astype(int)
        predicted = np.where(X[:, 1] < acc, labels, (labels + 1) % self.C)
        scores = np.zeros((X.shape[0], self.C))
        scores[np.arange(X.shape[0]), predicted] = 1.0
        return scores


def count_rule(w, dw, config):
    return w + 1, config


def labelled(n, C=4, seed=0):
    """X rows [label, rank], y the labels (see CountingModel)."""
    y = np.random.default_rng(seed).integers(C, size=n)
    return np.stack([y, (np.arange(n) + 0.5) / n], axis=1), y


def test_best_params_track_the_best_check_and_are_restored():
    """2 iterations per epoch, checks after updates 1, 2, 4, 6, 8: val accuracies scripted
    as 0.2, 0.8, 0.5, 0.6, 0.4 -> the best is after update 2, and w = 2 is restored."""
    X, y = labelled(20)
    script = [0.0, 0.2, 0.8, 0.0, 0.5, 0.0, 0.6, 0.0, 0.4]  # indexed by update count
    model = CountingModel(script)
    solver = Solver(model, {"X_train": X, "y_train": y, "X_val": X, "y_val": y},
                    update_rule=count_rule, batch_size=10, num_epochs=4,
                    num_train_samples=None, verbose=False)
    solver.train()
    assert solver.val_acc_history == [0.2, 0.8, 0.5, 0.6, 0.4]
    assert solver.best_val_acc == 0.8
    np.testing.assert_array_equal(solver.best_params["w"], [2.0])
    np.testing.assert_array_equal(model.params["w"], [2.0])
    assert model.params["w"] is not solver.best_params["w"], "restored as a copy"


def test_best_params_never_empty_when_val_accuracy_is_zero():
    """CS231N keeps best_params = {} (and empties the model) if val accuracy stays 0."""
    X, y = labelled(20)
    model = CountingModel([0.0])
    solver = Solver(model, {"X_train": X, "y_train": y, "X_val": X, "y_val": y},
                    update_rule=count_rule, batch_size=10, num_epochs=2, verbose=False)
    solver.train()
    assert set(model.params) == {"w"}
    np.testing.assert_array_equal(model.params["w"], [1.0])  # the first check's params


def test_restored_batchnorm_statistics_match_best_val_acc():
    """After train(), the restored model scores exactly best_val_acc on the validation set:
    with batch norm that needs the running statistics of the same check as the weights."""
    data = random_data(n_train=60, n_val=40, seed=3)
    np.random.seed(1)
    model = FullyConnectedNet([30, 30], input_dim=48, num_classes=5,
                              normalization="batchnorm", weight_scale=5e-2)
    solver = Solver(model, data, update_rule="sgd", optim_config={"learning_rate": 0.2},
                    num_epochs=8, batch_size=20, verbose=False)
    solver.train()
    assert max(solver.val_acc_history) == solver.best_val_acc
    assert solver.check_accuracy(data["X_val"], data["y_val"]) == solver.best_val_acc


@pytest.mark.parametrize(
    "n_train, batch_size, num_epochs, n_iter, n_checks",
    [(50, 10, 3, 15, 4), (50, 20, 2, 4, 3), (50, 64, 3, 3, 3), (7, 7, 2, 2, 2)],
    ids=["5-per-epoch", "remainder-dropped", "batch-larger-than-data", "1-per-epoch"],
)
def test_history_lengths(n_train, batch_size, num_epochs, n_iter, n_checks):
    """iterations = num_epochs * max(N // batch_size, 1); checks after the first
    iteration and every epoch end (num_epochs + 1, or num_epochs when the first iteration
    already ends an epoch)."""
    data = random_data(n_train=n_train, n_val=5)
    model = FullyConnectedNet([6], input_dim=48, num_classes=5, seed=0)
    solver = Solver(model, data, num_epochs=num_epochs, batch_size=batch_size, verbose=False)
    solver.train()
    assert len(solver.loss_history) == n_iter
    assert len(solver.train_acc_history) == len(solver.val_acc_history) == n_checks
    assert solver.epoch == num_epochs
    assert all(type(v) is float for v in solver.loss_history + solver.val_acc_history)


def test_lr_decay_applied_once_per_epoch():
    seen = []

    def recording_rule(w, dw, config):
        seen.append(config["learning_rate"])
        return w, config

    X, y = labelled(30)
    solver = Solver(CountingModel([0.5]), {"X_train": X, "y_train": y, "X_val": X, "y_val": y},
                    update_rule=recording_rule, optim_config={"learning_rate": 0.8},
                    lr_decay=0.5, batch_size=10, num_epochs=3, verbose=False)
    solver.train()
    np.testing.assert_allclose(seen, [0.8] * 3 + [0.4] * 3 + [0.2] * 3, rtol=1e-15)
    np.testing.assert_allclose(solver.optim_configs["w"]["learning_rate"], 0.1, rtol=1e-15)
    assert solver.optim_config == {"learning_rate": 0.8}, "the caller's dict is not modified"


def test_optim_config_copied_per_parameter():
    data = random_data(n_train=20, n_val=5)
    model = FullyConnectedNet([6], input_dim=48, num_classes=5, seed=0)
    config = {"learning_rate": 1e-3}
    solver = Solver(model, data, update_rule="adam", optim_config=config, batch_size=10,
                    num_epochs=1, verbose=False)
    solver.train()
    configs = list(solver.optim_configs.values())
    assert len({id(c) for c in configs}) == len(model.params) == 4
    assert len({id(c["m"]) for c in configs}) == 4
    assert solver.optim_configs["W1"]["m"].shape == model.params["W1"].shape
    assert config == {"learning_rate": 1e-3}


def test_checkpoints_written(tmp_path):
    data = random_data(n_train=20, n_val=5)
    model = FullyConnectedNet([6], input_dim=48, num_classes=5, seed=0)
    name = tmp_path / "ckpt"
    solver = Solver(model, data, batch_size=10, num_epochs=2, checkpoint_name=str(name),
                    verbose=False)
    solver.train()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["ckpt_epoch_0.pkl", "ckpt_epoch_1.pkl", "ckpt_epoch_2.pkl"]
    with open(tmp_path / "ckpt_epoch_2.pkl", "rb") as f:
        checkpoint = pickle.load(f)
    assert checkpoint["epoch"] == 2
    assert checkpoint["loss_history"] == solver.loss_history
    assert checkpoint["val_acc_history"] == solver.val_acc_history
    assert set(checkpoint["model"].params) == set(model.params)


def test_verbose_prints_cs231n_lines(capsys):
    data = random_data(n_train=20, n_val=5)
    model = FullyConnectedNet([6], input_dim=48, num_classes=5, seed=0)
    Solver(model, data, batch_size=5, num_epochs=2, print_every=3).train()
    out, err = capsys.readouterr()
    lines = out.splitlines()
    iteration = [l for l in lines if l.startswith("(Iteration")]
    epoch = [l for l in lines if l.startswith("(Epoch")]
    assert [l.split(" loss")[0] for l in iteration] == [
        "(Iteration 1 / 8)", "(Iteration 4 / 8)", "(Iteration 7 / 8)"]
    assert [l.split(" train")[0] for l in epoch] == ["(Epoch 0 / 2)", "(Epoch 1 / 2)", "(Epoch 2 / 2)"]
    assert "; val_acc: " in epoch[0]
    assert len(lines) == 6 and err == ""


def test_quiet_by_default_when_not_verbose(capsys):
    """verbose=False prints nothing at all, on stdout or stderr: a notebook cell's stored
    output then never contains a varying progress bar for nbval to trip over."""
    data = random_data(n_train=20, n_val=5)
    model = FullyConnectedNet([6], input_dim=48, num_classes=5, seed=0)
    Solver(model, data, batch_size=5, num_epochs=2, verbose=False).train()
    assert capsys.readouterr() == ("", "")


def test_progress_bar_opt_in(capsys):
    data = random_data(n_train=20, n_val=5)
    model = FullyConnectedNet([6], input_dim=48, num_classes=5, seed=0)
    Solver(model, data, batch_size=5, num_epochs=2, verbose=False, progress=True).train()
    out, err = capsys.readouterr()
    assert out == ""
    assert "Solver" in err and "8/8" in err


def test_progress_bar_is_the_module_level_tqdm(monkeypatch):
    """tqdm is a declared dependency: the solver imports it at the top, once, with no
    deferred import or fallback, so the bar is the module's tqdm."""
    import cs231n.solver as solver_module

    made = []

    class FakeBar:
        def __init__(self, **kwargs):
            made.append(kwargs)

        def update(self, n):
            made.append(n)

        def write(self, line):
            made.append(line)

        def close(self):
            made.append("closed")

    monkeypatch.setattr(solver_module, "tqdm", FakeBar)  # fails if solver has no tqdm name
    data = random_data(n_train=20, n_val=5)
    model = FullyConnectedNet([6], input_dim=48, num_classes=5, seed=0)
    Solver(model, data, batch_size=10, num_epochs=1, print_every=5, progress=True).train()
    assert made[0] == {"total": 2, "unit": "it", "desc": "Solver"}
    assert made.count(1) == 2 and made[-1] == "closed"
    assert any(str(m).startswith("(Iteration 1 / 2)") for m in made), "lines go through the bar"


def test_reproducible_with_np_random_seed():
    data = random_data()

    def run():
        np.random.seed(42)
        model = FullyConnectedNet([20], input_dim=48, num_classes=5, dropout_keep_ratio=0.5,
                                  normalization="batchnorm")
        solver = Solver(model, data, update_rule="adam", batch_size=10, num_epochs=2,
                        num_train_samples=30, verbose=False)
        solver.train()
        return solver

    a, b = run(), run()
    assert a.loss_history == b.loss_history
    assert a.train_acc_history == b.train_acc_history
    for k in a.model.params:
        np.testing.assert_array_equal(a.model.params[k], b.model.params[k])


def test_float32_training_stays_float32():
    data = random_data()
    model = FullyConnectedNet([20, 20], input_dim=48, num_classes=5, normalization="batchnorm",
                              seed=0)
    Solver(model, data, update_rule="adam", batch_size=10, num_epochs=1, verbose=False).train()
    assert {v.dtype for v in model.params.values()} == {np.dtype(np.float32)}
    assert {p["running_mean"].dtype for p in model.bn_params} == {np.dtype(np.float32)}


@pytest.mark.parametrize("batch_size", [1, 7, 23, 100], ids=lambda b: f"batch={b}")
def test_check_accuracy_batches_and_subsamples(batch_size):
    X, y = labelled(23)
    solver = Solver(CountingModel([13 / 23]), {"X_train": X, "y_train": y, "X_val": X, "y_val": y},
                    verbose=False)
    assert solver.check_accuracy(X, y, batch_size=batch_size) == 13 / 23
    # num_samples < N: the accuracy of num_samples examples drawn with np.random (with
    # replacement, as CS231N), reproducible under np.random.seed.
    np.random.seed(0)
    sample = np.random.choice(23, 10)
    np.random.seed(0)
    sub = solver.check_accuracy(X, y, num_samples=10, batch_size=batch_size)
    assert sub == np.mean(X[sample, 1] < 13 / 23)
