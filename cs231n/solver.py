"""The training loop: minibatch gradient descent on a classification model (CS231N).

A Solver takes a model and a data dict, and trains with one of the update rules of
``cs231n.optim``. Usage::

    data = {"X_train": X_train, "y_train": y_train, "X_val": X_val, "y_val": y_val}
    model = FullyConnectedNet([100, 100], normalization="batchnorm")
    solver = Solver(model, data,
                    update_rule="adam", optim_config={"learning_rate": 1e-3},
                    lr_decay=0.95, num_epochs=10, batch_size=50, print_every=100)
    solver.train()
    # solver.loss_history, solver.train_acc_history, solver.val_acc_history,
    # solver.best_val_acc; model.params now holds solver.best_params.

The model must have:
- ``model.params``: dict mapping parameter names to numpy arrays;
- ``model.loss(X, y=None)``: with y None, a test-time forward pass returning scores
  (N, C); with y, a training-time pass returning (loss, grads) with ``grads`` a dict with
  the keys of ``model.params``.

Randomness: minibatches (and the subsamples used to estimate accuracy) are drawn with
``np.random`` as in CS231N, so ``np.random.seed(...)`` before building the model and the
Solver makes a whole training run reproducible.
"""
import os
import pickle

import numpy as np

from cs231n import optim
from cs231n.validation import (
    check_array,
    check_positive_finite,
    check_positive_int,
    check_same_length,
)

__all__ = ["Solver"]

_DATA_KEYS = ("X_train", "y_train", "X_val", "y_val")

# Examples per forward pass when train() checks accuracy. Larger than check_accuracy's
# default of 100 (CS231N's): ten times fewer Python-level layer calls, about 30-50% less
# time for the small networks of the notebooks, and still little memory (1000 CIFAR-10
# images are 12 MB in float32).
_EVAL_BATCH_SIZE = 1000


def _check_optional_positive_int(value, name):
    return None if value is None else check_positive_int(value, name)


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__}")
    return bool(value)


class Solver:
    """Trains a classification model with minibatch stochastic gradient descent.

    Required arguments:
    - model: an object with ``params`` and ``loss(X, y=None)`` (see the module docstring)
    - data: dict with
      - 'X_train': (N_train, d_1, ..., d_k) training images
      - 'y_train': (N_train,) integer training labels
      - 'X_val': (N_val, d_1, ..., d_k) validation images
      - 'y_val': (N_val,) integer validation labels

    Optional keyword arguments (any other keyword is a ValueError naming it):
    - update_rule: name of an update rule in cs231n.optim ('sgd', 'sgd_momentum',
      'rmsprop', 'adam'; default 'sgd') or a callable with the same interface.
    - optim_config: dict of hyperparameters for the update rule, e.g. learning_rate. Each
      parameter gets its OWN copy, because the rules keep per-parameter state in it.
    - lr_decay: the learning rate is multiplied by this after every epoch (default 1.0).
    - batch_size: minibatch size (default 100).
    - num_epochs: number of epochs to train (default 10).
    - num_train_samples: number of training examples used to estimate the training
      accuracy after each epoch (default 1000; None = all of them).
    - num_val_samples: the same for validation (default None = all of them).
    - checkpoint_name: if not None, a pickle of the model and the histories is written to
      "<checkpoint_name>_epoch_<epoch>.pkl" at every accuracy check.
    - print_every: with verbose, print the training loss every print_every iterations.
    - verbose: print CS231N's progress lines (default True).
    - progress: show a tqdm progress bar over the iterations on stderr (default False).
      It is off by default because its rate and ETA change from run to run, which would
      make a notebook's stored outputs differ under nbval; turn it on for long interactive
      runs with verbose=False (with verbose=True as well, the progress lines are printed
      above the bar). (Not in CS231N.)

    One iteration draws a minibatch of batch_size examples WITH replacement (as CS231N), so
    an "epoch" is max(N_train // batch_size, 1) iterations, not a pass without repeats.
    Accuracies are checked, and appended to the histories, after the first iteration, at
    the end of every epoch and after the last iteration (which ends the last epoch):
    num_epochs + 1 entries, or num_epochs when an epoch is a single iteration. The first
    check happens during epoch 0, so train_acc_history[e] is the accuracy after e epochs
    in the usual case. loss_history has one entry per iteration.

    At the end of train(), model.params is replaced by (a copy of) best_params, the
    parameters with the best validation accuracy seen at a check. If the model keeps batch
    normalization running statistics in ``model.bn_params`` (as FullyConnectedNet does),
    those saved at the same check are restored as well: test-mode scores need the running
    means/variances that belong to those weights. (CS231N restores params only.)
    """

    def __init__(
        self,
        model,
        data,
        *,
        update_rule="sgd",
        optim_config=None,
        lr_decay=1.0,
        batch_size=100,
        num_epochs=10,
        num_train_samples=1000,
        num_val_samples=None,
        checkpoint_name=None,
        print_every=10,
        verbose=True,
        progress=False,
        **unknown,
    ):
        if unknown:
            # CS231N raises ValueError here (its signature is **kwargs); keep that.
            names = ", ".join(repr(k) for k in unknown)
            valid = ", ".join(
                repr(k) for k in (
                    "update_rule", "optim_config", "lr_decay", "batch_size", "num_epochs",
                    "num_train_samples", "num_val_samples", "checkpoint_name",
                    "print_every", "verbose", "progress",
                )
            )
            raise ValueError(f"Solver: unrecognized arguments {names}; valid options: {valid}")

        if not hasattr(model, "params") or not isinstance(model.params, dict):
            raise TypeError(
                f"model: expected an object with a dict attribute 'params', "
                f"got {type(model).__name__}"
            )
        if not callable(getattr(model, "loss", None)):
            raise TypeError(
                f"model: expected an object with a method loss(X, y=None), "
                f"got {type(model).__name__}"
            )
        self.model = model

        if not isinstance(data, dict):
            raise TypeError(f"data: expected a dict, got {type(data).__name__}")
        missing = [k for k in _DATA_KEYS if k not in data]
        if missing:
            raise ValueError(
                f"data: expected the keys {list(_DATA_KEYS)}, missing {missing}"
            )
        for key in _DATA_KEYS:
            check_array(data[key], f"data[{key!r}]")
        for key in ("y_train", "y_val"):
            y = data[key]
            if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
                raise ValueError(
                    f"data[{key!r}]: expected a 1-D integer array of labels, "
                    f"got shape {y.shape} and dtype {y.dtype}"
                )
        check_same_length(data["X_train"], "data['X_train']", data["y_train"], "data['y_train']")
        check_same_length(data["X_val"], "data['X_val']", data["y_val"], "data['y_val']")
        for key in ("X_train", "X_val"):
            if data[key].ndim < 2 or len(data[key]) == 0:
                raise ValueError(
                    f"data[{key!r}]: expected a non-empty array of shape (N, d_1, ..., d_k), "
                    f"got shape {data[key].shape}"
                )
        self.X_train = data["X_train"]
        self.y_train = data["y_train"]
        self.X_val = data["X_val"]
        self.y_val = data["y_val"]

        if isinstance(update_rule, str):
            if update_rule not in optim.UPDATE_RULES:
                raise ValueError(
                    f"update_rule: expected one of {sorted(optim.UPDATE_RULES)} "
                    f"or a callable, got {update_rule!r}"
                )
            update_rule = optim.UPDATE_RULES[update_rule]
        elif not callable(update_rule):
            raise TypeError(
                f"update_rule: expected a name in cs231n.optim or a callable, "
                f"got {type(update_rule).__name__}"
            )
        self.update_rule = update_rule

        if optim_config is None:
            optim_config = {}
        if not isinstance(optim_config, dict):
            raise TypeError(f"optim_config: expected a dict, got {type(optim_config).__name__}")
        self.optim_config = optim_config
        self.lr_decay = check_positive_finite(lr_decay, "lr_decay")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.num_epochs = check_positive_int(num_epochs, "num_epochs")
        self.num_train_samples = _check_optional_positive_int(
            num_train_samples, "num_train_samples"
        )
        self.num_val_samples = _check_optional_positive_int(num_val_samples, "num_val_samples")
        if checkpoint_name is not None and not isinstance(checkpoint_name, (str, os.PathLike)):
            raise TypeError(
                f"checkpoint_name: expected a str, a path or None, "
                f"got {type(checkpoint_name).__name__}"
            )
        self.checkpoint_name = checkpoint_name
        self.print_every = check_positive_int(print_every, "print_every")
        self.verbose = _check_bool(verbose, "verbose")
        self.progress = _check_bool(progress, "progress")

        self._bar = None  # the tqdm bar while train() runs with progress=True
        self._reset()

    def _reset(self):
        """Set up the bookkeeping variables for a fresh optimization."""
        self.epoch = 0
        self.best_val_acc = 0
        self.best_params = {}
        self._best_bn_stats = None
        self.loss_history = []
        self.train_acc_history = []
        self.val_acc_history = []

        # A shallow copy per parameter: the update rules store per-parameter state
        # (velocity, m, v, t) in their config, which must never be shared.
        self.optim_configs = {p: dict(self.optim_config) for p in self.model.params}

    def _step(self):
        """One gradient update on a random minibatch (called by train())."""
        num_train = self.X_train.shape[0]
        batch_mask = np.random.choice(num_train, self.batch_size)
        X_batch = self.X_train[batch_mask]
        y_batch = self.y_train[batch_mask]

        loss, grads = self.model.loss(X_batch, y_batch)
        self.loss_history.append(float(loss))

        params = self.model.params
        for p, w in params.items():
            next_w, next_config = self.update_rule(w, grads[p], self.optim_configs[p])
            params[p] = next_w
            self.optim_configs[p] = next_config

    def _save_checkpoint(self):
        if self.checkpoint_name is None:
            return
        checkpoint = {
            "model": self.model,
            "update_rule": self.update_rule,
            "lr_decay": self.lr_decay,
            "optim_config": self.optim_config,
            "batch_size": self.batch_size,
            "num_train_samples": self.num_train_samples,
            "num_val_samples": self.num_val_samples,
            "epoch": self.epoch,
            "loss_history": self.loss_history,
            "train_acc_history": self.train_acc_history,
            "val_acc_history": self.val_acc_history,
        }
        filename = f"{os.fspath(self.checkpoint_name)}_epoch_{self.epoch}.pkl"
        if self.verbose:
            self._print(f'Saving checkpoint to "{filename}"')
        with open(filename, "wb") as f:
            pickle.dump(checkpoint, f)

    def check_accuracy(self, X, y, num_samples=None, batch_size=100):
        """Fraction of examples the model classifies correctly (test-mode forward pass).

        Inputs:
        - X: (N, d_1, ..., d_k) data
        - y: (N,) integer labels
        - num_samples: if not None and N > num_samples, estimate the accuracy on
          num_samples examples drawn with np.random (with replacement, as CS231N)
        - batch_size: examples per forward pass (bounds memory; test mode makes every
          example's scores independent of the batch, so it does not change the result)

        Returns: acc, a Python float in [0, 1].
        """
        check_array(X, "X")
        check_array(y, "y", ndim=1, shape_doc="(N,)")
        check_same_length(X, "X", y, "y")
        num_samples = _check_optional_positive_int(num_samples, "num_samples")
        batch_size = check_positive_int(batch_size, "batch_size")

        N = X.shape[0]
        if num_samples is not None and N > num_samples:
            mask = np.random.choice(N, num_samples)
            N = num_samples
            X = X[mask]
            y = y[mask]

        num_correct = 0
        for start in range(0, N, batch_size):
            scores = self.model.loss(X[start:start + batch_size])
            num_correct += int(np.count_nonzero(scores.argmax(axis=1) == y[start:start + batch_size]))
        return num_correct / N if N else 0.0

    def _print(self, line):
        if self._bar is not None:
            self._bar.write(line)  # keeps the bar intact below the printed line
        else:
            print(line)

    def _snapshot_best(self):
        self.best_params = {k: v.copy() for k, v in self.model.params.items()}
        bn_params = getattr(self.model, "bn_params", None)
        if isinstance(bn_params, list):
            self._best_bn_stats = [
                {k: bp[k].copy() for k in ("running_mean", "running_var") if k in bp}
                for bp in bn_params
            ]

    def _restore_best(self):
        # Copies, so that training the model further never changes best_params.
        self.model.params = {k: v.copy() for k, v in self.best_params.items()}
        if self._best_bn_stats is not None:
            for bp, saved in zip(self.model.bn_params, self._best_bn_stats):
                bp.update({k: v.copy() for k, v in saved.items()})

    def train(self):
        """Run the optimization: num_epochs epochs of minibatch updates."""
        num_train = self.X_train.shape[0]
        iterations_per_epoch = max(num_train // self.batch_size, 1)
        num_iterations = self.num_epochs * iterations_per_epoch

        self._bar = None
        if self.progress:
            from tqdm import tqdm

            self._bar = tqdm(total=num_iterations, unit="it", desc="Solver")
        try:
            for t in range(num_iterations):
                self._step()
                if self._bar is not None:
                    self._bar.update(1)

                if self.verbose and t % self.print_every == 0:
                    self._print(
                        "(Iteration %d / %d) loss: %f"
                        % (t + 1, num_iterations, self.loss_history[-1])
                    )

                # At the end of every epoch, increment the epoch counter and decay the
                # learning rate.
                epoch_end = (t + 1) % iterations_per_epoch == 0
                if epoch_end:
                    self.epoch += 1
                    for config in self.optim_configs.values():
                        if "learning_rate" in config:
                            config["learning_rate"] *= self.lr_decay

                # Check train and val accuracy on the first iteration, the last
                # iteration, and at the end of each epoch.
                first_it = t == 0
                last_it = t == num_iterations - 1
                if first_it or last_it or epoch_end:
                    train_acc = self.check_accuracy(
                        self.X_train, self.y_train, num_samples=self.num_train_samples,
                        batch_size=_EVAL_BATCH_SIZE,
                    )
                    val_acc = self.check_accuracy(
                        self.X_val, self.y_val, num_samples=self.num_val_samples,
                        batch_size=_EVAL_BATCH_SIZE,
                    )
                    self.train_acc_history.append(train_acc)
                    self.val_acc_history.append(val_acc)
                    self._save_checkpoint()

                    if self.verbose:
                        self._print(
                            "(Epoch %d / %d) train acc: %f; val_acc: %f"
                            % (self.epoch, self.num_epochs, train_acc, val_acc)
                        )

                    # Keep track of the best model. The first check always counts, so
                    # best_params is never empty (CS231N's is, if val accuracy stays 0).
                    if val_acc > self.best_val_acc or not self.best_params:
                        self.best_val_acc = val_acc
                        self._snapshot_best()
        finally:
            if self._bar is not None:
                self._bar.close()
            self._bar = None

        # At the end of training swap the best params into the model.
        self._restore_best()
