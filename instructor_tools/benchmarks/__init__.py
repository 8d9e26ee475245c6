"""Instructor benchmarks: speed and memory of the layers, the training iteration, the
notebooks and grading. Run as modules from the project root, e.g.
``python -m instructor_tools.benchmarks.bench --quick``. Not shipped in the wheel.

Kept free of imports: bench.py must set the Makefile's environment before numpy loads.
"""
