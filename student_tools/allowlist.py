"""The allow-list an answer region's code must pass before the grader runs it.

The grader runs only the solution region bodies, spliced into the course's own files; the
packer runs the same check to warn students before they zip. ``check_body`` reads a body as
an AST (nothing is executed) and returns a Refusal for everything not allowed here:

- arithmetic, comparisons, constants, subscripts, slices, ``@``, unpacking, f-strings,
  ``assert``, ``if``/``for``/``while``/``break``/``continue``/``pass``/``return``,
  comprehensions, nested ``def`` (no decorators), ``lambda``, ``raise`` of a built-in
  exception class;
- names: the enclosing function's (``bound``), the region's own (``_name``s only if it
  assigns them), SAFE_BUILTINS, built-in exception classes, the layer functions and ``np``;
- ``np.<name>`` and ``np.random|linalg|fft.<name>`` (public, not modules, minus
  NUMPY_DENIED); other attributes public on ATTRIBUTE_TYPES, and any public one of ``self``;
- assignment to names, and to attributes or items of the region's or function's variables.

Refused, notably: import, global, nonlocal, class, try, with, del, async, yield, match,
DENIED_NAMES (even when bound), DENIED_ATTRIBUTES and DENIED_ATTRIBUTE_PREFIXES, dunder
names, stores through anything else (``np.mean = ...``), rebinding ``np`` or ``self``.
"""
import ast
import builtins
import textwrap
import types
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.fft
import numpy.linalg
import numpy.random

# ---------------------------------------------------------------- the allow-list, as data
SAFE_BUILTINS = frozenset("""range len enumerate zip min max abs sum float int bool tuple list
    dict isinstance print reversed sorted round any all str set map divmod pow""".split())
EXCEPTIONS = frozenset(name for name, value in vars(builtins).items()
                       if isinstance(value, type) and issubclass(value, Exception))
# Refused even when the enclosing function or the notebook binds them.
DENIED_NAMES = frozenset("""open exec eval compile globals locals vars getattr setattr delattr
    __import__ breakpoint input type object super memoryview help exit quit get_ipython In
    Out""".split())
# The layer functions a region may call (cs231n.layers.__all__ + layer_utils' sandwiches).
LAYER_FUNCTIONS = tuple("""affine_forward affine_backward relu_forward relu_backward
    softmax_loss batchnorm_forward batchnorm_backward batchnorm_backward_alt layernorm_forward
    layernorm_backward dropout_forward dropout_backward affine_relu_forward affine_relu_backward
    affine_norm_relu_forward affine_norm_relu_backward""".split())
NUMPY_SUBMODULES = ("random", "linalg", "fft")
NUMPY_DENIED = frozenset("""load save savez savez_compressed savetxt loadtxt genfromtxt fromfile
    fromregex memmap DataSource ctypeslib lib f2py testing distutils test""".split())
ATTRIBUTE_TYPES = (
    np.ndarray, np.generic, np.float64, np.float32, np.int64, np.bool_, np.dtype, np.ufunc,
    np.random.Generator, np.random.RandomState, dict, list, tuple, str, int, float, bool, range,
)
DENIED_ATTRIBUTES = NUMPY_DENIED | set("""tofile ctypes cffi capsule dump dumps format format_map
    mro cell_contents""".split())
DENIED_ATTRIBUTE_PREFIXES = ("_", "co_", "f_", "gi_", "cr_", "ag_", "tb_", "func_", "im_")
REFUSED_CONSTRUCTS = {
    ast.Import: "import", ast.ImportFrom: "import", ast.Global: "global",
    ast.Nonlocal: "nonlocal", ast.ClassDef: "class", ast.Try: "try", ast.With: "with",
    ast.Delete: "del", ast.AsyncFunctionDef: "async", ast.AsyncFor: "async",
    ast.AsyncWith: "async", ast.Await: "await", ast.Yield: "yield",
    ast.YieldFrom: "yield from", ast.Match: "match", ast.TryStar: "try",
}
ALLOWED_NODES = (
    ast.Module, ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.If, ast.For,
    ast.While, ast.Break, ast.Continue, ast.Pass, ast.Return, ast.FunctionDef, ast.Assert,
    ast.Raise, ast.Lambda, ast.arguments, ast.arg, ast.keyword, ast.comprehension,
    ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.BoolOp, ast.BinOp,
    ast.UnaryOp, ast.Compare, ast.IfExp, ast.NamedExpr, ast.Call, ast.Constant,
    ast.JoinedStr, ast.FormattedValue, ast.Attribute, ast.Subscript, ast.Slice,
    ast.Starred, ast.Name, ast.List, ast.Tuple, ast.Set, ast.Dict,
    ast.expr_context, ast.boolop, ast.operator, ast.unaryop, ast.cmpop,
)


def _public(name):
    return not name.startswith(DENIED_ATTRIBUTE_PREFIXES) and name not in DENIED_ATTRIBUTES


def _numpy_names(module):
    """module's public names that are not modules (lazy submodules are not in vars)."""
    found = vars(module)
    return {n: None for n in dir(module)
            if _public(n) and n in found and not isinstance(found[n], types.ModuleType)}


# np's tree: a dict is a module (must be followed by an attribute), None a leaf.
NUMPY_TREE = _numpy_names(np) | {sub: _numpy_names(getattr(np, sub)) for sub in NUMPY_SUBMODULES}
ATTRIBUTES = frozenset(n for t in ATTRIBUTE_TYPES for n in dir(t) if _public(n))


# ----------------------------------------------------------------------------- the check
@dataclass(frozen=True)
class Refusal:
    line: int  # 1-based line number within the body source given
    text: str  # that source line, stripped (shown to the student)
    why: str


def _binds(nodes, with_args):
    """Names bound by assignment, for/with/except/walrus targets and def names in nodes."""
    names = set()
    for node in (n for top in nodes for n in ast.walk(top)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif with_args and isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def bound_names(func: ast.FunctionDef) -> set[str]:
    """The parameters of func and every name it binds anywhere in its body (imports are
    not counted: a module must not be reachable from a region)."""
    a = func.args
    params = [*a.posonlyargs, *a.args, *a.kwonlyargs, *filter(None, (a.vararg, a.kwarg))]
    return {p.arg for p in params} | _binds(func.body, with_args=False)


def _is_dunder(name):
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


class _Checker(ast.NodeVisitor):
    def __init__(self, lines, bound, functions, own):
        self.lines, self.bound, self.functions, self.own = lines, bound, functions, own
        self.refusals = []

    def refuse(self, node, why):
        line = getattr(node, "lineno", 1)
        text = self.lines[line - 1].strip() if 0 < line <= len(self.lines) else ""
        self.refusals.append(Refusal(line, text, why))

    def generic_visit(self, node):
        if isinstance(node, ALLOWED_NODES):
            return super().generic_visit(node)
        what = REFUSED_CONSTRUCTS.get(type(node), type(node).__name__)
        self.refuse(node, f"{what} is not allowed in an answer region")

    # --- names
    def is_local(self, name):
        """A variable of the region or its function (may be assigned through)."""
        if name.startswith("_"):
            return name in self.own and not _is_dunder(name)
        return (name in self.own or name in self.bound) and name not in DENIED_NAMES \
            and name != "np" and name not in self.functions

    def visit_Name(self, node):
        name = node.id
        if not isinstance(node.ctx, ast.Load):
            self.check_binding(name, node)
        elif name == "np":
            self.refuse(node, "'np' can only be used as np.<function>")
        elif name in DENIED_NAMES or not (
            self.is_local(name) or name in SAFE_BUILTINS or name in EXCEPTIONS
            or name in self.functions
        ):
            self.refuse(node, f"name {name!r} is not allowed")

    def check_binding(self, name, node):
        if name in DENIED_NAMES or _is_dunder(name):
            self.refuse(node, f"name {name!r} is not allowed")
        elif name in ("np", "self"):
            self.refuse(node, f"rebinding {name!r} is not allowed")

    def visit_arg(self, node):
        self.check_binding(node.arg, node)
        self.generic_visit(node)

    def visit_FunctionDef(self, node):
        if node.decorator_list:
            why = "decorators are not allowed in an answer region"
            return self.refuse(node.decorator_list[0], why)
        self.check_binding(node.name, node)
        self.generic_visit(node)

    def visit_Raise(self, node):
        exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        if exc is not None and not (isinstance(exc, ast.Name) and exc.id in EXCEPTIONS):
            return self.refuse(node, "raise is allowed only of a built-in exception class "
                                     "such as ValueError")
        self.generic_visit(node)

    # --- attributes, subscripts and stores
    def check_store(self, node):
        """A store through an attribute or item must start at a local variable."""
        root = node
        while isinstance(root, (ast.Attribute, ast.Subscript)):
            root = root.value
        if isinstance(root, ast.Name) and self.is_local(root.id):
            return True
        self.refuse(node, f"assignment to {ast.unparse(node)!r} is not allowed: only the "
                          f"region's and its function's variables can be changed")
        return False

    def visit_Subscript(self, node):
        if isinstance(node.ctx, ast.Load) or self.check_store(node):
            self.generic_visit(node)

    def visit_Attribute(self, node):
        if not (isinstance(node.ctx, ast.Load) or self.check_store(node)):
            return
        chain, root = [], node
        while isinstance(root, ast.Attribute):
            chain.insert(0, root)
            root = root.value
        if isinstance(root, ast.Name) and root.id == "np":
            tree, path = NUMPY_TREE, "np"
            while chain and isinstance(tree, dict):
                path += "." + chain[0].attr
                if chain[0].attr not in tree:
                    return self.refuse(chain[0], f"{path!r} is not allowed")
                tree = tree[chain.pop(0).attr]
            if isinstance(tree, dict):
                return self.refuse(node, f"{path!r} can only be used as {path}.<function>")
        elif isinstance(root, ast.Name) and root.id == "self" and self.is_local("self"):
            if not _public(chain[0].attr):
                return self.refuse(chain[0], f"attribute {chain[0].attr!r} is not allowed")
            chain.pop(0)
        else:
            self.visit(root)
        for link in chain:
            if link.attr not in ATTRIBUTES:
                return self.refuse(link, f"attribute {link.attr!r} is not allowed")


def check_body(source: str, bound: Iterable[str] = (), *,
               functions: Iterable[str] = LAYER_FUNCTIONS) -> list[Refusal]:
    """Refusals for one region body (dedented); an empty list means it may run.

    bound: the enclosing function's parameters and the names it assigns outside the
    region (notebook regions: the notebook's global names, which must not include
    modules). functions: the layer functions the region may call. A SyntaxError gives
    one Refusal whose why starts with 'syntax error'.
    """
    source = textwrap.dedent(source)
    lines = source.splitlines()
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        line = error.lineno or 1
        text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        return [Refusal(line, text, f"syntax error: {error.msg}")]
    checker = _Checker(lines, frozenset(bound), frozenset(functions),
                       _binds([tree], with_args=True))
    checker.visit(tree)
    return sorted(dict.fromkeys(checker.refusals), key=lambda r: r.line)  # each one once
