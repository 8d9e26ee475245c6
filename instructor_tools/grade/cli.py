"""Command line: ``python -m instructor_tools.grade {grade,merge} ...``.

    python -m instructor_tools.grade grade subs/ --out graded/               # everything
    python -m instructor_tools.grade grade subs/ --out graded/ --jobs 2      # 2 at a time
    python -m instructor_tools.grade grade subs/ --out graded/ --shard 3/10  # every 10th, from 3rd
    python -m instructor_tools.grade merge graded-1/ graded-2/ ... --out graded/
    python -m instructor_tools.grade grade subs/ --out graded/ --written filled.csv  # TA points

The older form without ``grade`` (``python -m instructor_tools.grade subs/ --out graded/``)
still grades; a folder named ``merge`` or ``grade`` is graded with ``grade merge --out ...``.

Writes OUT/grades.csv (one row per submission of this run or shard), OUT/results/<name>.json
(everything known about a submission; a re-run reuses it when the zip's sha256, the rubric's
code items and the options are unchanged) and OUT/feedback/<name>.html; and for the written
part (written.py, written_pages.py) OUT/written/<question>.html, OUT/written/index.html and
OUT/written.csv for the TAs. ``--written FILE`` merges the TAs' points (checked first: a bad
CSV is refused and nothing is written). ``merge`` combines the results/, feedback/ and
written points of several OUT folders (shards) into one OUT with one grades.csv.
Exit status: 0 when every submission got a row (whatever its status), 2 on bad arguments
or a refused CSV.
"""
import argparse
import ast
import concurrent.futures
import csv
import importlib.util
import io
import json
import math
import shutil
import statistics
import sys
from collections import Counter
from pathlib import Path

import nbformat
from tqdm import tqdm

from instructor_tools.grade import feedback, written, written_pages
from instructor_tools.grade import grade as grading
from instructor_tools.grade.rubric import DEFAULT_RUBRIC, load_rubric
from instructor_tools.grade import isolation
from instructor_tools.grade.sandbox import Limits, Sandbox, describe, detect
from student_tools import contract
from student_tools.atomic import write_atomic

BASE_COLUMNS = ["submission", "score", "max_score", "status", "outputs_reproduce",
                "answers_missing", "sandbox", "status_detail", "zip", "sha256", "seconds"]


def parse_shard(text):
    """'K/N' -> (K, N) with 1 <= K <= N."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard: expected K/N such as 2/8, got {text!r}")
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"--shard: expected 1 <= K <= N, got {text!r}")
    return k, n


def find_zips(folder, shard=None):
    """The *.zip files of folder, sorted by name; with shard (K, N) every N-th from K."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"SUBMISSIONS: expected a folder of submission zips, got {folder}")
    zips = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".zip" and
                  (p.is_file() and not p.is_symlink()))
    if shard is not None:
        k, n = shard
        zips = zips[k - 1::n]
    return zips


def _answers_missing(result):
    missing = []
    for nb in result.get("notebooks", []):
        for question, state, _ in nb.get("answers", []):
            if state != "answered":
                missing.append(f"{nb['name'].split('.')[0]}: {question} ({state})")
    return "; ".join(missing)


def row_of(result, rubric=None, points=None):
    row = {
        "submission": result["submission"], "score": f"{result['score']:g}",
        "max_score": f"{result['max_score']:g}", "status": result["status"],
        "outputs_reproduce": result["outputs_reproduce"],
        "answers_missing": _answers_missing(result), "sandbox": result.get("sandbox_kind", ""),
        "status_detail": result.get("status_detail", "")[:300], "zip": result["zip"],
        "sha256": result["sha256"], "seconds": result.get("seconds", ""),
    }
    for item in result.get("items", []):
        row[f"item:{item['id']}"] = f"{item['earned']:g}"
    if rubric is not None:
        row.update(written.gradebook_cells(result, rubric, points))
    return row


def write_gradebook(path, results, rubric, points=None):
    """grades.csv: the code columns, the written ones (written.gradebook_cells: the TAs'
    points as far as they are given, and total = score + written_score), one per item."""
    columns = (BASE_COLUMNS[:3] + written.GRADEBOOK_COLUMNS + BASE_COLUMNS[3:]
               + [f"item:{i.id}" for i in rubric.items]
               + [f"written:{q.id}" for q in rubric.written])
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for result in sorted(results, key=lambda r: r["submission"]):
        writer.writerow({k: written.csv_safe(v) for k, v in row_of(result, rubric, points).items()})
    write_atomic(path, text.getvalue())


def summary(results, max_score, rubric=None, points=None):
    statuses = Counter(r["status"] for r in results)
    scores = sorted(float(r["score"]) for r in results)
    lines = [f"{len(results)} submission(s) graded, max score {max_score:g}."]
    if scores:
        lines.append(f"Scores: min {scores[0]:g}, median {statistics.median(scores):g}, "
                     f"max {scores[-1]:g}; "
                     f"full marks: {sum(s == max_score for s in scores)}.")
    lines.append("Statuses: " + ", ".join(f"{s} {n}" for s, n in statuses.most_common()))
    reproduce = Counter(r["outputs_reproduce"].split(" (")[0] for r in results)
    lines.append("Notebook outputs reproduce: " + ", ".join(
        f"{s} {n}" for s, n in reproduce.most_common()))
    cached = sum(1 for r in results if r.get("cached"))
    if cached:
        lines.append(f"{cached} reused from an earlier run (same zip sha256, rubric, options).")
    kinds = {r.get("sandbox_kind") for r in results if r.get("sandbox_kind")}
    for kind in sorted(kinds):
        lines.append(f"Isolation: {describe(kind)}")
    if rubric is not None and rubric.written:
        done, total = written.graded_count(results, rubric, points)
        lines.append(f"Written answers (graded by people, {rubric.written_max:g} points): "
                     f"{done} of {total} graded.")
        old = written.stale(results, points)
        if old:
            lines.append("Written points given for an earlier zip, not counted: "
                         + ", ".join(old))
    return "\n".join(lines)


def grade_folder(zips, opts, jobs=1, quiet=False, gradebook=None, points=None):
    """Grade zips with jobs at a time; each submission runs in its own box (a fresh uid,
    its own budget and deadline, see isolation.SubmissionBox). With gradebook (a path),
    grades.csv is rewritten atomically after every submission, so a run killed halfway
    keeps the rows it finished (with the written points, if any)."""
    results = []
    bar = tqdm(total=len(zips), unit="submission", disable=quiet, file=sys.stderr)

    def one(zip_path):
        try:
            return grading.grade_one(zip_path, opts)
        except Exception as exc:  # e.g. OUT not writable: still a row, and the run goes on
            return {"submission": grading.safe_name(zip_path), "zip": Path(zip_path).name,
                    "sha256": "", "score": 0, "max_score": opts.rubric.max_score,
                    "status": "grader_error", "outputs_reproduce": "not checked",
                    "status_detail": f"{type(exc).__name__}: {exc}",
                    "sandbox_kind": opts.sandbox.kind, "items": [], "notebooks": []}

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(one, z) for z in zips]
        for future in concurrent.futures.as_completed(futures):
            result = future.result()
            results.append(result)
            if gradebook is not None:
                write_gradebook(gradebook, results, opts.rubric, points)
            bar.set_postfix_str(f"{result['submission'][:20]}: {result['status']}")
            bar.update(1)
    bar.close()
    return results


def _cifar_folder(path):
    """--datasets names the cifar-10-batches-py folder, or the folder holding it."""
    path = Path(path)
    return path / "cifar-10-batches-py" if (path / "cifar-10-batches-py").is_dir() else path


def _missing_notebook_imports(folder):
    """Modules the course notebooks import that this Python cannot find, as sentences.

    The notebooks are re-executed by this interpreter's kernel: without, say, matplotlib
    every cell after the first would fail and every submission would be graded "outputs do
    not reproduce". Only the course's notebooks are read (never a student's)."""
    wanted = {"ipykernel"}
    for name in contract.NOTEBOOKS:
        path = Path(folder) / name
        if not path.is_file():
            continue  # reported above
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            code = "\n".join(line for line in cell.source.splitlines()
                             if not line.lstrip().startswith(("%", "!")))
            try:
                tree = ast.parse(code)
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    wanted.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    wanted.add(node.module.split(".")[0])
    return [f"the notebooks need the module {name!r}, which {sys.executable} cannot import "
            f"(install the course's requirements.txt into it, or pass --no-notebooks)"
            for name in sorted(wanted) if importlib.util.find_spec(name) is None]


def preflight(opts):
    """Why the grader must not start, as sentences (empty: it may).

    The course's files are what runs around every student's regions, and the hidden
    tests must stay out of the sandbox's reach: a non-editable install of this package
    (``pip install ".[instructor]"``) lacks the notebooks and the sanitizer, and would put
    the hidden tests where the sandbox's interpreter can import them.
    """
    problems = []
    course = Path(opts.course)
    for rel in (*contract.REQUIRED_CODE, "cs231n/check.py", "tests/nbval_sanitize.cfg"):
        if not (course / rel).is_file():
            problems.append(f"the course file {course / rel} is missing (grade from a checkout "
                            f"of the course, or pass --course DIR)")
    for name in contract.NOTEBOOKS:
        if not (Path(opts.course_notebooks) / name).is_file():
            problems.append(f"the course notebook {Path(opts.course_notebooks) / name} is "
                            f"missing (grade from a checkout of the course, or pass --course)")
    if opts.run_notebooks:
        problems += _missing_notebook_imports(opts.course_notebooks)
        # Without the data every notebook fails at its data cell: every submission would be
        # graded "outputs do not reproduce".
        missing = [f for f in ("data_batch_1", "test_batch") if not (opts.datasets / f).is_file()]
        if missing:
            problems.append(f"--datasets: expected the cifar-10-batches-py folder (holding "
                            f"{', '.join(missing)}), got {opts.datasets} (run `make data` in "
                            f"the course, pass --datasets, or --no-notebooks)")
    exposed = isolation.preflight(opts.sandbox.kind)
    if opts.sandbox.kind == "bwrap":
        problems += exposed
    else:
        # The fallbacks show the host's files by design (and say so in every row); the
        # allow-list still keeps region code from importing or opening anything.
        for line in exposed:
            print(f"warning (FALLBACK isolation): {line}", file=sys.stderr)
    return problems


def finish(out, results, rubric, course_notebooks, gradebook, new_points=None, source=None,
           pages=True):
    """After grading or merging: the written part and the gradebook.

    new_points (from written.read_points, already checked) are kept for results; then the
    points kept in out are read back (those given for another zip are not counted), every
    feedback page is written with its written questions, and with pages the TAs' pages and
    OUT/written.csv (not in a shard run: shards sharing one OUT would overwrite each
    other's; ``merge`` writes them). Returns the points."""
    out = Path(out)
    if new_points is not None:
        written.store_points(out, results, new_points, source)
    points = written.load_points(out, {r["submission"] for r in results})
    for result in results:
        try:
            feedback.write_feedback(out / "feedback" / f"{result['submission']}.html", result,
                                    written.rows(result, rubric, points))
        except (OSError, KeyError) as exc:
            print(f"warning: feedback of {result['submission']} not written: {exc}",
                  file=sys.stderr)
    if pages and rubric.written:
        written_pages.write_pages(out, results, rubric, course_notebooks, points)
        written.write_template(out / "written.csv", results, rubric, points)
    write_gradebook(gradebook, results, rubric, points)
    return points


def merge(folders, out, rubric, written_csv=None, course_notebooks=grading.PROJECT):
    """Combine the results/, feedback/ and written points of shard OUT folders into out;
    with written_csv, merge the TAs' points too (checked before anything is written: a bad
    CSV raises written.WrittenCSVError). Returns (results, points)."""
    out = Path(out)
    results, found = {}, {}
    for folder in folders:
        folder = Path(folder)
        if not (folder / "results").is_dir():
            raise ValueError(f"merge: {folder} has no results/ folder (not a grading OUT)")
        for path in sorted((folder / "results").glob("*.json")):
            data = json.loads(path.read_text(encoding="utf-8"))
            name = data["submission"]
            if name in results and results[name]["sha256"] != data["sha256"]:
                print(f"warning: {name} graded from two different zips; keeping {folder}",
                      file=sys.stderr)
            results[name], found[name] = data, (folder, path)
    new_points = None
    if written_csv is not None:
        new_points = written.read_points(written_csv, rubric, results)
    for name, (folder, path) in found.items():
        if folder.resolve() == out.resolve():
            continue
        (out / "results").mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, out / "results" / path.name)
        # The points kept beside the result, else in any other folder (the last one).
        kept = [f / written.POINTS_DIR / f"{path.stem}.json" for f in map(Path, folders)]
        kept = [k for k in kept if k.is_file()]
        kept.sort(key=lambda k: k.parents[2] == folder)
        if kept:
            (out / written.POINTS_DIR).mkdir(parents=True, exist_ok=True)
            shutil.copy2(kept[-1], out / written.POINTS_DIR / kept[-1].name)
        # The grader-made PDF (or its sanitized HTML) of the submitted notebooks.
        for made in sorted((folder / "notebooks").glob(f"{path.stem}.*")):
            if made.is_file() and not made.is_symlink():
                (out / "notebooks").mkdir(parents=True, exist_ok=True)
                shutil.copy2(made, out / "notebooks" / made.name)
    merged = list(results.values())
    points = finish(out, merged, rubric, course_notebooks, out / "grades.csv", new_points,
                    written_csv)
    return merged, points


def _refused(exc):
    """A refused TAs' CSV: every bad row on stderr, exit status 2."""
    print(str(exc)[:1].upper() + str(exc)[1:], file=sys.stderr)
    return 2


def positive_seconds(text):
    """An argparse type: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text!r}")
    return value


def cpu_limit(wall_seconds):
    """RLIMIT_CPU for a wall-clock limit: whole seconds, rounded up (--timeout 0.5 gives 1,
    not 0: prlimit --cpu=0 would mean no CPU time at all)."""
    return max(1, math.ceil(wall_seconds))


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m instructor_tools.grade",
        description="Grade a folder of submission zips (grade), or combine the OUT folders "
        "of shards (merge). Without a subcommand, grade.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{grade,merge}")
    grade = commands.add_parser(
        "grade", help="grade a folder of submission zips",
        description="Each submission's code runs sandboxed against the hidden tests, its "
        "notebooks are re-executed and compared with their saved outputs. Writes "
        "OUT/grades.csv, OUT/feedback/*.html, OUT/results/*.json.")
    grade.add_argument("submissions", type=Path, help="folder of submission zips")
    grade.add_argument("--out", type=Path, required=True, help="output folder")
    grade.add_argument("--jobs", type=int, default=1, help="submissions graded at once")
    grade.add_argument("--shard", type=parse_shard, default=None,
                       help="K/N: grade only every N-th zip (sorted by name) from the K-th")
    grade.add_argument("--no-notebooks", action="store_true",
                       help="do not re-execute the notebooks (fast; outputs_reproduce is "
                       "'not checked')")
    grade.add_argument("--rubric", type=Path, default=DEFAULT_RUBRIC)
    grade.add_argument("--sandbox", choices=["bwrap", "unshare", "none"], default=None,
                       help="isolation to use (default: the best available, reported)")
    grade.add_argument("--timeout", type=positive_seconds, default=180,
                       help="wall seconds for the hidden tests of one submission (the CPU "
                       "limit is the same, rounded up to whole seconds)")
    grade.add_argument("--notebook-timeout", type=positive_seconds, default=900,
                       help="wall seconds for re-executing one notebook")
    grade.add_argument("--memory", type=float, default=3.0,
                       help="GiB of address space per sandboxed process")
    grade.add_argument("--submission-memory", type=float, default=6.0,
                       help="GiB of memory for all processes of one submission together")
    grade.add_argument("--deadline", type=float, default=600,
                       help="wall seconds for everything of one submission, notebook "
                       "kernels included; past it the row is 'timeout'")
    grade.add_argument("--course", type=Path, default=grading.PROJECT,
                       help="the course's tree (cs231n/, the notebooks, "
                       "tests/nbval_sanitize.cfg): what runs around the student's regions")
    grade.add_argument("--datasets", type=Path, default=grading.Options.datasets,
                       help="the cifar-10-batches-py folder the notebooks read")
    grade.add_argument("--force", action="store_true",
                       help="grade again even when a result for the same zip exists")
    grade.add_argument("--keep-work", action="store_true",
                       help="keep each submission's temporary folder (debugging)")
    grade.add_argument("--quiet", action="store_true", help="no progress bar")
    grade.add_argument("--no-pdf", action="store_true",
                       help="do not print the submitted notebooks to OUT/notebooks/<name>.pdf "
                       "(sanitized, headless Chromium in the sandbox; see grade/pdf.py)")
    grade.add_argument("--written", type=Path, default=None, metavar="CSV",
                       help="the TAs' points for the written answers (OUT/written.csv filled "
                       "in): checked first (a bad CSV is refused and nothing is written), "
                       "then kept in OUT/written/points/ and added to grades.csv "
                       "(written_score, total) and the feedback; the code is not graded again")
    merge_ = commands.add_parser(
        "merge", help="combine the OUT folders of shards into one OUT",
        description="Combine the results/, feedback/ and written points of shard OUT "
        "folders into one OUT with one grades.csv (and the TAs' pages).")
    merge_.add_argument("folders", type=Path, nargs="+", help="OUT folders of shards")
    merge_.add_argument("--out", type=Path, required=True)
    merge_.add_argument("--rubric", type=Path, default=DEFAULT_RUBRIC)
    merge_.add_argument("--written", type=Path, default=None, metavar="CSV",
                        help="the TAs' points for the written answers")
    merge_.add_argument("--course", type=Path, default=grading.PROJECT,
                        help="the course's tree (its notebooks hold the model answers)")
    grade.set_defaults(run=run_grade, command_parser=grade)
    merge_.set_defaults(run=run_merge, command_parser=merge_)
    return parser


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] not in (["grade"], ["merge"], ["-h"], ["--help"]):
        argv = ["grade", *argv]  # the older form: SUBMISSIONS --out OUT [options]
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.run(args, args.command_parser.error)


def run_merge(args, error):
    rubric = load_rubric(args.rubric)
    try:
        results, points = merge(args.folders, args.out, rubric, args.written, args.course)
    except written.WrittenCSVError as exc:
        return _refused(exc)
    except (ValueError, OSError) as exc:
        error(str(exc))
    print(summary(results, rubric.max_score, rubric, points))
    print(f"Gradebook: {args.out / 'grades.csv'}; written answers: "
          f"{args.out / 'written' / 'index.html'}")
    return 0


def grading_options(args, rubric):
    """grade.Options of the parsed ``grade`` arguments (the sandbox kind detected here)."""
    kind = detect(args.sandbox)
    if args.sandbox and kind != args.sandbox:
        print(f"warning: --sandbox {args.sandbox} is not usable here; using {kind}",
              file=sys.stderr)
    memory = int(args.memory * 2**30)
    return grading.Options(
        out=args.out, rubric=rubric, run_notebooks=not args.no_notebooks,
        sandbox=Sandbox(kind), course=args.course, course_notebooks=args.course,
        budget=isolation.Budget(memory_bytes=int(args.submission_memory * 2**30),
                                deadline_seconds=args.deadline),
        datasets=_cifar_folder(args.datasets), force=args.force, keep_work=args.keep_work,
        python=sys.executable, pdf=not args.no_pdf,
        limits=Limits(cpu_seconds=cpu_limit(args.timeout), wall_seconds=args.timeout,
                      memory_bytes=memory),
        notebook_limits=Limits(cpu_seconds=cpu_limit(args.notebook_timeout),
                               wall_seconds=args.notebook_timeout,
                               memory_bytes=max(memory, 4 * 2**30), processes=256),
    )


def run_grade(args, error):
    if args.jobs < 1:
        error(f"--jobs: expected an integer >= 1, got {args.jobs}")
    try:
        rubric = load_rubric(args.rubric)
        zips = find_zips(args.submissions, args.shard)
        # Shards: a CSV for the whole course, each shard keeps its own submissions' rows.
        names = [grading.safe_name(z) for z in find_zips(args.submissions)]
    except (ValueError, OSError) as exc:
        error(str(exc))
    new_points = None
    if args.written is not None:
        try:
            new_points = written.read_points(args.written, rubric, names)
        except written.WrittenCSVError as exc:
            return _refused(exc)
    opts = grading_options(args, rubric)
    print(f"Isolation: {describe(opts.sandbox.kind)}", file=sys.stderr)
    problems = preflight(opts)
    if problems:
        print("The grader will not start:\n" + "\n".join(f"- {p}" for p in problems),
              file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    name = "grades.csv" if args.shard is None else \
        f"grades-shard-{args.shard[0]}-of-{args.shard[1]}.csv"
    kept = written.load_points(args.out)
    results = grade_folder(zips, opts, jobs=args.jobs, quiet=args.quiet,
                           gradebook=args.out / name,
                           points=kept if new_points is None else new_points)
    points = finish(args.out, results, rubric, args.course, args.out / name, new_points,
                    args.written, pages=args.shard is None)
    print(summary(results, rubric.max_score, rubric, points))
    print(f"Gradebook: {args.out / name}; feedback: {args.out / 'feedback'}")
    if opts.pdf and results:
        print(grading.notebook_pdfs.summary(results))  # OUT/notebooks/ (grade/pdf.py)
    if args.shard is None and rubric.written:
        print(f"Written answers for the TAs: {args.out / 'written' / 'index.html'}; points "
              f"to fill in: {args.out / 'written.csv'} (merge with --written FILE)")
    return 0
