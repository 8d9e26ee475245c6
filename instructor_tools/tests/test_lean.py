"""Issue 19's size and shape targets, and what a student receives staying covered.

On the release of HEAD (built from a clone, as in test_release.py): at most MAX_RELEASE_LINES
lines of .py; its cs231n/layers.py at most MAX_LAYERS_LINES lines and opening with
affine_forward; its README names only make targets, modules and files that ship. On the
solution: no ``out=`` inside the regions of cs231n/layers.py; no module outside the tests over
MAX_MODULE_LINES lines, the packer at most MAX_PACKER_LINES; and every solution region is
covered: the solution with that one region replaced by the release's stub fails the self-check
or a shipped test. A failure says what is over and by how much.
"""
import ast
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from instructor_tools import release
from student_tools.markers import solution_regions

REPO = Path(__file__).resolve().parents[2]
MAX_RELEASE_LINES = 4000
MAX_LAYERS_LINES = 400
MAX_MODULE_LINES = 600
MAX_PACKER_LINES = 400
PACKER = "student_tools/submission.py"
# The files whose regions the coverage test stubs one at a time.
REGION_FILES = ("cs231n/layers.py", "cs231n/classifiers/fc_net.py")

pytestmark = pytest.mark.skipif(shutil.which("git") is None,
                                reason="the release is built from a git checkout")


def _lines(path):
    return len(Path(path).read_text(encoding="utf-8").splitlines())


def _git(root, *args):
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True).stdout


@pytest.fixture(scope="module")
def head_release(tmp_path_factory):
    """(release folder, clone of HEAD): the release of the last commit, as `make release`
    builds it; other engineers' uncommitted work is in neither."""
    if subprocess.run(["git", "-C", str(REPO), "rev-parse", "-q", "--verify", "HEAD"],
                      capture_output=True).returncode != 0:
        pytest.skip("this project is not a git checkout: its release cannot be built")
    clone = tmp_path_factory.mktemp("lean-clone") / "project"
    _git(REPO.parent, "clone", "-q", str(REPO), str(clone))
    if not any(solution_regions((clone / rel).read_text())[0] for rel in REGION_FILES
               if (clone / rel).is_file()):
        pytest.skip("this tree is a student release: it holds no solution regions")
    out = tmp_path_factory.mktemp("lean-release")
    release_dir, _, _ = release.build_release(clone, out=out, name="student")
    return release_dir, clone


def _over(what, count, limit):
    return f"{what}: {count} lines, {count - limit} over the limit of {limit}"


# ---------------------------------------------------------------------------
# Sizes and shape
# ---------------------------------------------------------------------------


def test_release_holds_at_most_4000_lines_of_python(head_release):
    release_dir, _ = head_release
    counts = {p.relative_to(release_dir).as_posix(): _lines(p)
              for p in release_dir.rglob("*.py")}
    total = sum(counts.values())
    table = "\n".join(f"{n:6d}  {rel}" for rel, n in
                      sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    assert total <= MAX_RELEASE_LINES, (
        _over(f"the release's {len(counts)} .py files", total, MAX_RELEASE_LINES)
        + "; per file:\n" + table)


def test_release_layers_is_short_and_opens_with_affine_forward(head_release):
    release_dir, _ = head_release
    path = release_dir / "cs231n/layers.py"
    count = _lines(path)
    assert count <= MAX_LAYERS_LINES, _over("the release's cs231n/layers.py", count,
                                            MAX_LAYERS_LINES)
    functions = [node.name for node in ast.parse(path.read_text()).body
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    assert functions[:1] == ["affine_forward"], (
        f"the release's cs231n/layers.py opens with {functions[:1]}, expected affine_forward "
        f"(its functions in order: {functions[:6]}...)")


def _out_keywords(text):
    """Line numbers of the calls with an ``out=`` keyword in Python source."""
    return sorted(node.lineno for node in ast.walk(ast.parse(text))
                  if isinstance(node, ast.Call) and any(k.arg == "out" for k in node.keywords))


def test_out_keywords_found():
    assert _out_keywords("y = f(x)\nnp.add(a, b, out=a)\nout = g(out=None)\n") == [2, 3]
    assert _out_keywords("out = a + b\nh(out)\n") == []


def test_no_out_keyword_in_the_solution_regions_of_layers():
    """The reference solution reads as the equations: no in-place ``out=`` buffers."""
    text = (REPO / "cs231n/layers.py").read_text()
    regions, _ = solution_regions(text)
    inside = [(line, region) for line in _out_keywords(text) for region in regions
              if region.begin < line < region.end]
    assert inside == [], "out= inside solution regions of cs231n/layers.py: " + ", ".join(
        f"line {line} ({region.function})" for line, region in inside)


def _modules():
    """Every .py outside the tests under cs231n/, student_tools/ and instructor_tools/ of
    the working tree (what the engineers are editing now)."""
    for top in ("cs231n", "student_tools", "instructor_tools"):
        for path in sorted((REPO / top).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if not rel.startswith("instructor_tools/tests/") and "__pycache__" not in rel:
                yield rel, _lines(path)


def test_no_module_outside_the_tests_over_600_lines():
    over = [_over(rel, n, MAX_MODULE_LINES) for rel, n in _modules() if n > MAX_MODULE_LINES]
    assert over == [], "modules over the limit:\n" + "\n".join(over)


def test_the_packer_is_at_most_400_lines():
    count = _lines(REPO / PACKER)
    assert count <= MAX_PACKER_LINES, _over(PACKER, count, MAX_PACKER_LINES)


# ---------------------------------------------------------------------------
# Every solution region is covered by the self-check or a shipped test
# ---------------------------------------------------------------------------


def _stubbed(solution, released, index):
    """The solution text with only its region ``index`` as in the release (the stub)."""
    sol_lines, rel_lines = solution.splitlines(), released.splitlines()
    ours, theirs = solution_regions(solution)[0][index], solution_regions(released)[0][index]
    lines = (sol_lines[:ours.begin] + rel_lines[theirs.begin:theirs.end - 1]
             + sol_lines[ours.end - 1:])
    return "\n".join(lines) + "\n"


def _fails(folder):
    """'' when the self-check and the shipped tests pass in folder, else what failed."""
    env = {**os.environ, "PYTHONPATH": str(folder)}
    for command in ([sys.executable, "-m", "cs231n.check"],
                    [sys.executable, "-m", "pytest", "tests", "-x", "-q", "-p",
                     "no:cacheprovider", "--tb=line"]):
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True,
                              timeout=600)
        if done.returncode != 0:
            return f"{' '.join(command[1:3])}: {done.stdout[-300:].strip()}"
    return ""


@pytest.mark.slow
def test_every_solution_region_is_covered(head_release, tmp_path):
    """For each region of REGION_FILES, a copy of the solution with only that region
    replaced by the release's stub fails `python -m cs231n.check` or a test of the
    release's tests/; the solution itself passes both (else the test proves nothing)."""
    release_dir, clone = head_release
    solution = {rel: (clone / rel).read_text() for rel in REGION_FILES}
    released = {rel: (release_dir / rel).read_text() for rel in REGION_FILES}
    cases = {"solution": solution}
    for rel in REGION_FILES:
        regions, problems = solution_regions(solution[rel])
        assert problems == [] and len(regions) == len(solution_regions(released[rel])[0])
        for i, region in enumerate(regions):
            name = f"{rel} line {region.begin} ({region.function}: {region.section})"
            cases[name] = {**solution, rel: _stubbed(solution[rel], released[rel], i)}
    assert len(cases) == 15, f"expected 14 regions, found {len(cases) - 1}: {list(cases)}"
    data = REPO / "datasets" / "cifar-10-batches-py"

    def run(item):
        k, (name, files) = item
        folder = tmp_path / f"case{k}"
        shutil.copytree(release_dir, folder, symlinks=True)
        for rel, text in files.items():
            (folder / rel).write_text(text)
        if data.is_dir() and not (folder / "datasets" / data.name).exists():
            (folder / "datasets" / data.name).symlink_to(data)
        return name, _fails(folder)

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        results = dict(pool.map(run, enumerate(cases.items())))
    assert results.pop("solution") == "", "the solution itself fails"
    uncovered = [name for name, failed in results.items() if not failed]
    assert uncovered == [], ("regions whose stub neither the self-check nor a shipped test "
                             "notices:\n" + "\n".join(uncovered))


# ---------------------------------------------------------------------------
# The student README names only what the release has (make targets, modules, files)
# ---------------------------------------------------------------------------

# A Makefile target depending on this one needs instructor_tools/: not for students.
INSTRUCTORS_ONLY_TARGET = "instructors-only"
MAKE_COMMAND_RE = re.compile(r"\bmake[ \t]+([A-Za-z_][\w-]*)")


def makefile_targets(text):
    """{target: [prerequisites]} of a Makefile's rule lines."""
    targets = {}
    for match in re.finditer(r"^([A-Za-z0-9_.%/$()-][^:=#\n]*?)\s*:(?![=:])([^\n]*)$", text,
                             re.MULTILINE):
        prerequisites = match[2].split("#")[0].split(";")[0].split()
        for target in match[1].split():
            targets.setdefault(target, []).extend(prerequisites)
    return targets


def readme_code(readme):
    """The code of a markdown text: its fenced blocks and inline `code` spans (prose such as
    "without make" names no command)."""
    fence = r"^\s*(?:```|~~~)"
    fenced = re.findall(fence + r"[^\n]*\n(.*?)" + fence, readme, re.MULTILINE | re.DOTALL)
    unfenced = re.sub(fence + ".*?" + fence, "", readme, flags=re.MULTILINE | re.DOTALL)
    return "\n".join(fenced + re.findall(r"`([^`\n]+)`", unfenced))


def readme_problems(files):
    """What the README.md of a release ({path: text}) names that the release lacks."""
    code = readme_code(files["README.md"])
    targets = makefile_targets(files.get("Makefile", ""))
    problems = []
    for target in sorted(set(MAKE_COMMAND_RE.findall(code))):
        if target not in targets:
            problems.append(f"names `make {target}`, which the release's Makefile lacks")
        elif INSTRUCTORS_ONLY_TARGET in targets[target]:
            problems.append(f"names `make {target}`, which is for instructors only")
    tops = {rel.split("/")[0] for rel in files if "/" in rel} | {"instructor_tools"}
    for module in sorted(set(re.findall(r"\bpython3?[ \t]+-m[ \t]+([\w.]+)", code))):
        base = module.replace(".", "/")
        if (module.split(".")[0] in tops  # not pip, pytest, venv...
                and f"{base}.py" not in files and f"{base}/__main__.py" not in files):
            problems.append(f"names `python -m {module}`, which is not in the release")
    for name in sorted(set(re.findall(r"[\w./-]*\w\.(?:py|ipynb|sh|cfg|toml|txt)\b", code))):
        name = name.lstrip("./")
        if not any(rel == name or rel.endswith("/" + name) for rel in files):
            problems.append(f"names {name}, which is not in the release")
    return problems


_MAKEFILE = "test: data\n\tpytest\ndata:\n\tget\ninstructors-only:\n\ttrue\n" \
            "release: instructors-only $(STAMP)\n\tbuild\n"
_FILES = {"Makefile": _MAKEFILE, "cs231n/check.py": "", "requirements.txt": ""}


@pytest.mark.parametrize("line, problem", [
    ("Run `make test`, then `python -m cs231n.check`; `pip install -r requirements.txt`.", None),
    ("Prose without make names nothing; `python -m pytest` is not ours.", None),
    ("Build it with `make release`.", "names `make release`, which is for instructors only"),
    ("Time it: `make bench`.", "names `make bench`, which the release's Makefile lacks"),
    ("```bash\npython -m instructor_tools.grade subs/\n```",
     "names `python -m instructor_tools.grade`, which is not in the release"),
    ("Install `requirements-ci.txt` too.", "names requirements-ci.txt, which is not in the release"),
])
def test_readme_linter(line, problem):
    assert readme_problems({**_FILES, "README.md": f"# Course\n\n{line}\n"}) == (
        [problem] if problem else [])


def test_release_readme_names_only_what_ships(head_release):
    release_dir, _ = head_release
    files = {p.relative_to(release_dir).as_posix(): p.read_text(errors="replace")
             for p in release_dir.rglob("*") if p.is_file()}
    assert readme_problems(files) == [], f"README.md (from {release.STUDENT_README})"
    commands = set(MAKE_COMMAND_RE.findall(readme_code(files["README.md"])))
    assert {"test", "notebooks", "check", "lab"} <= commands
    for rel in ("requirements.txt", "pyproject.toml", "datasets/get_datasets.sh",
                "collectSubmission.sh"):
        assert rel in files, rel
