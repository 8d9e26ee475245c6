"""End-to-end execution time and peak memory of a notebook, run on a temporary copy.

    python -m instructor_tools.benchmarks.notebook_run NOTEBOOK_COPY      (used by bench.py)

The committed notebook is never touched: ``run`` copies it into a temporary directory and
executes the copy in a child process, which starts the kernel (in that directory) as ITS
child. When the kernel has exited, the child's RUSAGE_CHILDREN holds the kernel's peak
resident memory; the child prints it with the wall time as one JSON line.
"""
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 1800  # per cell, as `make notebooks`


def run(notebook, env):
    """Execute a temporary copy of notebook with environment env.

    Returns {'wall_s': seconds from kernel start to the last cell's end,
    'peak_rss_mib': the kernel's peak resident memory} or raises RuntimeError with the
    child's error output when the notebook fails.
    """
    with tempfile.TemporaryDirectory(prefix="bench-notebook-") as tmp:
        copy = Path(shutil.copy(notebook, tmp))
        # The child runs this module with -m from the project root (so it finds the
        # package); the kernel it starts still works in tmp (the path given to nbclient).
        proc = subprocess.run(
            [sys.executable, "-m", "instructor_tools.benchmarks.notebook_run", str(copy)],
            env=env, cwd=PROJECT, capture_output=True, text=True,
        )
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"{Path(notebook).name} failed (exit {proc.returncode}):\n{tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _execute(copy):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(copy, as_version=4)
    client = NotebookClient(
        nb, timeout=TIMEOUT_S, kernel_name="python3", record_timing=False,
        resources={"metadata": {"path": str(Path(copy).parent)}},
    )
    start = time.perf_counter()
    client.execute()  # starts the kernel, runs every cell, shuts the kernel down
    wall = time.perf_counter() - start
    # ru_maxrss is in KiB on Linux: the largest resident set of any waited-for child,
    # i.e. the kernel (this process's own memory is not included).
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"wall_s": wall, "peak_rss_mib": peak_kib / 1024}))


if __name__ == "__main__":
    _execute(sys.argv[1])
