"""The student README names only what the release has.

The release's README.md is STUDENT_README, written for students. plan_release refuses it
when its code (fenced blocks and inline `code` spans) names a ``make`` target the
release's Makefile lacks or that is for instructors only (it depends on
INSTRUCTORS_ONLY_TARGET), a ``python -m`` module of the project the release lacks, or a
file the release lacks. A check of the build, not only a test: a README sending
students to a missing command must not ship.
"""
import re

from .git import STUDENT_README

# A Makefile target that depends on this one is for instructors (it needs
# instructor_tools/): the student README must not send students to it.
INSTRUCTORS_ONLY_TARGET = "instructors-only"

def _makefile_targets(text):
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
    fenced = re.findall(r"^\s*(?:```|~~~)[^\n]*\n(.*?)^\s*(?:```|~~~)", readme,
                        re.MULTILINE | re.DOTALL)
    unfenced = re.sub(r"^\s*(?:```|~~~).*?^\s*(?:```|~~~)", "", readme,
                      flags=re.MULTILINE | re.DOTALL)
    return "\n".join(fenced + re.findall(r"`([^`\n]+)`", unfenced))


MAKE_COMMAND_RE = re.compile(r"\bmake[ \t]+([A-Za-z_][\w-]*)")


def check_student_readme(contents):
    """Problems with the release's README.md: commands or files the release lacks."""
    code = readme_code(contents["README.md"].decode("utf-8", "replace"))
    problems = []
    targets = _makefile_targets(contents.get("Makefile", b"").decode("utf-8", "replace"))
    for target in sorted(set(MAKE_COMMAND_RE.findall(code))):
        if target not in targets:
            problems.append(f"README.md (from {STUDENT_README}): names `make {target}`, which "
                            f"the release's Makefile lacks")
        elif INSTRUCTORS_ONLY_TARGET in targets[target]:
            problems.append(f"README.md (from {STUDENT_README}): names `make {target}`, which "
                            f"is for instructors only")
    tops = {rel.split("/")[0] for rel in contents if "/" in rel} | {"instructor_tools"}
    for module in sorted(set(re.findall(r"\bpython3?[ \t]+-m[ \t]+([\w.]+)", code))):
        if module.split(".")[0] not in tops:
            continue  # pip, pytest, venv...
        base = module.replace(".", "/")
        if f"{base}.py" not in contents and f"{base}/__main__.py" not in contents:
            problems.append(f"README.md (from {STUDENT_README}): names `python -m {module}`, "
                            f"which is not in the release")
    for name in sorted(set(re.findall(r"[\w./-]*\w\.(?:py|ipynb|sh|cfg|toml|txt)\b", code))):
        name = name.lstrip("./")
        if not any(rel == name or rel.endswith("/" + name) for rel in contents):
            problems.append(f"README.md (from {STUDENT_README}): names {name}, which is not in "
                            f"the release")
    return problems
