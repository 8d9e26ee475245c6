"""Build the Gradescope autograder zip: ``python -m instructor_tools.gradescope [options]``.

    python -m instructor_tools.gradescope                      # release/gradescope/autograder.zip
    python -m instructor_tools.gradescope --notebooks          # + CIFAR-10, notebooks re-executed
    python -m instructor_tools.gradescope --visibility after_due_date --out DIR

Gradescope's autograder specification: a zip with ``setup.sh`` (run once as root when the
image is built) and ``run_autograder`` (run for each submission) at its root, not inside a
folder; Gradescope unpacks the zip into /autograder/source. Here the zip also carries the
course, at the same relative paths as in this checkout, so that the grader finds it exactly
as ``make grade`` does (its ``PROJECT`` is the folder holding ``instructor_tools``):

- ``instructor_tools/grade/`` (the grader, ``hidden/`` tests and reference, ``rubric.toml``)
  and ``instructor_tools/gradescope/`` (this package: ``run_autograder.py``);
- ``student_tools/`` (the submission contract and allow-list the grader uses, the CIFAR-10
  installer), the ``cs231n`` package and both notebooks (the course's files the student's
  regions are spliced into), ``tests/nbval_sanitize.cfg``;
- ``requirements.txt`` (what setup.sh installs, pinned), ``pyproject.toml``,
  ``datasets/get_datasets.sh``;
- ``gradescope.json``: the options the zip was built with and the sha256 of every file.

Files come from the working tree (like ``make grade``); the zip is deterministic (fixed
timestamps and modes), so the same tree gives the same bytes. Beside the zip,
``written_questions.md`` lists the rubric's written questions for the manually graded
assignment (see run_autograder.py for why they are not autograder tests).
"""
import argparse
import hashlib
import io
import json
import re
import shlex
import stat
import sys
import tempfile
import zipfile
from pathlib import Path

from instructor_tools.gradescope import CONFIG_NAME, DATASETS, PREFIX, VISIBILITIES
from student_tools.atomic import write_atomic

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parents[1]
TEMPLATES = HERE / "templates"
DEFAULT_OUT = Path("release") / "gradescope" / "autograder.zip"
FORMAT = 1

# Folders shipped whole (minus caches and hidden files) and single files.
TREES = ("instructor_tools/grade", "instructor_tools/gradescope", "student_tools", "cs231n")
FILES = ("instructor_tools/__init__.py", "BatchNormalization.ipynb", "Dropout.ipynb",
         "tests/nbval_sanitize.cfg", "requirements.txt", "pyproject.toml",
         "datasets/get_datasets.sh")
# At the zip's root, executable (Gradescope's specification).
SCRIPTS = ("setup.sh", "run_autograder")
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


class BuildError(RuntimeError):
    """The zip cannot be built (a course file is missing, the rubric is invalid)."""


def _skipped(rel):
    parts = rel.split("/")
    return any(p == "__pycache__" or p.startswith(".") for p in parts) or rel.endswith(".pyc")


def course_files(project=PROJECT):
    """{arcname: Path} of the course files the zip carries, sorted by name."""
    project = Path(project)
    found = {}
    for tree in TREES:
        root = project / tree
        if not root.is_dir():
            raise BuildError(f"{root} is missing: build from a checkout of the course")
        for path in root.rglob("*"):
            rel = path.relative_to(project).as_posix()
            if path.is_file() and not path.is_symlink() and not _skipped(rel):
                found[rel] = path
    for rel in FILES:
        path = project / rel
        if not path.is_file():
            raise BuildError(f"{path} is missing: build from a checkout of the course")
        found[rel] = path
    return dict(sorted(found.items()))


def _cifar10_md5():
    from student_tools.cifar10_setup import OFFICIAL_MD5
    return OFFICIAL_MD5


def render(template, values):
    """A template's text with each @NAME@ replaced; every placeholder must be known."""
    text = (TEMPLATES / template).read_text(encoding="utf-8")
    for name, value in values.items():
        text = text.replace(f"@{name}@", str(value))
    left = re.findall(r"@[A-Z0-9_]+@", text)
    if left:
        raise BuildError(f"template {template}: placeholder(s) left unfilled: {left}")
    return text


def _written(rubric):
    """The rubric's written questions as dicts (an empty list while rubric.toml has none)."""
    entries = []
    for entry in getattr(rubric, "written", ()) or ():
        get = entry.get if isinstance(entry, dict) else (lambda k, e=entry: getattr(e, k, ""))
        entries.append({k: get(k) for k in ("id", "notebook", "heading", "points", "guide")})
    return entries


def written_outline(rubric):
    """Markdown for the course staff: the questions of the manually graded assignment."""
    written = _written(rubric)
    lines = ["# Written questions: the manually graded Gradescope assignment", "",
             "The autograder (autograder.zip) scores the code items only. Create an "
             "Online/PDF assignment with one question per entry below: students print "
             "their executed notebooks to PDF from the browser (JupyterLab: File > Print; "
             "Colab: File > Print) and upload that PDF. The guide goes into the rubric, for "
             "graders only.", ""]
    if not written:
        lines.append("rubric.toml has no `[[written]]` entries yet.")
    for n, entry in enumerate(written, start=1):
        points = entry["points"]
        points = f"{points:g}" if isinstance(points, (int, float)) else str(points)
        lines += [f"## {n}. {entry['heading']} ({points} points)", "",
                  f"- id: `{entry['id']}`", f"- notebook: {entry['notebook']}",
                  f"- guide: {entry['guide']}", ""]
    return "\n".join(lines).rstrip() + "\n"


def _info(name, mode):
    info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
    info.create_system = 3  # Unix: the modes below are honoured when unpacked
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def build_zip(out=None, *, project=PROJECT, run_notebooks=False, visibility="visible",
              deadline=None, grade_args=(), overrides=None):
    """Write the autograder zip; returns its path.

    run_notebooks: re-execute the notebooks on Gradescope (setup.sh then installs CIFAR-10
    from the official URL, checked against its md5). visibility: of each rubric item's
    test on Gradescope. deadline: seconds for one submission (the grader's --deadline).
    grade_args: more options of the grader's command line (e.g. ["--memory", "2"]).
    overrides: {arcname: bytes} replacing or adding course files (tests use the committed
    course files).
    """
    from instructor_tools.grade.rubric import load_rubric

    project = Path(project)
    out = Path(out) if out is not None else project / DEFAULT_OUT
    if visibility not in VISIBILITIES:
        raise BuildError(f"visibility: expected one of {VISIBILITIES}, got {visibility!r}")
    contents = {rel: path.read_bytes() for rel, path in course_files(project).items()}
    contents.update(overrides or {})
    rubric_rel = "instructor_tools/grade/rubric.toml"
    with tempfile.TemporaryDirectory() as tmp:  # the rubric as it will ship, validated
        (Path(tmp) / "rubric.toml").write_bytes(contents[rubric_rel])
        try:
            rubric = load_rubric(Path(tmp) / "rubric.toml")
        except ValueError as exc:
            raise BuildError(str(exc)) from None
    values = {"PREFIX": PREFIX, "INSTALL_CIFAR10": int(bool(run_notebooks)),
              "CIFAR10_MD5": _cifar10_md5()}
    scripts = {name: render(name, values).encode("utf-8") for name in SCRIPTS}
    config = {
        "format": FORMAT, "run_notebooks": bool(run_notebooks), "visibility": visibility,
        "datasets": DATASETS if run_notebooks else None,
        "deadline": deadline, "grade_args": [str(arg) for arg in grade_args],
        "max_score": rubric.max_score,
        "items": [item.id for item in rubric.items],
        "files": {rel: hashlib.sha256(data).hexdigest() for rel, data in contents.items()},
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in scripts.items():
            archive.writestr(_info(name, 0o755), data)
        archive.writestr(_info(CONFIG_NAME, 0o644),
                         json.dumps(config, indent=1, sort_keys=True) + "\n")
        for rel, data in sorted(contents.items()):
            mode = 0o755 if rel.endswith(".sh") else 0o644
            archive.writestr(_info(rel, mode), data)
    write_atomic(out, buffer.getvalue())
    (out.parent / "written_questions.md").write_text(written_outline(rubric), encoding="utf-8")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m instructor_tools.gradescope",
        description="Write the Gradescope autograder zip (setup.sh and run_autograder at "
        "its root, the course's grader, hidden tests and rubric inside).")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"the zip to write (default: {DEFAULT_OUT})")
    parser.add_argument("--notebooks", action="store_true",
                        help="re-execute the notebooks on Gradescope: setup.sh downloads "
                        "CIFAR-10 from the official URL (md5 checked) when the image is built "
                        "(default: off, outputs_reproduce is 'not checked')")
    parser.add_argument("--visibility", choices=VISIBILITIES, default="visible",
                        help="when students see each rubric item's result (default: visible)")
    parser.add_argument("--deadline", type=float, default=None,
                        help="seconds for everything of one submission (the grader's "
                        "--deadline; default: the grader's, 600)")
    parser.add_argument("--grade-args", default="", metavar="OPTIONS",
                        help="more options for the grader on Gradescope, as one string "
                        "(e.g. \"--memory 2 --submission-memory 3\"; see python -m "
                        "instructor_tools.grade --help)")
    args = parser.parse_args(argv)
    try:
        out = build_zip(args.out, run_notebooks=args.notebooks, visibility=args.visibility,
                        deadline=args.deadline, grade_args=shlex.split(args.grade_args))
    except (BuildError, OSError) as exc:
        print(f"gradescope: {exc}", file=sys.stderr)
        return 1
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        config = json.loads(archive.read(CONFIG_NAME))
    print(f"Wrote {out} ({len(names)} files, {out.stat().st_size / 2**20:.1f} MiB): "
          f"setup.sh and run_autograder at its root.")
    print(f"Rubric: {len(config['items'])} items, {config['max_score']:g} points; tests "
          f"visible to students: {config['visibility']}.")
    print("Notebook re-execution: " + ("on (setup.sh installs CIFAR-10 from the official URL, "
                                       "md5 checked)" if config["run_notebooks"] else
                                       "off (outputs_reproduce is 'not checked'; --notebooks "
                                       "turns it on)"))
    print(f"Written questions for the manually graded assignment: "
          f"{out.parent / 'written_questions.md'}")
    print("Upload: Gradescope > Create Assignment > Programming Assignment (autograder), "
          "Configure Autograder > zip file upload; see instructor_tools/grade/README.md.")
    return 0
