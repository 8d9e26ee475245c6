"""The allow-list the grader and the submission packer apply to answer-region bodies."""
import ast
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

import cs231n.layer_utils
import cs231n.layers
from student_tools import allowlist
from student_tools.allowlist import (
    LAYER_FUNCTIONS, NUMPY_DENIED, NUMPY_TREE, SAFE_BUILTINS, Refusal, bound_names,
    check_body,
)
from student_tools.markers import SOLUTION_BEGIN_RE, SOLUTION_END_RE

REPO = Path(__file__).resolve().parents[2]
COURSE_FILES = ("cs231n/layers.py", "cs231n/classifiers/fc_net.py")


# ------------------------------------------------------------ the course's own solution
def course_regions():
    """(id, body, bound) for every solution region of the course files, as they are today."""
    found = []
    for rel in COURSE_FILES:
        text = (REPO / rel).read_text()
        funcs = [n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.FunctionDef)]
        lines = text.splitlines()
        start = None
        for lineno, line in enumerate(lines, start=1):
            if SOLUTION_BEGIN_RE.match(line):
                start = lineno
            elif SOLUTION_END_RE.match(line):
                body = textwrap.dedent("\n".join(lines[start:lineno - 1]))
                # The innermost function around the region: the latest one to start.
                func = max((f for f in funcs if f.lineno < start <= f.end_lineno),
                           key=lambda f: f.lineno)
                found.append((f"{Path(rel).stem}:{func.name}:{start}", body, bound_names(func)))
    return found


COURSE_REGIONS = course_regions()


def test_course_regions_found():
    by_file = {rel: sum(r[0].startswith(Path(rel).stem + ":") for r in COURSE_REGIONS)
               for rel in COURSE_FILES}
    assert all(n >= 1 for n in by_file.values()), by_file
    assert all(body.strip() for _, body, _ in COURSE_REGIONS)


@pytest.mark.parametrize("body, bound", [r[1:] for r in COURSE_REGIONS],
                         ids=[r[0] for r in COURSE_REGIONS])
def test_course_solution_passes(body, bound):
    assert check_body(body, bound) == []


# ------------------------------------------------------------------------ honest styles
class Net:
    """Enough of FullyConnectedNet for the honest snippets to run."""

    def __init__(self):
        self.params = {f"W{i}": np.ones((3, 3)) for i in range(3)}
        self.normalization = "batchnorm"


def namespace():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    return {
        "np": np, "x": x, "w": np.ones((3, 3)), "b": np.zeros(3), "N": 4, "D": 3, "p": 0.5,
        "eps": 1e-5, "L": 3, "rng": rng, "self": Net(), "grads": {}, "bn_param": {},
        "dropout_param": {"seed": 1}, "mode": "train",
        "cache": cs231n.layer_utils.affine_relu_forward(x, np.ones((3, 3)), np.zeros(3))[1],
        "dout": np.ones((4, 3)),
        **{name: getattr(cs231n.layer_utils, name) for name in LAYER_FUNCTIONS},
    }


HONEST = {
    "nested-helpers": """
        def centre(a, axis):
            return a - a.mean(axis=axis, keepdims=True)

        def normalize(a):
            c = centre(a, 0)
            return c / np.sqrt((c ** 2).mean(axis=0) + eps)
        out = normalize(x) @ w
    """,
    "lambda": """
        scale = lambda a, k=2: a * k
        out = scale(x) + max(map(lambda v: v * 2, [1, 2]))
    """,
    "comprehensions": """
        norms = [np.linalg.norm(row) for row in x]
        squares = {i: v ** 2 for i, v in enumerate(norms) if v > 0}
        total = sum(v for v in squares.values()) + len({round(v) for v in norms})
        pairs = sorted(zip(norms, range(N)), reverse=True)
    """,
    "einsum": """
        xc = x - x.mean(axis=0)
        var = np.einsum("ij,ij->j", xc, xc) / N
        inv_std = 1.0 / np.sqrt(var + eps)
    """,
    "keepdims-matmul": """
        mu = x.mean(axis=1, keepdims=True)
        out = (x - mu) @ w + b
        out = out.T.reshape(N, -1)
    """,
    "np-random-mask": """
        mask = (np.random.rand(*x.shape) < p) / p
        out = x * mask
    """,
    "cs231n-dropout": """
        if "seed" in dropout_param:
            np.random.seed(dropout_param["seed"])
        mask = (np.random.rand(*x.shape) < p) / p
        out = x * mask
    """,
    "rng": """
        u = rng.random(x.shape)
        mask = np.divide(u < p, x.dtype.type(p), dtype=x.dtype)
        out = x * mask + rng.standard_normal(x.shape) * 0
    """,
    "reshape": """
        flat = x.reshape(N, -1)
        y = flat.astype(np.float32, copy=False).sum(axis=0).tolist()
    """,
    "unpacking": """
        N2, *rest = x.shape
        a, (b2, c) = 1, (2, 3)
        first, last = rest[0], rest[-1]
        q, r = divmod(N2, 3)
    """,
    "errors": """
        if p <= 0:
            raise ValueError(f"p must be in (0, 1], got {p!r}")
        if x.ndim != 2:
            raise NotImplementedError("only 2-D x, got %d-D" % x.ndim)
        if mode not in ("train", "test"):
            raise KeyError(mode)
        assert x.shape[0] == N, f"expected {N} rows, got {x.shape}"
    """,
    "reversed-range": """
        for i in reversed(range(L)):
            grads[f"W{i}"] = self.params[f"W{i}"] * 0
            if i == 0:
                break
            continue
    """,
    "self-params": """
        for i in range(1, L):
            self.params[f"gamma{i}"] = np.ones(3)
            self.params[f"beta{i}"] = np.zeros(3)
        names = [k for k, v in self.params.items() if isinstance(v, np.ndarray)]
        if self.normalization is not None and self.normalization.startswith("batch"):
            pass
    """,
    "layer-functions": """
        dout, dw, db = affine_relu_backward(dout, cache)
        out, cache2 = affine_relu_forward(x, w, b)
        out, dcache = dropout_forward(out, {"mode": "train", "p": p})
    """,
    "stores-rooted-in-locals": """
        bn_param["running_mean"] = x.mean(axis=0)
        out = x.copy()
        out[out < 0] = 0
        out += b
        out[:, 0] *= 2
    """,
    "own-underscore-locals": """
        _tmp = x * 2
        for _ in range(2):
            _tmp = _tmp + 1
        total = _tmp.sum()
    """,
    "while-walrus-fft": """
        k = 0
        while (k := k + 1) < 3:
            pass
        spectrum = np.fft.fft(x, axis=0).real
        print(f"{k}: {spectrum.shape}", abs(-1), any([True]), all([]), str(pow(2, 3)))
        total = np.add.reduce(x, axis=0) + np.linalg.inv(np.eye(3)) @ np.ones(3)
    """,
}


@pytest.mark.parametrize("source", HONEST.values(), ids=HONEST.keys())
def test_honest_style_passes_and_runs(source):
    source = textwrap.dedent(source)
    values = namespace()
    bound = set(values) - set(LAYER_FUNCTIONS) - {"np"}
    assert check_body(source, bound) == []
    exec(compile(source, "<region>", "exec"), values)  # real code: it runs


# ---------------------------------------------------------------------------- hostile
BOUND = {"x", "rng", "self", "y", "d", "dout", "cache"}
HOSTILE = [
    ("import os", "import"),
    ("from os import system", "import"),
    ('__import__("os")', "'__import__'"),
    ('open("/etc/passwd")', "'open'"),
    ('getattr(np, "load")', "'getattr'"),
    ('np.load("x.npy")', "'np.load'"),
    ('np.save("x.npy", x)', "'np.save'"),
    ("np.lib.format", "'np.lib'"),
    ("np.testing.assert_allclose(x, x)", "'np.testing'"),
    ("np.random.bit_generator", "'np.random.bit_generator'"),
    ("np.char.upper(x)", "'np.char'"),
    ('x.tofile("f")', "'tofile'"),
    ('x.dump("f")', "'dump'"),
    ("x.ctypes.data", "'ctypes'"),
    ("rng.bit_generator.ctypes", "'ctypes'"),
    ("rng.bit_generator.capsule", "'capsule'"),
    ("(i for i in []).gi_frame.f_globals", "'gi_frame'"),
    ("np.mean = lambda *a: 0", "'np.mean'"),
    ("np.random.seed = None", "'np.random.seed'"),
    ('np.sctypeDict["x"] = 1', "np.sctypeDict"),
    ("batchnorm_backward.x = 1", "'batchnorm_backward.x'"),
    ("batchnorm_backward.__code__", "'__code__'"),
    ("().__class__.__bases__", "'__class__'"),
    ('"{0.__class__}".format(x)', "'format'"),
    ('"{x}".format_map(d)', "'format_map'"),
    ("x.dtype.type.mro()", "'mro'"),
    ('exec("1")', "'exec'"),
    ('eval("1")', "'eval'"),
    ("globals()", "'globals'"),
    ("vars()", "'vars'"),
    ("breakpoint()", "'breakpoint'"),
    ("input()", "'input'"),
    ("type(x)", "'type'"),
    ("try:\n    pass\nexcept Exception:\n    pass", "try"),
    ('with open("f") as f:\n    pass', "with"),
    ("class A:\n    pass", "class"),
    ("global np", "global"),
    ("def f():\n    nonlocal x", "nonlocal"),
    ("del x", "del"),
    ("yield 1", "yield"),
    ("async def f():\n    await x", "async"),
    ("match x:\n    case _:\n        pass", "match"),
    ("@dec\ndef f():\n    pass", "decorators"),
    ("def f(a=open):\n    return a", "'open'"),
    ("f = lambda a=__builtins__: a", "'__builtins__'"),
    ("raise SystemExit", "raise"),
    ("raise cache", "raise"),
    ("os.system('ls')", "'os'"),
    ("sys.exit()", "'sys'"),
    ("math.sqrt(2)", "'math'"),
    ("check_positive_int(3, 'n')", "'check_positive_int'"),
    ("_check_batch(x, 'x', 2, '')", "'_check_batch'"),
    ("m = np", "'np'"),
    ("np = x", "rebinding 'np'"),
    ("self = x", "rebinding 'self'"),
    ("for self in [x]:\n    pass", "rebinding 'self'"),
    ("self._check_inputs(x, None)", "'_check_inputs'"),
    ("open = len", "'open'"),
    ("x.flags.writeable = True", "'writeable'"),
    ("np.zeros(3)[0] = 1", "assignment"),
]


@pytest.mark.parametrize("source, why", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_is_refused(source, why):
    refusals = check_body(source, BOUND)
    assert refusals, source
    assert any(why in r.why for r in refusals), refusals
    lines = source.splitlines()
    for r in refusals:
        assert 1 <= r.line <= len(lines) and r.text == lines[r.line - 1].strip()


def test_refusal_names_the_line():
    body = "mu = x.mean(axis=0)\nxc = x - mu\nx.tofile('/tmp/leak')\nout = xc * 2\n"
    assert check_body(body, {"x"}) == [
        Refusal(3, "x.tofile('/tmp/leak')", "attribute 'tofile' is not allowed")]
    nested = "def helper(a):\n    b = a * 2\n    return open(b)\nout = helper(x)"
    assert [(r.line, r.text) for r in check_body(nested, {"x"})] == [(3, "return open(b)")]


def test_syntax_error():
    refusals = check_body("out = (x +\n", {"x"})
    assert len(refusals) == 1 and refusals[0].why.startswith("syntax error")
    assert refusals[0].line == 1


def test_denied_names_refused_even_when_bound():
    # A notebook's globals may hold get_ipython, exit, open...: still refused.
    for name in ("open", "exit", "get_ipython", "eval"):
        assert check_body(f"{name}()", {name}), name


def test_underscore_names_must_be_the_regions_own():
    assert check_body("y = _x * 2", {"_x"})
    assert check_body("_x = 1\ny = _x * 2", ()) == []
    assert check_body("__import__ = 1\n__import__('os')", ())


def test_functions_parameter():
    assert check_body("out = my_layer(x)", {"x"})
    assert check_body("out = my_layer(x)", {"x"}, functions=["my_layer"]) == []
    assert check_body("my_layer.x = 1", {"x"}, functions=["my_layer"])


def test_bound_names():
    func = ast.parse(textwrap.dedent("""
        def f(a, /, b, *args, c=1, **kw):
            d = 1
            e, [g, *h] = 1, [2, 3]
            i += 1
            for j in range(3):
                pass
            with ctx() as k:
                pass
            if (m := 2):
                pass
            def helper(n):
                o = n
            try:
                pass
            except ValueError as err:
                pass
            import os
            self.attr = 1
    """)).body[0]
    assert bound_names(func) == {"a", "b", "args", "c", "kw", "d", "e", "g", "h", "i", "j",
                                 "k", "m", "helper", "o", "err"}


def test_layer_functions_match_the_package():
    sandwiches = [n for n in cs231n.layer_utils.__all__ if n not in cs231n.layers.__all__]
    assert len(set(LAYER_FUNCTIONS)) == len(LAYER_FUNCTIONS)
    assert set(LAYER_FUNCTIONS) == set(cs231n.layers.__all__) | set(sandwiches)
    assert all(callable(getattr(cs231n.layer_utils, n)) for n in LAYER_FUNCTIONS)


def test_allow_list_data():
    import builtins
    assert {"range", "len", "isinstance", "print"} <= SAFE_BUILTINS
    assert all(callable(getattr(builtins, n)) for n in SAFE_BUILTINS)
    assert not SAFE_BUILTINS & allowlist.DENIED_NAMES
    # np's tree reaches only random, linalg and fft as modules, and none of the denied names.
    modules = [n for n, sub in NUMPY_TREE.items() if isinstance(sub, dict)]
    assert sorted(modules) == ["fft", "linalg", "random"]
    for tree, module in [(NUMPY_TREE, np), *((NUMPY_TREE[m], getattr(np, m)) for m in modules)]:
        leaves = [n for n, sub in tree.items() if sub is None]
        assert not NUMPY_DENIED & set(leaves)
        assert not any(isinstance(vars(module)[n], types.ModuleType) for n in leaves)
    assert {"einsum", "maximum", "sqrt"} <= set(NUMPY_TREE)
    assert {"rand", "default_rng", "seed"} <= set(NUMPY_TREE["random"])
    assert not allowlist.ATTRIBUTES & allowlist.DENIED_ATTRIBUTES
    assert {"shape", "reshape", "T", "type", "random", "items"} <= allowlist.ATTRIBUTES
