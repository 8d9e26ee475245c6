"""Build the student release from the last commit: exercises, not answers.

    python -m instructor_tools.release [--out DIR] [--name NAME] [--root DIR]

writes DIR/NAME/ (default ROOT/release/cs231n-student/) and DIR/NAME.zip.

ROOT must be the top of a git work tree. The release is made of the files committed at
HEAD that are on an allow-list (never instructor_tools/, .ci/, archives, PDFs, pickles,
data); its README.md is STUDENT_README, a README written for students. Refused, with the
files named, when a file that would ship has uncommitted changes: the release is always
exactly a commit. In the shipped files each solution region keeps its marker lines and
gets a raise NotImplementedError naming the function and the notebook section in place
of its body, each answer region gets a prompt, and notebooks lose their outputs and cell
metadata. Nothing is written unless the leak check finds no solution or answer text
anywhere in the release, before writing and again on the written folder and zip.

One job a module: git.py (what ships: git pathspecs, reading HEAD), regions.py (regions by
student_tools.markers, the release's stricter checks, rewriting .py files and notebooks),
leaks.py (the leak check), build.py (plan, verify, write, zip), cli.py (the command).
Tested by instructor_tools/tests/test_release.py (and test_lean.py: sizes, coverage of every
region, the student README naming only what ships).
"""
from student_tools.markers import SOLUTION_BEGIN_RE, SOLUTION_END_RE

from . import build, regions
from .build import OUT_MARKER, build_release, plan_release
from .cli import main
from .errors import ReleaseError
from .git import STUDENT_README
from .leaks import WINDOW_TOKENS, find_leaks
from .regions import TODO_COMMENT

__all__ = ["SOLUTION_BEGIN_RE", "SOLUTION_END_RE", "build", "regions", "OUT_MARKER",
           "build_release", "plan_release", "main", "ReleaseError", "STUDENT_README",
           "WINDOW_TOKENS", "find_leaks", "TODO_COMMENT"]
