"""`pip install .` (with its extras) installs every third-party module the packages import.

Each package's imports are read with ast and mapped to the distribution that provides them;
that distribution must be declared for the package: cs231n in `dependencies`, student_tools
in the `tools` extra, instructor_tools in `instructor` (or `browser`, for the browser test's
driver). Tests and benchmarks are development code, installed by requirements.txt.
"""
import ast
import importlib
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUR_PACKAGES = {"cs231n", "student_tools", "instructor_tools"}
# import name -> distribution name, where they differ.
DISTRIBUTION = {"bs4": "beautifulsoup4", "IPython": "ipython", "yaml": "pyyaml",
                "jupyter_server_mathjax": "jupyter-server-mathjax"}
DEV_ONLY = ("instructor_tools/tests/", "instructor_tools/benchmarks/")


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _names(requirements):
    """Distribution names of requirement strings ('bleach[css]>=6' -> 'bleach')."""
    return {re.match(r"[A-Za-z0-9_.-]+", r)[0].lower().replace("_", "-") for r in requirements}


def _declared(extras):
    project = _pyproject()
    names = _names(project["dependencies"])
    for extra in extras:
        for requirement in project["optional-dependencies"][extra]:
            inner = re.fullmatch(r"cs231n\[(\w+)\]", requirement)
            names |= _declared([inner[1]]) if inner else _names([requirement])
    return names


def _third_party_imports(package):
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(DEV_ONLY):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names and top not in OUR_PACKAGES:
                    found.setdefault(DISTRIBUTION.get(top, top).lower(), rel)
    return found


@pytest.mark.parametrize("package, extras", [
    ("cs231n", []),
    ("student_tools", ["tools"]),
    ("instructor_tools", ["instructor", "browser"]),
])
def test_every_import_is_declared(package, extras):
    imports = _third_party_imports(package)
    assert imports, f"no third-party import found in {package}: the scan is broken"
    missing = {dist: where for dist, where in imports.items() if dist not in _declared(extras)}
    assert not missing, f"imported but not declared in pyproject.toml for {package}: {missing}"


def test_the_student_package_needs_only_numpy_and_tqdm():
    assert _names(_pyproject()["dependencies"]) == {"numpy", "tqdm"}


@pytest.mark.parametrize("package", sorted(OUR_PACKAGES))
def test_every_module_imports(package):
    """Every module imports in the project's environment (a module-level import that fails
    here fails for every user of an installed copy too)."""
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        if info.name.startswith(("instructor_tools.tests", "instructor_tools.benchmarks")):
            continue
        if info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)


def test_package_data_lists_files_that_exist():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package, patterns in data["package-data"].items():
        folder = ROOT / package.replace(".", "/")
        for pattern in patterns:
            assert list(folder.glob(pattern)), f"package-data {package}: {pattern} matches nothing"


def test_package_data_holds_the_grader_templates():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folder = ROOT / "instructor_tools" / "grade"
    listed = {p for pattern in data["package-data"]["instructor_tools.grade"]
              for p in folder.glob(pattern)}
    templates = set((folder / "templates").iterdir()) - {folder / "templates" / "__pycache__"}
    assert templates and templates <= listed, sorted(map(str, templates - listed))


@pytest.mark.slow
def test_a_non_editable_install_renders_the_grader_pages(tmp_path):
    """A wheel of this tree, installed as files (not editable), holds the templates: the
    feedback page and the TAs' pages render from the installed copy (about 15 s)."""
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "artifacts")
    for name in ("cs231n", "student_tools", "instructor_tools"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target",
                    str(tmp_path / "site"), str(wheel)], check=True, cwd=tmp_path)
    script = """
from instructor_tools.grade import feedback, written_pages
result = {"submission": "<b>ann</b>", "score": 1, "max_score": 2, "status": "ok",
          "outputs_reproduce": "yes", "items": [], "notebooks": []}
from instructor_tools.grade.rubric import load_rubric
print(feedback.__file__)
print(feedback.render(result))
print(written_pages.index_page([result], load_rubric(), None, None))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path / "site")})
    assert done.returncode == 0, done.stderr
    where, page = done.stdout.split("\n", 1)
    assert where.startswith(str(tmp_path / "site")), where
    assert "<h1>Feedback: &lt;b&gt;ann&lt;/b&gt;</h1>" in page
    assert "<h1>Written answers: one page per question</h1>" in page
