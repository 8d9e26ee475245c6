"""Batch normalization, layer normalization and dropout in numpy (CS231N assignment 2 style).

- ``layers``: forward/backward pairs of every layer; ``layer_utils``: sandwich layers
- ``classifiers.fc_net``: the fully-connected network; ``optim``, ``solver``: training
- ``gradient_check``: numerical gradients and ``rel_error``; ``data_utils``: CIFAR-10
- ``check``: the self-check, ``python -m cs231n.check``; ``properties``: the layer properties
  it shares with the tests
"""
