"""Batch normalization, layer normalization and dropout in numpy (CS231N assignment 2 style).

Modules, one job each:

- ``layers``          forward/backward pairs of every layer
- ``layer_utils``     sandwich layers: affine -> [batch/layer norm] -> ReLU (dropout is
                      not part of a sandwich: the network applies it after one)
- ``classifiers.fc_net``  the fully-connected network that wires them
- ``optim``, ``solver``   update rules and the training loop
- ``gradient_check``  numerical gradients and ``rel_error``
- ``data_utils``      loading CIFAR-10
- ``check``           the self-check: ``python -m cs231n.check``

The tools beside this package, ``student_tools`` (installing CIFAR-10, packing a
submission), are not part of a student's work.
"""
