"""The command: python -m instructor_tools.release [--out DIR] [--name NAME] [--root DIR]."""
import argparse
import sys
from pathlib import Path

from .build import DEFAULT_NAME, build_release
from .errors import ReleaseError

# The project's top: this file is its instructor_tools/release/cli.py.
_PROJECT = Path(__file__).resolve().parents[2]


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m instructor_tools.release",
        description="Write the student version of the project's last commit: solution "
        "regions replaced by NotImplementedError, answers by a prompt, notebook outputs "
        "cleared, only the files on the allow-list.",
    )
    parser.add_argument("--root", type=Path, default=_PROJECT,
                        help="top of the project's git work tree (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output directory (default: ROOT/release)")
    parser.add_argument("--name", default=DEFAULT_NAME,
                        help="name of the release folder and zip (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        release_dir, zip_path, plan = build_release(args.root, args.out, args.name)
    except ReleaseError as exc:
        print("release: refused, nothing written:", file=sys.stderr)
        for i, problem in enumerate(exc.problems, start=1):
            print(f"  {i}. {problem}", file=sys.stderr)
        return 1
    files_with_regions = sorted({r.path for r in plan.regions})
    print(f"release: {len(plan.files)} files of commit {plan.commit[:12]} -> {release_dir}")
    print(f"         zip -> {zip_path}")
    print(f"         {len(plan.regions)} solution regions replaced in "
          f"{', '.join(files_with_regions) or 'no file'}")
    print(f"         {len(plan.answers)} answers replaced by the prompt")
    for note in plan.notes:
        print(f"release: note: {note}")
    if not plan.regions:
        print("release: warning: no solution regions found; is this already a release?")
    return 0
