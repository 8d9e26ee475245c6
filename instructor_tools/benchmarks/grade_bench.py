"""Seconds and peak memory per graded submission, notebooks re-executed included.

    python -m instructor_tools.benchmarks.grade_bench [--submissions N] [--no-notebooks]
        [--jobs J] [--markdown PATH]          (from the project root)

Builds N submission zips from this repository's solution tree (the packer of
student_tools.submission, without the PDF), then grades them with
``python -m instructor_tools.grade`` in a child process, exactly as ``make grade`` does
(sandbox, hidden tests, both notebooks re-executed under nbval). Reported per submission
(from the grader's result files): wall seconds in all, of the hidden tests, and of each
notebook's re-execution. A sampler reads /proc every 0.2 s: the largest sum of resident
memory over the grader and every process below it (sandbox, pytest, kernels), the largest
single process, and the CPU seconds of every process seen. Target: 60 s or less per
submission on a 2-core machine.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
TARGET_S = 60.0


def _processes():
    """{pid: (ppid, rss bytes, cpu seconds)} of every process, from /proc."""
    page = os.sysconf("SC_PAGE_SIZE")
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read().decode("ascii", "replace")
            with open(f"/proc/{entry}/statm", "rb") as handle:
                resident = int(handle.read().split()[1]) * page
        except (OSError, ValueError, IndexError):
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        # fields[1] = ppid, fields[11], fields[12] = utime, stime (clock ticks)
        found[int(entry)] = (int(fields[1]), resident,
                             (int(fields[11]) + int(fields[12])) / ticks)
    return found


def tree(root_pid):
    """{pid: (rss bytes, cpu seconds)} of root_pid and every process below it."""
    procs = _processes()
    children = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = {}, [root_pid]
    while stack:
        pid = stack.pop()
        if pid in procs:
            found[pid] = procs[pid][1:]
        stack.extend(children.get(pid, []))
    return found


class Sampler(threading.Thread):
    """Every period: the summed and the largest resident memory of the tree, and the CPU
    seconds of every process seen (processes living less than a period are missed)."""

    def __init__(self, pid, period=0.2):
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.peak_sum = self.peak_single = 0
        self.cpu = {}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            found = tree(self.pid)
            rss = [r for r, _ in found.values()]
            self.peak_sum = max(self.peak_sum, sum(rss))
            self.peak_single = max([self.peak_single, *rss])
            for pid, (_, cpu) in found.items():
                self.cpu[pid] = max(cpu, self.cpu.get(pid, 0.0))
            self.stop.wait(self.period)


def make_zips(folder, count):
    from student_tools.submission import make_submission

    first = folder / "student-001.zip"
    make_submission(PROJECT, first)
    for i in range(2, count + 1):
        # Copies: each is graded in full (--force; results are kept per submission name).
        (folder / f"student-{i:03d}.zip").write_bytes(first.read_bytes())
    return sorted(folder.glob("*.zip"))


def run(count=1, notebooks=True, jobs=1, log=print):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               MPLBACKEND="module://matplotlib_inline.backend_inline")
    with tempfile.TemporaryDirectory(prefix="grade-bench-") as tmp:
        tmp = Path(tmp)
        subs, out = tmp / "subs", tmp / "out"
        subs.mkdir()
        zips = make_zips(subs, count)
        # The code and the notebooks, what the 60 s target counts; the grader-made PDFs
        # (about 30-40 s a submission for the real notebooks) come on top when asked for.
        argv = [sys.executable, "-m", "instructor_tools.grade", "grade", str(subs), "--out",
                str(out), "--jobs", str(jobs), "--quiet", "--force", "--no-pdf"]
        if not notebooks:
            argv.append("--no-notebooks")
        log(f"grading {len(zips)} submission(s){'' if notebooks else ' (no notebooks)'} "
            f"with --jobs {jobs} ...")
        load_before = os.getloadavg()[0]
        start = time.monotonic()
        proc = subprocess.Popen(argv, cwd=PROJECT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        sampler = Sampler(proc.pid)
        sampler.start()
        _, status = os.waitpid(proc.pid, 0)
        wall = time.monotonic() - start
        sampler.stop.set()
        sampler.join()
        stdout, stderr = proc.stdout.read().decode(), proc.stderr.read().decode()
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"grading failed:\n{stderr[-2000:]}")
        rows = []
        for path in sorted((out / "results").glob("*.json")):
            data = json.loads(path.read_text())
            nb = {n["name"]: n["reexec"]["seconds"] for n in data["notebooks"] if n["reexec"]}
            rows.append({"submission": data["submission"], "seconds": data["seconds"],
                         "worker_s": data.get("worker_seconds"),
                         "notebooks_s": nb, "score": data["score"],
                         "max_score": data["max_score"], "status": data["status"],
                         "outputs_reproduce": data["outputs_reproduce"]})
    return {"rows": rows, "wall_s": wall, "jobs": jobs, "notebooks": notebooks,
            "peak_tree_mib": sampler.peak_sum / 2**20,
            "largest_process_mib": sampler.peak_single / 2**20,
            "cpu_s": sum(sampler.cpu.values()),
            "load_before": load_before, "load_after": os.getloadavg()[0],
            "cpus": os.cpu_count(), "summary": stdout.strip()}


def report(results):
    per = results["wall_s"] / max(1, len(results["rows"]))
    lines = ["## Grading: seconds and memory per submission", "",
             f"- {len(results['rows'])} submission(s), --jobs {results['jobs']}, notebooks "
             f"{'re-executed' if results['notebooks'] else 'not re-executed'}, "
             f"{results['cpus']} CPUs",
             f"- Total wall time {results['wall_s']:.1f} s: {per:.1f} s per submission, "
             f"start-up included (target <= {TARGET_S:g} s: "
             f"{'met' if per <= TARGET_S else 'MISSED'}); the table gives each submission's "
             f"own wall time (with --jobs J > 1 they overlap)",
             f"- CPU time of the grader and every process below it: {results['cpu_s']:.1f} s "
             f"(machine load average {results['load_before']:.1f} before, "
             f"{results['load_after']:.1f} after: wall time far above CPU time means "
             f"other work shared the cores)",
             f"- Peak memory: {results['peak_tree_mib']:.0f} MiB summed over the grader and "
             f"every sandboxed process at once; largest single process "
             f"{results['largest_process_mib']:.0f} MiB",
             "", "| submission | s | hidden tests s | BatchNormalization s | Dropout s | score |"
             " status | outputs reproduce | target <= 60 s |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |"]
    for row in results["rows"]:
        nb = row["notebooks_s"]
        lines.append(
            f"| {row['submission']} | {row['seconds']:.1f} | {row['worker_s'] or 0:.1f} | "
            f"{nb.get('BatchNormalization.ipynb', '-')} | {nb.get('Dropout.ipynb', '-')} | "
            f"{row['score']:g}/{row['max_score']:g} | {row['status']} | "
            f"{row['outputs_reproduce']} | {'met' if row['seconds'] <= TARGET_S else 'MISSED'} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--no-notebooks", action="store_true")
    parser.add_argument("--markdown", metavar="PATH")
    args = parser.parse_args(argv)
    if args.submissions < 1 or args.jobs < 1:
        parser.error("--submissions and --jobs: expected integers >= 1")
    results = run(args.submissions, not args.no_notebooks, args.jobs,
                  log=lambda m: print(m, file=sys.stderr, flush=True))
    text = report(results)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
