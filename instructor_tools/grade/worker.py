"""The grader's agent inside the sandbox: runs the spliced package, returns raw values only.

Run as a script by the sandbox (never imported by the grader, which keeps this file free of
instructor_tools imports: nothing but this file and the course's public self-check is
visible inside)::

    python -I -B worker.py --spec DIR/spec.json --arrays DIR/arrays.npz --root SUB
        --channel FD [--check CHECK_PY]

- SUB holds the package the grader built: the course's files with the student's answer
  regions spliced in, each region checked against the allow-list before (see
  student_tools.contract). No other student code exists here.
- spec.json (written by the grader) lists operations ("ops") to run on that package;
  arrays.npz holds their inputs, created and seeded by the grader.
- Results go to the file descriptor FD, an unnamed file the grader opened (no path in the
  sandbox, no folder the code can write): one record per op, a JSON line, followed by an
  .npz of its raw arrays when it has some (instructor_tools.grade.bounded reads this
  framing, with caps). Verdicts are NOT made here: the grader compares the raw values with
  its hidden reference.
- For feedback only, the hints of the course's self-check (cs231n.check) run on the package.
"""
import argparse
import importlib
import importlib.util
import io
import json
import os
import signal
import sys
import time
import traceback

import numpy as np

ORIG_PID = os.getpid()
_state = {"channel": None, "root": "//"}


class OpTimeout(BaseException):
    """An op ran past its time limit (BaseException: `except Exception` in student code
    does not swallow it)."""


def _send(record, arrays=None):
    """One record (and its arrays) on the channel: a JSON line, then npz_bytes of .npz."""
    if os.getpid() != ORIG_PID:  # never from a forked child
        os._exit(0)
    payload = b""
    if arrays is not None:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        payload = buffer.getvalue()
        record = dict(record, npz_bytes=len(payload))
    data = json.dumps(record).encode("utf-8") + b"\n" + payload
    view = memoryview(data)
    while view:
        view = view[os.write(_state["channel"], view):]


def _error_text(exc):
    """Exception type and message, plus the last frames inside the package."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if f.filename.startswith(_state["root"])]
    where = "; ".join(f"{os.path.relpath(f.filename, _state['root'])}:{f.lineno} in {f.name}"
                      for f in frames[-3:])
    message = f"{type(exc).__name__}: {exc}"[:800]
    return message + (f" (at {where})" if where else "")


# ---------------------------------------------------------------------------
# Operations: call the student's functions on the grader's inputs
# ---------------------------------------------------------------------------


def _as_output(value, what):
    """A student return value as a plain numeric array (never an object array)."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{what}: expected a numeric array, got {type(value).__name__} "
                        f"(dtype {arr.dtype})")
    return np.array(arr, copy=True)


def _param(spec, arrays):
    """A parameter dict from JSON values and named input arrays (copies)."""
    param = dict(spec.get("param", {}))
    for key, name in spec.get("param_arrays", {}).items():
        param[key] = arrays[name].copy()
    return param


def op_forward_steps(spec, arrays, student):
    """Call a forward function once per step with ONE param dict (state accumulates).

    Returns out{k} and, after each step, every array the param dict holds ({key}{k}).
    """
    fn = getattr(student["layers"], spec["function"])
    param = _param(spec, arrays)
    result = {}
    for k, names in enumerate(spec["steps"]):
        args = [arrays[n].copy() for n in names]
        out, _cache = fn(*args, param)
        result[f"out{k}"] = _as_output(out, f"{spec['function']} output")
        for key, value in param.items():
            if isinstance(value, np.ndarray):
                result[f"{key}{k}"] = _as_output(value, f"param['{key}']")
    return result


def _cache(spec, arrays):
    cache = {}
    for key, source in spec["cache"].items():
        if "array" in source:
            cache[key] = arrays[source["array"]].copy()
        elif "shape" in source:
            cache[key] = tuple(source["shape"])
        else:
            cache[key] = source.get("value")
    return cache


def _returns(spec, value):
    names = spec["returns"]
    values = value if len(names) > 1 else (value,)
    if len(values) != len(names):
        raise TypeError(f"{spec['function']}: expected {len(names)} return values "
                        f"({', '.join(names)}), got {len(values)}")
    return {n: _as_output(v, f"{spec['function']} {n}") for n, v in zip(names, values)}


def op_backward(spec, arrays, student):
    """Call a backward function on a cache built by the grader (documented keys)."""
    fn = getattr(student["layers"], spec["function"])
    return _returns(spec, fn(arrays[spec["dout"]].copy(), _cache(spec, arrays)))


def op_backward_alone(spec, arrays, student):
    """As op_backward, with layers.<replace> swapped for a function that raises.

    Tells whether the function computes its result itself or delegates to <replace>.
    """
    layers = student["layers"]
    original = getattr(layers, spec["replace"])
    calls = []

    def replaced(*args, **kwargs):
        calls.append(1)
        raise RuntimeError(f"{spec['replace']} was called")

    setattr(layers, spec["replace"], replaced)
    try:
        result = _returns(spec, getattr(layers, spec["function"])(
            arrays[spec["dout"]].copy(), _cache(spec, arrays)))
    except RuntimeError:
        if calls:
            result = {}
        else:
            raise
    finally:
        setattr(layers, spec["replace"], original)
    result["replaced_calls"] = np.array(len(calls))
    return result


def op_network(spec, arrays, student):
    """Build FullyConnectedNet(**init); optionally set params, then loss(X, y).

    Returns param/<k> (after init), and with X: loss, grad/<k>, the dropout masks drawn
    (mask/<i>, in call order) and each layer's running statistics.
    """
    init = dict(spec["init"])
    init["dtype"] = np.dtype(init.get("dtype", "float64")).type
    net = student["fc_net"].FullyConnectedNet(**init)
    result = {}
    for key, value in net.params.items():
        result[f"param/{key}"] = _as_output(value, f"params['{key}']")
    if "X" not in spec:
        return result
    if spec.get("params"):
        net.params = {k: arrays[name].copy() for k, name in spec["params"].items()}
    masks = []
    layers, fc_net = student["layers"], student["fc_net"]
    originals = {mod: getattr(mod, "dropout_forward", None) for mod in (layers, fc_net)}
    real = originals[layers]

    def recording(x, dropout_param):
        out, cache = real(x, dropout_param)
        mask = cache.get("mask") if isinstance(cache, dict) else None
        if mask is None and dropout_param.get("mode") == "train":
            with np.errstate(divide="ignore", invalid="ignore"):
                mask = np.where(x != 0, out / x, 0.0)
        if mask is not None:
            masks.append(_as_output(mask, "dropout mask"))
        return out, cache

    for mod, original in originals.items():
        if original is not None:
            setattr(mod, "dropout_forward", recording)
    try:
        value = net.loss(arrays[spec["X"]].copy(), arrays[spec["y"]].copy())
    finally:
        for mod, original in originals.items():
            if original is not None:
                setattr(mod, "dropout_forward", original)
    if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], dict)):
        raise TypeError(f"FullyConnectedNet.loss(X, y): expected (loss, grads), got "
                        f"{type(value).__name__}")
    loss, grads = value
    result["loss"] = _as_output(loss, "loss")
    for key, grad in grads.items():
        result[f"grad/{key}"] = _as_output(grad, f"grads['{key}']")
    for i, mask in enumerate(masks):
        result[f"mask/{i}"] = mask
    return result


OPS = {
    "forward_steps": op_forward_steps,
    "backward": op_backward,
    "backward_alone": op_backward_alone,
    "network": op_network,
}


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def _alarm(signum, frame):
    raise OpTimeout()


def _timed(seconds, fn, *args):
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _import_student(root):
    student = {}
    student["package"] = importlib.import_module("cs231n")
    origin = os.path.realpath(getattr(student["package"], "__file__", "") or "")
    if not origin.startswith(os.path.realpath(root) + os.sep):
        raise ImportError(f"cs231n was imported from {origin}, not from the submission")
    student["layers"] = importlib.import_module("cs231n.layers")
    student["fc_net"] = importlib.import_module("cs231n.classifiers.fc_net")
    return student


def _run_checks(check_py, pieces, seconds):
    """The course's self-check, run on the package: hints for the feedback."""
    spec = importlib.util.spec_from_file_location("course_selfcheck", check_py)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for piece in pieces:
        if piece not in getattr(module, "PIECES", {}):
            continue
        start = time.monotonic()
        try:
            result = _timed(seconds, module.run_one, piece)
            record = {"check": piece, "passed": bool(result.passed), "hint": str(result.hint)}
        except OpTimeout:
            record = {"check": piece, "passed": False,
                      "hint": f"did not finish within {seconds:g} s"}
        except BaseException as exc:  # noqa: BLE001 - student code may raise anything
            record = {"check": piece, "passed": False, "hint": _error_text(exc)}
        record["seconds"] = round(time.monotonic() - start, 3)
        _send(record)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", required=True)
    parser.add_argument("--arrays", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--channel", required=True, type=int)
    parser.add_argument("--check", default=None)
    args = parser.parse_args(argv)

    root = os.path.realpath(args.root)
    _state["channel"] = args.channel
    _state["root"] = root
    # Inputs are read before any student code runs.
    with open(args.spec, encoding="utf-8") as handle:
        spec = json.load(handle)
    with np.load(args.arrays, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    for key in ("TMPDIR", "HOME", "MPLCONFIGDIR"):
        if os.environ.get(key):
            os.makedirs(os.environ[key], exist_ok=True)
    sys.path.insert(0, root)
    sys.dont_write_bytecode = True
    np.random.seed(spec.get("seed", 0))

    start = time.monotonic()
    try:
        student = _timed(spec.get("import_seconds", 30), _import_student, root)
    except OpTimeout:
        _send({"event": "import", "ok": False, "error_type": "Timeout",
               "error": "importing the package did not finish in time"})
        student = None
    except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt included
        _send({"event": "import", "ok": False, "error_type": type(exc).__name__,
               "errno": getattr(exc, "errno", None), "error": _error_text(exc)})
        student = None
    else:
        _send({"event": "import", "ok": True, "seconds": round(time.monotonic() - start, 3)})

    if student is not None:
        for op in spec["ops"]:
            start = time.monotonic()
            record, result = {"op": op["name"]}, None
            try:
                np.random.seed(op.get("seed", 0))
                result = _timed(op.get("seconds", spec.get("op_seconds", 20)),
                                OPS[op["op"]], op, arrays, student)
                record["ok"] = True
            except OpTimeout:
                record.update(ok=False, error_type="Timeout", error="did not finish within "
                              f"{op.get('seconds', spec.get('op_seconds', 20))} s")
            except BaseException as exc:  # noqa: BLE001
                record.update(ok=False, error_type=type(exc).__name__, error=_error_text(exc),
                              errno=getattr(exc, "errno", None))
            record["seconds"] = round(time.monotonic() - start, 3)
            _send(record, result)
        if args.check and spec.get("checks"):
            try:
                _run_checks(args.check, spec["checks"], spec.get("check_seconds", 30))
            except BaseException as exc:  # noqa: BLE001
                _send({"check": "*", "passed": False, "hint": _error_text(exc)})

    _send({"event": "done"})
    sys.stdout.flush()
    # Skip interpreter shutdown: nothing of the package runs after the last record.
    os._exit(0)


if __name__ == "__main__":
    main()
