"""How the benchmark measures time and memory bandwidth.

Every timed figure is a median: each function is warmed up, then timed in ``repeats``
rounds. One sample is ``n`` back-to-back calls (n chosen once so that a sample lasts at
least ``min_sample_s``, which keeps timer resolution out of sub-millisecond figures),
divided by n. Within a round every function of a comparison (numpy and its reference)
is timed once, in an order that rotates from round to round, so that load from other
processes on a shared machine falls on both sides of a ratio alike.
"""
import gc
import math
import statistics
import time

import numpy as np


def interleaved_medians(fns, repeats, min_sample_s):
    """Median seconds per call of each function in fns ({name: zero-argument callable}).

    Returns {name: seconds}. The garbage collector is off while timing (as in timeit):
    a collection triggered by one function's garbage must not be billed to another.
    """
    names = list(fns)
    calls = {}
    for name in names:
        fns[name]()  # warm-up: first-call costs (imports, caches, page faults of new pools)
        # Calibrate on the fastest of three calls: one slow call must not shrink n.
        fastest = min(_time_calls(fns[name], 1) for _ in range(3))
        calls[name] = max(1, math.ceil(min_sample_s / max(fastest, 1e-9)))

    samples = {name: [] for name in names}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for round_index in range(repeats):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(_time_calls(fns[name], calls[name]) / calls[name])
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: statistics.median(values) for name, values in samples.items()}


def _time_calls(fn, n):
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - start


def copy_bandwidth(nbytes, repeats):
    """Bytes per second of np.copyto between two float64 arrays of nbytes each.

    Counts what the layers' floors count: every byte read plus every byte written
    (2 * nbytes per copy). Returns the median over ``repeats`` copies after a warm-up.
    """
    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # warm-up: the first copy also page-faults dst in
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(dst, src)
        seconds.append(time.perf_counter() - start)
    return 2 * src.nbytes / statistics.median(seconds)
