"""Run one command of untrusted code with no network, resource limits and a private /tmp.

Three levels, the best available one is used and reported (``Sandbox.kind``):

- ``bwrap``: bubblewrap (Debian package ``bubblewrap``). A fresh mount namespace built
  from read-only binds of the system (/usr), the Python install and the virtual
  environment, the submission copy (read-only) and the course files the worker needs
  (read-only); a private tmpfs /tmp; one writable output folder. Nothing else of the host
  exists inside: not the instructors' tree, not the hidden tests, not the reference, not
  other submissions. New network (only a down loopback), PID, IPC and UTS namespaces.
  The code runs as an unprivileged uid (``setpriv``), so RLIMIT_NPROC applies (the kernel
  never enforces it for uid 0).
- ``unshare``: ``unshare -n`` (network namespace) plus the uid drop and the rlimits, but
  the file system is the host's: instructor files are protected only by permissions.
- ``none``: rlimits only (and the uid drop when running as root). Reported in every row.

Limits (``Limits``) are applied with ``prlimit`` on the command: CPU seconds, address
space, number of processes of the sandbox uid, size of any file written. A wall-clock
timeout kills the whole process group (and, with bwrap, its PID namespace).

The project's own packages (instructor_tools with the hidden tests, student_tools, cs231n,
tests, editable-install hooks) are masked wherever a bound Python root holds them, e.g.
after a non-editable ``pip install .``: only the interpreter and the runtime packages
are visible. Budgets for a whole submission (cgroups, a shared scratch, a deadline, a
fresh uid) are in ``isolation.py``.
"""
import json
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BWRAP = "/usr/bin/bwrap"
PROJECT = Path(__file__).resolve().parents[2]  # the folder holding instructor_tools
# Top-level names of this project (pyproject.toml's packages, plus the test folder).
PROJECT_PACKAGES = ("instructor_tools", "student_tools", "cs231n", "tests")
DIST_NAME = "cs231n"
POLL_SECONDS = 0.2


@dataclass
class Limits:
    """Resource limits of one sandboxed command."""
    cpu_seconds: int = 120
    wall_seconds: float = 180.0
    memory_bytes: int = 3 * 2**30  # address space (RLIMIT_AS) per process
    processes: int = 64  # processes + threads of the sandbox uid (RLIMIT_NPROC)
    file_bytes: int = 256 * 2**20  # largest file the code may write (RLIMIT_FSIZE)
    tmp_bytes: int = 512 * 2**20  # size of the private /tmp (bubblewrap only)


@dataclass
class RunResult:
    returncode: int | None  # None: killed by the wall-clock timeout
    timed_out: bool
    seconds: float
    stdout: str
    stderr: str
    signal: int | None = None  # the signal that ended it, if one did
    # A per-submission budget that ended or refused it (isolation.SubmissionBox only):
    # "memory", "processes", "disk", "files" or "deadline".
    budget_exceeded: str | None = None

    @property
    def cpu_limit(self):
        return self.signal == signal.SIGXCPU or (
            self.signal == signal.SIGKILL and not self.timed_out and "xcpu" in self.stderr.lower())


@dataclass
class Mount:
    host: Path
    inside: str
    writable: bool = False


def _usable_bwrap():
    if not Path(BWRAP).is_file() or os.geteuid() != 0:
        return False
    done = subprocess.run([BWRAP, "--ro-bind", "/", "/", "--unshare-net", "--", "/bin/true"],
                          capture_output=True, timeout=30, check=False)
    return done.returncode == 0


def _usable_unshare():
    exe = shutil.which("unshare")
    if exe is None:
        return False
    done = subprocess.run([exe, "-n", "/bin/true"], capture_output=True, timeout=30, check=False)
    return done.returncode == 0


def detect(prefer=None):
    """The best sandbox kind here ('bwrap', 'unshare' or 'none'), or prefer if it works."""
    order = ["bwrap", "unshare", "none"]
    if prefer is not None:
        if prefer not in order:
            raise ValueError(f"sandbox: expected one of {order}, got {prefer!r}")
        order = order[order.index(prefer):]
    for kind in order:
        if kind == "bwrap" and _usable_bwrap():
            return kind
        if kind == "unshare" and _usable_unshare():
            return kind
        if kind == "none":
            return kind
    return "none"


def describe(kind):
    """One line for the gradebook and the feedback: what isolation a run had."""
    return {
        "bwrap": "bubblewrap: no network, private /tmp, read-only code, instructor files absent",
        "unshare": "FALLBACK unshare -n: no network, but the host file system is visible "
                   "(bubblewrap missing, or the grader not run as root)",
        "none": "FALLBACK no namespaces: rlimits only, network and host files reachable "
                "(neither bubblewrap as root nor unshare usable)",
    }[kind]


def _python_roots(extra=()):
    """Host folders the interpreter of this virtual environment needs (read-only)."""
    roots = {Path(sys.prefix), Path(sys.base_prefix), *map(Path, extra)}
    # The venv's python is a symlink into the base install; its folder must exist too.
    roots.add(Path(os.path.realpath(sys.executable)).parent.parent)
    return sorted(r.resolve() for r in roots)


def _under(path, root):
    return path == root or root in path.parents


def path_entries(roots):
    """Folders under roots that Python could import from: this process's sys.path, every
    site-packages of each root, each root itself (a ``pip install --target`` folder), and
    the project's source tree."""
    found = [Path(p or ".").resolve() for p in sys.path] + [PROJECT] + list(roots)
    for root in roots:
        for pattern in ("lib/python3*/site-packages", "lib/python3*/dist-packages",
                        "local/lib/python3*/*-packages", "lib/python3/dist-packages"):
            found += root.glob(pattern)
    return sorted({p for p in found if any(_under(p, r) for r in roots) and p.is_dir()})


def _is_project_pth(path):
    """A .pth file that puts this project on sys.path (an editable install's hook)."""
    if path.name.startswith("__editable__") and DIST_NAME in path.name:
        return True
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[:200]
    except OSError:
        return False
    for line in lines:
        line = line.strip()
        if line and not line.startswith(("#", "import ")) and any(
                (Path(line) / name).exists() for name in PROJECT_PACKAGES[:3]):
            return True
    return False


def project_masks(roots):
    """Paths under the bound roots that hold this project's code: its packages, its
    distribution metadata and its editable-install finders and .pth files."""
    masks = set()
    for entry in path_entries(roots):
        try:
            children = list(entry.iterdir())
        except OSError:
            continue
        for child in children:
            name = child.name
            stem = name[:-3] if name.endswith(".py") else name
            if (stem in PROJECT_PACKAGES
                    or name.startswith((f"__editable___{DIST_NAME}_", f"{DIST_NAME}.egg-link"))
                    or (name.startswith(f"{DIST_NAME}-") and name.endswith(
                        (".dist-info", ".egg-info")))
                    or (name.endswith(".pth") and _is_project_pth(child))):
                masks.add(child)
    return sorted(masks)


def others_can_run_python():
    """True when an unprivileged uid can run this interpreter on the host file system.

    Needed by the fallbacks only (bubblewrap binds the interpreter where any uid can reach
    it). A Python under /root (mode 0700) cannot be run by another uid.
    """
    for root in _python_roots():
        path = Path("/")
        for part in root.parts[1:]:
            path = path / part
            if not path.stat().st_mode & stat.S_IXOTH:
                return False
    return True


def _tail(handle, size=20000):
    """The last size bytes written to an open temporary file."""
    end = handle.seek(0, os.SEEK_END)
    handle.seek(max(0, end - size))
    return handle.read()


def _parents(path):
    """Every proper ancestor of an absolute path, shortest first, '/' excluded."""
    parts = Path(path).parts[1:-1]
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)]


@dataclass
class Sandbox:
    kind: str
    uid: int | None = None  # None: do not change uid (not root)
    extra_roots: list = field(default_factory=list)  # more Python folders, bound read-only
    mask_project: bool = True  # hide the project's packages under the Python roots

    def command(self, argv, mounts, cwd, env, limits, *, tmp=None, prefix=()):
        """The full argv: prefix, prlimit, the namespace tool, the uid drop, then argv.

        tmp: a host folder bound as /tmp (bwrap) instead of a fresh tmpfs of
        limits.tmp_bytes. prefix: a launcher run first, with this process's privileges.
        """
        prefix = list(prefix)
        lim = [
            "prlimit", f"--cpu={limits.cpu_seconds}", f"--as={limits.memory_bytes}",
            f"--nproc={limits.processes}", f"--fsize={limits.file_bytes}", "--core=0", "--",
        ]
        drop = []
        if self.uid is not None:
            drop = ["/usr/bin/setpriv", f"--reuid={self.uid}", f"--regid={self.uid}",
                    "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
                    "--no-new-privs"]
        envs = []
        for key, value in env.items():
            envs += ["--setenv", key, value]
        if self.kind == "bwrap":
            cmd = [BWRAP, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                   "--unshare-cgroup-try", "--die-with-parent", "--new-session",
                   "--clearenv", *envs,
                   "--ro-bind", "/usr", "/usr",
                   "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
                   "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
                   "--proc", "/proc", "--dev", "/dev"]
            if tmp is not None:
                cmd += ["--bind", str(tmp), "/tmp"]
            else:
                # tmpfs lives in RAM: its size is capped like the address space.
                cmd += ["--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp"]
            made = {"/usr", "/tmp", "/proc", "/dev", "/bin", "/lib", "/lib64", "/sbin"}
            roots = _python_roots(self.extra_roots)
            ro = [(str(r), str(r), False) for r in roots]
            ro += [(str(m.host), m.inside, m.writable) for m in mounts]
            bound = ["/usr"]
            for host, inside, writable in ro:
                if any(inside == b or inside.startswith(b + "/") for b in ["/usr"]):
                    continue
                for parent in _parents(inside):
                    # Parents inside an earlier bind already exist there (created on the host).
                    inside_bind = any(parent == b or parent.startswith(b + "/") for b in bound)
                    if parent not in made and not inside_bind:
                        cmd += ["--perms", "0755", "--dir", parent]
                        made.add(parent)
                cmd += ["--bind" if writable else "--ro-bind", host, inside]
                made.add(inside)
                bound.append(inside)
            for path in project_masks(roots) if self.mask_project else []:
                # After the binds, so the mask lies over them: an empty read-only folder,
                # or /dev/null for a file (finder module, .pth).
                if path.is_dir():
                    cmd += ["--perms", "0555", "--size", "4096", "--tmpfs", str(path),
                            "--remount-ro", str(path)]
                else:
                    cmd += ["--ro-bind", "/dev/null", str(path)]
            cmd += ["--chdir", cwd, "--"]
            return prefix + lim + cmd + drop + list(argv)
        if self.kind == "unshare":
            # unshare -n leaves the loopback down; a notebook kernel talks to pytest over it.
            up = ["sh", "-c", 'ip link set lo up 2>/dev/null; exec "$@"', "sh"]
            return prefix + lim + ["unshare", "-n", "--"] + up + drop + ["env", "-i",
                    *[f"{k}={v}" for k, v in env.items()]] + list(argv)
        return prefix + lim + drop + ["env", "-i", *[f"{k}={v}" for k, v in env.items()]] + \
            list(argv)

    def run(self, argv, mounts, cwd, env, limits, pass_fds=()):
        """Run argv sandboxed; kill its process group at the wall-clock limit.

        mounts: list of Mount (host folder -> path inside). With kind 'bwrap' the paths
        inside are what the code sees; otherwise the code sees host paths, so callers
        pass mounts whose inside path equals the host path (see ``Sandbox.path``).
        """
        cmd = self.command(argv, mounts, cwd, env, limits)
        return execute(cmd, cwd if self.kind != "bwrap" else "/", limits.wall_seconds, pass_fds)

    def path(self, mount):
        """Where the code sees a mount: its inside path under bwrap, else the host path."""
        return mount.inside if self.kind == "bwrap" else str(mount.host)


def _killpg(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def execute(cmd, host_cwd, wall_seconds, pass_fds=(), status=None, watch=None, kill=None):
    """Run cmd in its own session; kill it at wall_seconds (s); return a RunResult.

    status: (read_fd, write_fd) of a launcher's status pipe (see launch.py); the write end
    is passed to cmd, both are closed here. Anything read before the pipe closes is a
    setup failure: the command is killed and RuntimeError raised.
    watch(proc): called every POLL_SECONDS; a non-empty return (a budget's name) kills the
    run (kill(proc), default: its process group) and becomes RunResult.budget_exceeded.
    """
    kill = kill or _killpg
    start = time.monotonic()
    # Output goes to unnamed temporary files, not pipes: code printing without end is
    # stopped by RLIMIT_FSIZE instead of filling the grader's memory.
    with tempfile.TemporaryFile() as out_file, tempfile.TemporaryFile() as err_file:
        try:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out_file, stderr=err_file,
                cwd=host_cwd, start_new_session=True,
                pass_fds=tuple(pass_fds) + ((status[1],) if status else ()))
        finally:
            if status:
                os.close(status[1])  # else the read below never sees the end of the pipe
        timed_out, exceeded = False, None
        try:
            if status:
                _read_status(status[0], proc)
            while proc.poll() is None:
                left = wall_seconds - (time.monotonic() - start)
                if left <= 0:
                    timed_out = True
                    kill(proc)
                    break
                try:
                    proc.wait(timeout=min(POLL_SECONDS, left) if watch else left)
                except subprocess.TimeoutExpired:
                    pass
                reason = watch(proc) if watch and proc.poll() is None else None
                if reason:
                    exceeded = reason
                    kill(proc)
                    break
        except BaseException:
            kill(proc)
            proc.wait()
            raise
        finally:
            if status:
                os.close(status[0])
        proc.wait()
        out, err = _tail(out_file), _tail(err_file)
    seconds = time.monotonic() - start
    rc = proc.returncode
    sig = -rc if rc is not None and rc < 0 else None
    # prlimit/bwrap report a child killed by a signal as 128 + signal number.
    if sig is None and rc is not None and rc > 128 and rc - 128 < 65:
        sig = rc - 128
    return RunResult(None if timed_out else rc, timed_out, seconds,
                     out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), sig,
                     budget_exceeded=exceeded)


def _read_status(fd, proc, seconds=60):
    """Wait until the launcher closed its status pipe; raise what it reported."""
    message, deadline = b"", time.monotonic() + seconds
    while True:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise RuntimeError(f"sandbox launcher did not start within {seconds} s")
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        message += chunk
    if message:
        proc.wait()
        raise RuntimeError(f"sandbox setup failed, nothing was run: "
                           f"{message.decode('utf-8', 'replace')[:500]}")


PROBE = """import importlib.util, json, os, sys
extra, names, tree = json.loads(sys.argv[1])
sys.path[:0] = extra
for name in names:
    try:
        spec = importlib.util.find_spec(name)
    except Exception:
        spec = None
    if spec is not None and not spec.has_location:  # a namespace: empty folders are masks
        where = [p for p in spec.submodule_search_locations or [] if os.listdir(p)]
    else:
        where = spec and spec.origin
    if where:
        print(json.dumps(["import", name, where]))
if os.path.exists(tree):
    print(json.dumps(["file", tree, tree]))
"""


def preflight(kind, extra_roots=(), mask=True, mounts=()):
    """Problems that must stop the grader, as sentences (empty: none found).

    Runs a tiny Python inside the sandbox of this kind (same Python roots, masks and
    mounts as a real run, as an unprivileged uid when root) that tries to import the
    project's packages from every folder on the host's sys.path under those roots."""
    roots = _python_roots(extra_roots)
    uid = 65534 if os.geteuid() == 0 and (kind == "bwrap" or others_can_run_python()) \
        else None
    sandbox = Sandbox(kind, uid=uid, extra_roots=list(extra_roots), mask_project=mask)
    names = ["instructor_tools.grade.hidden", "instructor_tools", "student_tools", "cs231n",
             "tests"]
    hidden = str(PROJECT / "instructor_tools" / "grade" / "hidden")
    arg = json.dumps([[str(p) for p in path_entries(roots)], names, hidden])
    run = sandbox.run([sys.executable, "-c", PROBE, arg], list(mounts), cwd="/",
                      env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                      limits=Limits(cpu_seconds=60, wall_seconds=60))
    if run.returncode != 0:
        return [f"the preflight probe failed inside the {kind} sandbox "
                f"(exit {run.returncode}): {run.stderr.strip()[-300:]}"]
    problems = []
    for line in run.stdout.splitlines():
        if not line.startswith("["):  # a .pth file of the environment printed something
            continue
        what, name, where = json.loads(line)
        problems.append(f"{name} is importable inside the sandbox (from {where})"
                        if what == "import" else
                        f"the hidden tests' folder {name} is readable inside the sandbox")
    return problems
