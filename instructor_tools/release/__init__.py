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

One job a module:

- git.py: what ships (the allow-list, is_shipped) and reading HEAD with git;
- regions.py: solution and answer regions (student_tools.markers' scanners, the release's
  stricter checks on top), rewriting .py files and notebooks;
- leaks.py: the leak check (find_leaks), line by line and token by token;
- readme.py: the student README names only make targets, modules and files that ship;
- build.py: plan_release, verify_release, build_release (staging, zip, renaming);
- cli.py and __main__.py: the command.

What the release guarantees when run (checked by instructor_tools/tests/test_release.py
on this project's own last commit): its package imports; its unit tests fail with
NotImplementedError naming the function and notebook section, and nothing else; executed
top to bottom, the first cell of each notebook that fails raises NotImplementedError.
"""
from student_tools.markers import SOLUTION_BEGIN_RE, SOLUTION_END_RE

from .build import (
    DEFAULT_NAME,
    DEFAULT_OUT,
    OUT_MARKER,
    ReleasePlan,
    build_release,
    plan_release,
    verify_release,
)
from .cli import main
from .errors import ReleaseError
from .git import (
    NEVER_SHIPPED_DIRS,
    NEVER_SHIPPED_NAMES,
    NEVER_SHIPPED_SUFFIXES,
    SHIPPED_PATTERNS,
    STUDENT_README,
    is_shipped,
)
from .leaks import (
    ANY_NAME,
    COMMENT_OPERATOR_SHARE,
    MIN_ANSWER_LINE_CHARS,
    MIN_RUN_CHARS,
    RUN_LINES,
    STATEMENT_OPERATORS,
    STATEMENT_TOKENS,
    WINDOW_TOKENS,
    find_leaks,
)
from .readme import INSTRUCTORS_ONLY_TARGET, MAKE_COMMAND_RE, readme_code
from .regions import KEPT_CELL_TAGS, TODO_COMMENT, AnswerRegion, SolutionRegion

# Internals the tests call directly. (To replace a function for a test, patch it in the
# module that calls it, e.g. release.regions._replacement_lines: a name here is a copy.)
from .git import _work_tree_status
from .leaks import (
    _blank_comments,
    _normal_tokens,
    _python_raw,
    _regex_raw,
    _region_tokens,
    _token_needles,
    _token_streams,
)
from .readme import _makefile_targets
from .regions import _comment_marker_lines_py, _pair_solution_markers
