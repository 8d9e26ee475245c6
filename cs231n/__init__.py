"""Batch normalization, layer normalization and dropout in numpy (CS231N assignment 2 style).

Modules, one job each:

- ``layers``          forward/backward pairs of every layer
- ``layer_utils``     sandwich layers: affine -> [batch/layer norm] -> ReLU -> [dropout]
- ``classifiers.fc_net``  the fully-connected network that wires them
- ``optim``, ``solver``   update rules and the training loop
- ``gradient_check``  numerical gradients and ``rel_error``
- ``data_utils``      loading CIFAR-10;  ``cifar10_setup`` installs it
"""
