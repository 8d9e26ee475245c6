"""The grader's agent inside the sandbox: runs the STUDENT's code, returns raw values only.

Run as a script by the sandbox (never imported by the grader, which keeps this file free of
instructor_tools imports: nothing but this file and the course's public self-check is
visible inside)::

    python -I -B worker.py --spec DIR/spec.json --arrays DIR/arrays.npz --root SUB --out OUT
        [--check CHECK_PY]

- spec.json (written by the grader) lists operations ("ops") to run on the student's
  package; arrays.npz holds their inputs, created and seeded by the grader.
- For each op the worker writes OUT/<name>.npz (numpy arrays, no pickles) and one JSON
  line in OUT/log.jsonl: {"op": name, "ok": bool, "error": "..."}. Verdicts are NOT made
  here: the grader compares these raw values with its hidden reference.
- It also reports what the student's code tried (audit hook: network, files outside its
  folder, processes; identity checks: monkeypatched numpy or worker functions) and, for
  feedback only, the hints of the course's self-check (cs231n.check) run on the student's
  code.

Everything here runs in the same process as untrusted code, so the grader treats every
byte written by this process as data to validate, never as a verdict.
"""
import argparse
import builtins
import importlib
import importlib.util
import json
import os
import signal
import sys
import time
import traceback

import numpy as np

ORIG_PID = os.getpid()
# Captured before any student code runs: the worker writes its results with these.
_open = builtins.open
_json_dumps = json.dumps
_savez = np.savez
_np_asarray = np.asarray
_monotonic = time.monotonic

_state = {"io": False, "out": None, "events": [], "allowed_read": (), "allowed_write": ()}
MAX_EVENTS = 50


class OpTimeout(BaseException):
    """An op ran past its time limit (BaseException: `except Exception` in student code
    does not swallow it)."""


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------


def _write_line(record):
    if os.getpid() != ORIG_PID:  # a forked child of student code never reports
        os._exit(0)
    _state["io"] = True
    try:
        with _open(os.path.join(_state["out"], "log.jsonl"), "a", encoding="utf-8") as handle:
            handle.write(_json_dumps(record) + "\n")
    finally:
        _state["io"] = False


def _write_arrays(name, arrays):
    if os.getpid() != ORIG_PID:
        os._exit(0)
    _state["io"] = True
    try:
        with _open(os.path.join(_state["out"], f"{name}.npz"), "wb") as handle:
            _savez(handle, **arrays)
    finally:
        _state["io"] = False


def _record(kind, detail):
    events = _state["events"]
    if len(events) < MAX_EVENTS:
        events.append({"kind": kind, "detail": str(detail)[:300]})


# Environment variables naming the sandbox's private scratch folders (set by grade.BASE_ENV).
_SCRATCH_VARS = ("TMPDIR", "HOME", "MPLCONFIGDIR", "IPYTHONDIR", "JUPYTER_RUNTIME_DIR",
                 "JUPYTER_DATA_DIR", "JUPYTER_CONFIG_DIR", "XDG_CACHE_HOME")


def _under(path, roots):
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _audit(event, args):
    """Record what student code attempts; the sandbox is what actually stops it."""
    if _state["io"]:
        return
    try:
        if event == "open":
            path, mode, flags = (list(args) + [None, None, None])[:3]
            if isinstance(path, int) or path is None:
                return
            path = os.path.abspath(os.fsdecode(path))
            writing = (isinstance(flags, int) and flags & _WRITE_FLAGS) or (
                isinstance(mode, str) and any(c in mode for c in "wax+"))
            if writing and not _under(path, _state["allowed_write"]):
                _record("write_outside", path)
            elif not writing and not _under(path, _state["allowed_read"]):
                _record("read_outside", path)
        elif event in ("socket.connect", "socket.bind", "socket.sendto", "socket.getaddrinfo"):
            _record("network", f"{event} {args[1:] if event != 'socket.getaddrinfo' else args[:2]}")
        elif event in ("os.fork", "os.forkpty", "subprocess.Popen", "os.system", "os.exec",
                       "os.posix_spawn", "pty.spawn"):
            _record("process", f"{event} {str(args)[:120]}")
        elif event in ("os.remove", "os.rename", "os.rmdir", "os.chmod", "os.chown",
                       "shutil.rmtree", "os.mkdir", "os.symlink", "os.link", "os.truncate"):
            path = args[0] if args else ""
            if isinstance(path, (str, bytes, os.PathLike)):
                path = os.path.abspath(os.fsdecode(path))
                if not _under(path, _state["allowed_write"]):
                    _record("write_outside", f"{event} {path}")
    except Exception:  # an audit hook must never break the code it watches
        pass


def _snapshot():
    """Identities of the numpy functions and worker functions student code could swap."""
    watched = {}
    for prefix, module in (("numpy", np), ("numpy.testing", np.testing),
                           ("numpy.linalg", np.linalg), ("numpy.random", np.random),
                           ("builtins", builtins), ("worker", sys.modules[__name__])):
        for key, value in list(vars(module).items()):
            if callable(value) and not key.startswith("__"):
                watched[f"{prefix}.{key}"] = (module, key, value)
    for key, value in OPS.items():
        watched[f"worker.OPS[{key!r}]"] = (OPS, key, value)
    for key in ("__add__", "__sub__", "__mul__", "__eq__", "sum", "mean", "var", "copy"):
        watched[f"numpy.ndarray.{key}"] = (np.ndarray, key, getattr(np.ndarray, key))
    return watched


def _changed(snapshot):
    changed = []
    for name, (owner, key, value) in snapshot.items():
        if isinstance(owner, dict):
            current = owner.get(key)
        elif isinstance(owner, type):
            current = getattr(owner, key, None)
        else:
            current = vars(owner).get(key, None)
        if current is not value:
            changed.append(name)
    return changed


def _error_text(exc):
    """Exception type and message, plus the last frames inside the submission."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if f.filename.startswith(_state.get("root", "//"))]
    where = "; ".join(f"{os.path.relpath(f.filename, _state['root'])}:{f.lineno} in {f.name}"
                      for f in frames[-3:])
    message = f"{type(exc).__name__}: {exc}"[:800]
    return message + (f" (at {where})" if where else "")


# ---------------------------------------------------------------------------
# Operations: call the student's functions on the grader's inputs
# ---------------------------------------------------------------------------


def _as_output(value, what):
    """A student return value as a plain numeric array (never an object array)."""
    arr = _np_asarray(value)
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
    """The course's self-check, run on the student's code: hints for the feedback."""
    spec = importlib.util.spec_from_file_location("course_selfcheck", check_py)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for piece in pieces:
        if piece not in getattr(module, "PIECES", {}):
            continue
        start = _monotonic()
        try:
            result = _timed(seconds, module.run_one, piece)
            record = {"check": piece, "passed": bool(result.passed), "hint": str(result.hint)}
        except OpTimeout:
            record = {"check": piece, "passed": False,
                      "hint": f"did not finish within {seconds:g} s"}
        except BaseException as exc:  # noqa: BLE001 - student code may raise anything
            record = {"check": piece, "passed": False, "hint": _error_text(exc)}
        record["seconds"] = round(_monotonic() - start, 3)
        _write_line(record)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", required=True)
    parser.add_argument("--arrays", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--check", default=None)
    args = parser.parse_args(argv)

    root = os.path.realpath(args.root)
    _state["out"] = os.path.realpath(args.out)
    _state["root"] = root
    # Inputs are read before any student code runs.
    with _open(args.spec, encoding="utf-8") as handle:
        spec = json.load(handle)
    with np.load(args.arrays, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}

    prefixes = sorted({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix,
                                                      os.path.dirname(np.__file__))})
    # Only the scratch folders the grader named in the environment count as the student's
    # own, not /tmp as a whole: the host folders hidden from the sandbox (the project, the
    # hidden tests, pytest's tmp_path) may themselves lie under /tmp.
    scratch = tuple(os.path.abspath(os.environ[k]) for k in _SCRATCH_VARS if os.environ.get(k))
    for folder in scratch:
        os.makedirs(folder, exist_ok=True)
    _state["allowed_write"] = (*scratch, "/dev/null", _state["out"])
    _state["allowed_read"] = (root, *prefixes, "/usr", "/proc", "/sys", "/dev", "/etc",
                              *scratch, os.path.dirname(os.path.realpath(args.spec)),
                              os.path.dirname(os.path.realpath(__file__)),
                              *(spec.get("allowed_read") or []))
    snapshot = _snapshot()
    sys.addaudithook(_audit)
    sys.path.insert(0, root)
    sys.dont_write_bytecode = True
    np.random.seed(spec.get("seed", 0))

    start = _monotonic()
    try:
        student = _timed(spec.get("import_seconds", 30), _import_student, root)
    except OpTimeout:
        _write_line({"event": "import", "ok": False, "error_type": "Timeout",
                     "error": "importing the package did not finish in time"})
        student = None
    except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt included
        _write_line({"event": "import", "ok": False, "error_type": type(exc).__name__,
                     "errno": getattr(exc, "errno", None), "error": _error_text(exc)})
        student = None
    else:
        _write_line({"event": "import", "ok": True,
                     "seconds": round(_monotonic() - start, 3)})

    if student is not None:
        for op in spec["ops"]:
            start = _monotonic()
            record = {"op": op["name"]}
            try:
                np.random.seed(op.get("seed", 0))
                result = _timed(op.get("seconds", spec.get("op_seconds", 20)),
                                OPS[op["op"]], op, arrays, student)
                _write_arrays(op["name"], result)
                record["ok"] = True
            except OpTimeout:
                record.update(ok=False, error_type="Timeout", error="did not finish within "
                              f"{op.get('seconds', spec.get('op_seconds', 20))} s")
            except BaseException as exc:  # noqa: BLE001
                record.update(ok=False, error_type=type(exc).__name__, error=_error_text(exc))
            record["seconds"] = round(_monotonic() - start, 3)
            _write_line(record)
        if args.check and spec.get("checks"):
            try:
                _run_checks(args.check, spec["checks"], spec.get("check_seconds", 30))
            except BaseException as exc:  # noqa: BLE001
                _write_line({"check": "*", "passed": False, "hint": _error_text(exc)})

    _write_line({"event": "report", "attempts": _state["events"],
                 "monkeypatched": _changed(snapshot)[:30]})
    _write_line({"event": "done"})
    sys.stdout.flush()
    # Skip interpreter shutdown: atexit handlers of student code run no more.
    os._exit(0)


if __name__ == "__main__":
    main()
