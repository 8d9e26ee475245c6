"""Speed and memory benchmark of the layers, the training iteration and the notebooks.

    make bench                                   # the full run (2-3 minutes here)
    .venv/bin/python -m instructor_tools.benchmarks.bench --no-notebooks --markdown results.md
    .venv/bin/python -m instructor_tools.benchmarks.bench --quick  # tiny shapes, no notebooks: a smoke test

(from the project root, so that the package instructor_tools is found).

In one process: the numerical checks (numpy staged vs simplified batch-norm backward,
numpy vs PyTorch outputs and gradients, the training step vs torch.nn + torch.optim.Adam)
run first and a mismatch stops the benchmark; then every figure is timed as a median
(see timing.py) and printed as a ratio to its reference measured in the same run, next to
its target and the memory-traffic floor. PyTorch is optional: without it the torch
comparisons are skipped and the output says so.

The environment is the Makefile's: its `export` lines (one BLAS thread, ...) are applied
before numpy is imported, so `make bench` and a direct run measure the same thing.
"""
import argparse
import json
import os
import platform
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Issue targets on the 2-core machine (float64 training since the outputs must hold on any CPU).
NOTEBOOK_TARGETS_S = {"BatchNormalization.ipynb": 90.0, "Dropout.ipynb": 20.0}


def makefile_exports(makefile=ROOT / "Makefile"):
    """{name: value} of the Makefile's `export NAME := value` lines, global or specific to
    the bench target (`bench: export NAME := value`)."""
    exports = {}
    for line in makefile.read_text().splitlines():
        match = re.match(r"(?:bench\s*:\s*)?export\s+([A-Za-z_]\w*)\s*[:?]?=\s*(.*?)\s*$", line)
        if match and "$(" not in match[2]:
            exports[match[1]] = match[2]
    return exports


def apply_makefile_env():
    """Put the Makefile's exports into os.environ (before numpy and torch are imported:
    their thread pools read the variables when they load). Variables the C library only
    reads at start-up (malloc tunables) need a fresh process: re-execute if they changed.
    """
    exports = makefile_exports()
    changed = [k for k, v in exports.items() if os.environ.get(k) != v]
    os.environ.update(exports)
    if any(k.startswith(("MALLOC_", "GLIBC_TUNABLES", "LD_")) for k in changed):
        # Re-run as a module (sys.argv[0] is this file's path under -m, which would lose
        # the package); the working directory, hence the package's location, is kept.
        os.execv(sys.executable,
                 [sys.executable, "-m", "instructor_tools.benchmarks.bench", *sys.argv[1:]])


if __name__ == "__main__":
    apply_makefile_env()

import numpy as np  # noqa: E402  (after the environment is set)

from instructor_tools.benchmarks import layer_cases  # noqa: E402
from instructor_tools.benchmarks import notebook_run  # noqa: E402
from instructor_tools.benchmarks import timing  # noqa: E402
from instructor_tools.benchmarks import train_case  # noqa: E402
from instructor_tools.benchmarks.layer_cases import BenchmarkError  # noqa: E402

NOTEBOOK_SHAPES = [(50, 100), (200, 50), (500, 500)]
LARGE_SHAPES = [(64, 3072), (4096, 1024), (65536, 64)]
QUICK_SHAPES = [(8, 16), (16, 8)]

# Targets: the largest acceptable ratio numpy time / reference time.
TORCH_TARGETS = {"layernorm": 1.0, "dropout": 0.5, "train iteration": 1.0}
BN_TORCH_TARGETS = {(64, 3072): 0.7, (4096, 1024): 1.0, (65536, 64): 1.0}
BACKWARD_SPEEDUP_TARGET = 0.5  # simplified backward time / staged: ">= 2x faster"

# (row label, numpy case, reference case, reference side) for each shape
LAYER_ROWS = [
    ("batchnorm fwd+bwd (simplified bwd)", "batchnorm", "batchnorm", "torch"),
    ("batchnorm fwd+bwd (staged bwd)", "batchnorm staged", "batchnorm", "torch"),
    ("batchnorm bwd: simplified vs staged", "batchnorm bwd simplified",
     "batchnorm bwd staged", "numpy staged bwd"),
    ("layernorm fwd+bwd", "layernorm", "layernorm", "torch"),
    ("dropout fwd+bwd (p=%g)" % layer_cases.KEEP_P, "dropout", "dropout", "torch"),
]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny shapes, few repeats, no notebooks (a smoke test)")
    parser.add_argument("--no-notebooks", action="store_true",
                        help="skip the end-to-end notebook runs")
    parser.add_argument("--no-torch", action="store_true",
                        help="skip the PyTorch comparisons even if torch is installed")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed rounds per figure (default 15; 3 with --quick)")
    parser.add_argument("--notebook-runs", type=int, default=1, metavar="N",
                        help="executions of each notebook; the median wall time is shown "
                             "(default 1: one run takes a minute or more)")
    parser.add_argument("--no-grading", action="store_true",
                        help="skip grading a submission end to end (grade_bench.py)")
    parser.add_argument("--markdown", metavar="PATH", help="also write the results as markdown")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    for name in ("repeats", "notebook_runs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')}: expected an integer >= 1, got {value}")
    return args


def load_torch(disabled):
    """torch with one intra-op and one inter-op thread, or None (and why)."""
    if disabled:
        return None, "disabled by --no-torch"
    try:
        import torch
    except ImportError:
        return None, "PyTorch is not installed"
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only settable before torch's first parallel work
        pass
    return torch, None


def describe_machine(torch, bandwidth, copy_mib):
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    parts = [
        cpu,
        f"{os.cpu_count()} cores",
        f"Python {platform.python_version()}",
        f"numpy {np.__version__} ({blas.get('name')} {blas.get('version')})",
    ]
    if torch is not None:
        torch_blas = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
        parts.append(f"torch {torch.__version__} ({torch_blas[1] if torch_blas else '?'}, "
                     f"{torch.get_num_threads()} thread)")
    libc = " ".join(platform.libc_ver())
    if libc.strip():
        parts.append(libc)
    env_names = sorted(k for k in os.environ
                       if k.endswith("_NUM_THREADS") or k.startswith("MALLOC_"))
    env = " ".join(f"{k}={os.environ[k]}" for k in env_names)
    return {
        "description": ", ".join(parts),
        "env": env,
        "copy_bandwidth_gb_s": bandwidth / 1e9,
        "copy_mib": copy_mib,
    }


def run_checks(shapes, torch):
    """Every correctness check, before anything is timed; raises BenchmarkError."""
    for shape in shapes:
        layer_cases.check_numpy(shape)
        if torch is not None:
            layer_cases.check_torch(torch, shape)
    if torch is not None:
        train_case.check_training(torch)


def layer_target(numpy_case, reference, shape):
    if reference != "torch":
        return BACKWARD_SPEEDUP_TARGET
    if numpy_case == "batchnorm":
        return BN_TORCH_TARGETS.get(shape)
    return TORCH_TARGETS.get(numpy_case)


def make_row(label, shape, numpy_s, reference, reference_s, target, floor_s):
    ratio = None if reference_s is None else numpy_s / reference_s
    return {
        "case": label,
        "shape": None if shape is None else list(shape),
        "numpy_ms": numpy_s * 1e3,
        "reference": reference,
        "reference_ms": None if reference_s is None else reference_s * 1e3,
        "ratio": ratio,
        "target": target,
        "met": None if ratio is None or target is None else bool(ratio <= target),
        "floor_ratio": None if floor_s is None else numpy_s / floor_s,
    }


def time_layers(shapes, torch, repeats, min_sample_s, bandwidth, log):
    rows = []
    for shape in shapes:
        log(f"timing the layers at {shape} ...")
        fns = {("numpy", k): v for k, v in layer_cases.numpy_cases(shape).items()}
        if torch is not None:
            fns.update({("torch", k): v for k, v in layer_cases.torch_cases(torch, shape).items()})
        medians = timing.interleaved_medians(fns, repeats, min_sample_s)
        for label, numpy_case, reference_case, reference in LAYER_ROWS:
            side = "torch" if reference == "torch" else "numpy"
            reference_s = medians.get((side, reference_case))
            rows.append(make_row(
                label, shape, medians[("numpy", numpy_case)],
                reference if reference_s is not None else "torch (skipped)", reference_s,
                layer_target(numpy_case, reference, shape),
                layer_cases.floor_seconds(numpy_case, shape, bandwidth),
            ))
    return rows


def time_training(torch, repeats, min_sample_s, log):
    log("timing the training iteration ...")
    batch = train_case.BATCH_SIZE
    numpy_side = train_case.NumpyTrainer(train_case.DTYPE, batch)
    fns = {"numpy": numpy_side.step}
    if torch is not None:
        fns["torch"] = train_case.TorchTrainer(torch, numpy_side.model, batch).step
    medians = timing.interleaved_medians(fns, repeats, min_sample_s)
    label = (f"train iteration: {len(train_case.HIDDEN_DIMS) + 1}-layer BN net + Adam, "
             f"{np.dtype(train_case.DTYPE).name}")
    return make_row(label, (batch, int(np.prod(train_case.INPUT_SHAPE))), medians["numpy"],
                    "torch" if torch is not None else "torch (skipped)", medians.get("torch"),
                    TORCH_TARGETS["train iteration"], None)


def time_notebooks(runs, log):
    """Median wall time and largest peak memory of ``runs`` executions of each notebook."""
    rows = []
    for name, target_s in NOTEBOOK_TARGETS_S.items():
        path = ROOT / name
        row = {"notebook": name, "target_s": target_s, "runs": runs, "wall_s": None,
               "peak_rss_mib": None, "met": None, "error": None}
        if not path.is_file():
            row["error"] = "not found"
        else:
            try:
                results = []
                for run in range(1, runs + 1):
                    log(f"executing a temporary copy of {name} ({run}/{runs}) ...")
                    results.append(notebook_run.run(path, dict(os.environ)))
                row["wall_s"] = statistics.median(r["wall_s"] for r in results)
                row["peak_rss_mib"] = max(r["peak_rss_mib"] for r in results)
                row["met"] = row["wall_s"] < target_s
            except RuntimeError as error:
                row["error"] = str(error)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------


def _fmt(value, spec, missing="-"):
    return missing if value is None else format(value, spec)


def _met(met):
    return {True: "met", False: "MISSED", None: "-"}[met]


def layer_table(rows):
    header = ["case", "shape", "numpy ms", "reference", "ref ms", "ratio", "target",
              "met?", "floor ratio"]
    body = []
    for r in rows:
        body.append([
            r["case"],
            "x".join(map(str, r["shape"])) if r["shape"] else "-",
            _fmt(r["numpy_ms"], ".3f"),
            r["reference"],
            _fmt(r["reference_ms"], ".3f"),
            _fmt(r["ratio"], ".2f") + ("x" if r["ratio"] is not None else ""),
            "<= " + _fmt(r["target"], ".2f") + "x" if r["target"] is not None else "-",
            _met(r["met"]),
            _fmt(r["floor_ratio"], ".1f") + ("x" if r["floor_ratio"] is not None else ""),
        ])
    return header, body


def notebook_table(rows):
    header = ["notebook", "runs", "wall s", "peak MiB", "target", "met?"]
    body = [[r["notebook"], r["runs"],
             _fmt(r["wall_s"], ".1f", r["error"].splitlines()[0] if r["error"] else "-"),
             _fmt(r["peak_rss_mib"], ".0f"), f"< {r['target_s']:.0f} s", _met(r["met"])]
            for r in rows]
    return header, body


def text_table(header, body):
    widths = [max(len(str(row[i])) for row in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths)))
             for row in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(header, body):
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(" --- " if i == 0 else " ---: " for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in body]
    return "\n".join(lines)


NOTES = """\
ratio = numpy ms / reference ms, both medians measured in this run. torch: PyTorch eager
mode on the CPU with one thread, forward + torch.autograd.grad with the same random dout.
floor ratio = numpy ms / floor, floor = bytes the case must move / copy bandwidth; counted
as arrays of x's size (N, D): batch/layer norm fwd+bwd 5 (read x, write out, read dout,
read the saved x or x_hat, write dx), dropout 4 (mask not counted), a backward alone 3.
The training iteration feeds one fixed float32 batch (no minibatch sampling).
Notebooks: wall time from kernel start to the last cell (median of the runs shown), peak
resident memory of the kernel, each run on a temporary copy with the Makefile's environment."""


def report(results, table_format):
    machine = results["machine"]
    markdown = table_format == "markdown"
    facts = [f"Machine: {machine['description']}",
             f"Environment: {machine['env'] or '(no thread/malloc variables set)'}",
             f"Copy bandwidth (np.copyto, {machine['copy_mib']} MiB arrays, bytes read + "
             f"written): {machine['copy_bandwidth_gb_s']:.1f} GB/s",
             f"Repeats: {results['repeats']} rounds per figure (median)."]
    if results["torch_skipped"]:
        facts.append(f"PyTorch comparisons skipped: {results['torch_skipped']}.")
    lines = ["## Benchmark results" if markdown else "Benchmark", ""]
    lines += [f"- {fact}" for fact in facts] if markdown else facts
    lines.append("")
    table = markdown_table if markdown else text_table
    lines += [table(*layer_table(results["rows"])), ""]
    if results["notebooks"]:
        lines += [table(*notebook_table(results["notebooks"])), ""]
        lines += [f"{r['notebook']}: {r['error']}\n" for r in results["notebooks"]
                  if r["error"] and "\n" in r["error"]]
    elif results["notebooks_skipped"]:
        lines += [f"Notebooks: skipped ({results['notebooks_skipped']}).", ""]
    lines += [NOTES, ""]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    torch, torch_skipped = load_torch(args.no_torch)
    if torch_skipped:
        log(f"PyTorch comparisons skipped: {torch_skipped}.")
    shapes = QUICK_SHAPES if args.quick else NOTEBOOK_SHAPES + LARGE_SHAPES
    repeats = args.repeats or (3 if args.quick else 15)
    min_sample_s = 0.001 if args.quick else 0.02

    log("checking that the implementations agree ...")
    try:
        run_checks(shapes, torch)
    except BenchmarkError as error:
        log(f"correctness check failed, nothing timed: {error}")
        return 2
    except NotImplementedError as error:  # the student release, before the layers are written
        log(f"a layer is not implemented yet, nothing timed: NotImplementedError: {error}")
        return 2

    # Each array far beyond the caches (256 MiB) in a full run, so the floor is DRAM's.
    copy_mib = 8 if args.quick else 256
    bandwidth = timing.copy_bandwidth(copy_mib << 20, 3 if args.quick else 7)
    results = {
        "machine": describe_machine(torch, bandwidth, copy_mib),
        "repeats": repeats,
        "torch_skipped": torch_skipped,
        "rows": time_layers(shapes, torch, repeats, min_sample_s, bandwidth, log),
        "notebooks": [],
        "notebooks_skipped": None,
    }
    results["rows"].append(time_training(torch, repeats, min_sample_s, log))
    if args.quick or args.no_notebooks:
        results["notebooks_skipped"] = "--quick" if args.quick else "--no-notebooks"
    else:
        results["notebooks"] = time_notebooks(args.notebook_runs, log)

    print(report(results, "text"))
    if not (args.quick or args.no_grading):
        # Seconds and memory per graded submission (imported only when grading is timed).
        from instructor_tools.benchmarks import grade_bench

        log("grading one submission built from this tree (grade_bench.py) ...")
        print("\n" + grade_bench.report(grade_bench.run(1, not args.no_notebooks, 1, log)))
    if args.markdown:
        Path(args.markdown).write_text(report(results, "markdown"))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    failed = [r["notebook"] for r in results["notebooks"] if r["error"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
