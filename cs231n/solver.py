"""The training loop: minibatch gradient descent on a classification model (CS231N).

    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-3},
                    lr_decay=0.95, num_epochs=10, batch_size=50, print_every=100)
    solver.train()  # then model.params holds solver.best_params
"""
import os
import pickle

import numpy as np
from tqdm import tqdm

from cs231n import optim
from cs231n.validation import (check_array, check_examples, check_positive_finite,
                               check_positive_int, check_same_length)

__all__ = ["Solver"]

# Examples per forward pass when train() checks accuracy: ten times CS231N's 100, which
# makes the checks 30-50% faster for the notebooks' small networks in little memory.
_EVAL_BATCH_SIZE = 1000


def _optional_positive_int(value, name):
    return None if value is None else check_positive_int(value, name)


class Solver:
    """Trains a classification model with minibatch stochastic gradient descent.

    Required: data, a dict of 'X_train': (N_train, d_1, ..., d_k), 'y_train': (N_train,)
    integer labels, 'X_val' and 'y_val'; and model, with ``params``, a dict of arrays, and
    ``loss(X, y=None)``: the scores (N, C) of a test-time pass if y is None, else (loss, grads).

    Optional keyword arguments (any other is a ValueError naming it):
    - update_rule: 'sgd', 'sgd_momentum', 'rmsprop', 'adam' (see cs231n.optim) or a callable
    - optim_config: the update rule's hyperparameters; each parameter gets its OWN copy,
      because the rules keep per-parameter state in it
    - lr_decay: the learning rate is multiplied by this after every epoch
    - batch_size, num_epochs: minibatch size, epochs to train
    - num_train_samples, num_val_samples: examples used to estimate the training and
      validation accuracy at each check (None: all)
    - checkpoint_name: if not None, the model and histories are pickled to
      "<checkpoint_name>_epoch_<epoch>.pkl" at every check
    - print_every, verbose: print CS231N's progress lines, the loss every print_every iterations
    - progress: a tqdm bar on stderr, off by default because its rate and ETA vary and nbval
      would see them in a notebook's stored outputs. Not in CS231N.

    An iteration draws batch_size examples WITH replacement from np.random (as CS231N:
    np.random.seed makes a run reproducible); an epoch is max(N_train // batch_size, 1)
    iterations. Accuracies are checked after the first iteration and at every epoch's end:
    train_acc_history[e] is the accuracy after e epochs.

    train() ends by restoring best_params, the parameters of the check with the best
    validation accuracy, and the batch norm running statistics in ``model.bn_params`` of
    that check: test-mode scores need both (CS231N restores params only).
    """

    def __init__(self, model, data, *, update_rule="sgd", optim_config=None, lr_decay=1.0,
                 batch_size=100, num_epochs=10, num_train_samples=1000, num_val_samples=None,
                 checkpoint_name=None, print_every=10, verbose=True, progress=False,
                 **unknown):
        if unknown:  # CS231N raises ValueError here (its signature is **kwargs): keep that.
            valid = ", ".join(map(repr, Solver.__init__.__kwdefaults__))
            raise ValueError(f"Solver: unrecognized arguments {', '.join(map(repr, unknown))}; "
                             f"valid options: {valid}")
        self.model = model

        if not isinstance(data, dict):
            raise TypeError(f"data: expected a dict, got {type(data).__name__}")
        keys = ["X_train", "y_train", "X_val", "y_val"]
        missing = [k for k in keys if k not in data]
        if missing:
            raise ValueError(f"data: expected the keys {keys}, missing {missing}")
        for X, y in (("X_train", "y_train"), ("X_val", "y_val")):
            check_examples(data[X], data[y], f"data[{X!r}]", f"data[{y!r}]")
        self.X_train, self.y_train, self.X_val, self.y_val = (data[k] for k in keys)

        if isinstance(update_rule, str):
            if update_rule not in optim.UPDATE_RULES:
                raise ValueError(f"update_rule: expected one of {sorted(optim.UPDATE_RULES)} "
                                 f"or a callable, got {update_rule!r}")
            update_rule = optim.UPDATE_RULES[update_rule]
        elif not callable(update_rule):
            raise TypeError(f"update_rule: expected a name in cs231n.optim or a callable, "
                            f"got {type(update_rule).__name__}")
        self.update_rule = update_rule
        optim_config = {} if optim_config is None else optim_config
        if not isinstance(optim_config, dict):
            raise TypeError(f"optim_config: expected a dict, got {type(optim_config).__name__}")
        self.optim_config = optim_config

        self.lr_decay = check_positive_finite(lr_decay, "lr_decay")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.num_epochs = check_positive_int(num_epochs, "num_epochs")
        self.num_train_samples = _optional_positive_int(num_train_samples, "num_train_samples")
        self.num_val_samples = _optional_positive_int(num_val_samples, "num_val_samples")
        self.checkpoint_name = checkpoint_name
        self.print_every = check_positive_int(print_every, "print_every")
        self.verbose, self.progress = verbose, progress

        self._bar = None  # the tqdm bar while train() runs with progress=True
        self._reset()

    def _reset(self):
        """Set up the bookkeeping variables for a fresh optimization."""
        self.epoch, self.best_val_acc, self.best_params, self._best_bn_stats = 0, 0, {}, None
        self.loss_history, self.train_acc_history, self.val_acc_history = [], [], []
        # A copy per parameter: the rules keep per-parameter state (velocity, m, v, t) in it.
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
        keys = ("model", "update_rule", "lr_decay", "optim_config", "batch_size",
                "num_train_samples", "num_val_samples", "epoch", "loss_history",
                "train_acc_history", "val_acc_history")
        checkpoint = {k: getattr(self, k) for k in keys}
        filename = f"{os.fspath(self.checkpoint_name)}_epoch_{self.epoch}.pkl"
        if self.verbose:
            self._print(f'Saving checkpoint to "{filename}"')
        with open(filename, "wb") as f:
            pickle.dump(checkpoint, f)

    def check_accuracy(self, X, y, num_samples=None, batch_size=100):
        """Fraction of examples the model classifies correctly (test-mode forward pass).

        Inputs:
        - X: (N, d_1, ..., d_k) data; y: (N,) integer labels
        - num_samples: if not None and N > num_samples, estimate the accuracy on
          num_samples examples drawn with np.random (with replacement, as CS231N)
        - batch_size: examples per forward pass (bounds memory, does not change the result)

        Returns acc, a Python float in [0, 1].
        """
        # A (N, 1) y would broadcast against the (N,) predictions and count N * N pairs.
        check_same_length(X, "X", check_array(y, "y", ndim=1, shape_doc="(N,)"), "y")
        num_samples = _optional_positive_int(num_samples, "num_samples")
        batch_size = check_positive_int(batch_size, "batch_size")

        N = X.shape[0]
        if num_samples is not None and N > num_samples:
            mask = np.random.choice(N, num_samples)
            N = num_samples
            X = X[mask]
            y = y[mask]

        num_correct = 0
        for i in range(0, N, batch_size):
            scores = self.model.loss(X[i:i + batch_size])
            num_correct += int(np.count_nonzero(scores.argmax(axis=1) == y[i:i + batch_size]))
        return num_correct / N if N else 0.0

    def _print(self, line):
        # bar.write keeps the bar intact below the printed line.
        (print if self._bar is None else self._bar.write)(line)

    def _snapshot_best(self):
        self.best_params = {k: v.copy() for k, v in self.model.params.items()}
        bn_params = getattr(self.model, "bn_params", None)
        if isinstance(bn_params, list):
            self._best_bn_stats = [{k: bp[k].copy() for k in ("running_mean", "running_var")
                                    if k in bp} for bp in bn_params]

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

        self._bar = tqdm(total=num_iterations, unit="it", desc="Solver") if self.progress else None
        try:
            for t in range(num_iterations):
                self._step()
                if self._bar is not None:
                    self._bar.update(1)

                if self.verbose and t % self.print_every == 0:
                    self._print("(Iteration %d / %d) loss: %f"
                                % (t + 1, num_iterations, self.loss_history[-1]))

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
                if t == 0 or t == num_iterations - 1 or epoch_end:
                    train_acc = self.check_accuracy(self.X_train, self.y_train,
                                                    self.num_train_samples, _EVAL_BATCH_SIZE)
                    val_acc = self.check_accuracy(self.X_val, self.y_val,
                                                  self.num_val_samples, _EVAL_BATCH_SIZE)
                    self.train_acc_history.append(train_acc)
                    self.val_acc_history.append(val_acc)
                    self._save_checkpoint()
                    if self.verbose:
                        self._print("(Epoch %d / %d) train acc: %f; val_acc: %f"
                                    % (self.epoch, self.num_epochs, train_acc, val_acc))

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
