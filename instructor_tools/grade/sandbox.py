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
"""
import os
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
# Unprivileged uids the sandboxed code runs as (no passwd entry needed): one per parallel
# slot, in a block chosen by the grader's pid, so that two grader runs on one machine do not
# share a process limit (RLIMIT_NPROC counts every process of a uid).
SANDBOX_UID_BASE = 100000
UIDS_PER_RUN = 64


def sandbox_uid(slot, pid=None):
    """The uid of parallel slot `slot` of the grader process `pid` (default: this one)."""
    pid = os.getpid() if pid is None else pid
    return SANDBOX_UID_BASE + (pid % 100000) * UIDS_PER_RUN + slot % UIDS_PER_RUN


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


def _python_roots():
    """Host folders the interpreter of this virtual environment needs (read-only)."""
    roots = {Path(sys.prefix), Path(sys.base_prefix)}
    # The venv's python is a symlink into the base install; its folder must exist too.
    roots.add(Path(os.path.realpath(sys.executable)).parent.parent)
    return sorted(r.resolve() for r in roots)


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
    extra_ro: list = field(default_factory=list)

    def command(self, argv, mounts, cwd, env, limits):
        """The full argv: prlimit, the namespace tool, the uid drop, then argv."""
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
                   "--proc", "/proc", "--dev", "/dev",
                   # tmpfs lives in RAM: its size is capped like the address space.
                   "--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp"]
            made = {"/usr", "/tmp", "/proc", "/dev", "/bin", "/lib", "/lib64", "/sbin"}
            ro = [(str(r), str(r), False) for r in _python_roots()]
            ro += [(str(m.host), m.inside, m.writable) for m in [*self.extra_ro, *mounts]]
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
            cmd += ["--chdir", cwd, "--"]
            return lim + cmd + drop + list(argv)
        if self.kind == "unshare":
            # unshare -n leaves the loopback down; a notebook kernel talks to pytest over it.
            up = ["sh", "-c", 'ip link set lo up 2>/dev/null; exec "$@"', "sh"]
            return lim + ["unshare", "-n", "--"] + up + drop + ["env", "-i",
                    *[f"{k}={v}" for k, v in env.items()]] + list(argv)
        return lim + drop + ["env", "-i", *[f"{k}={v}" for k, v in env.items()]] + list(argv)

    def run(self, argv, mounts, cwd, env, limits, host_cwd=None, pass_fds=()):
        """Run argv sandboxed; kill its process group at the wall-clock limit.

        mounts: list of Mount (host folder -> path inside). With kind 'bwrap' the paths
        inside are what the code sees; otherwise the code sees host paths, so callers
        pass mounts whose inside path equals the host path (see ``Sandbox.path``).
        """
        cmd = self.command(argv, mounts, cwd, env, limits)
        start = time.monotonic()
        # Output goes to unnamed temporary files, not pipes: code printing without end is
        # stopped by RLIMIT_FSIZE instead of filling the grader's memory.
        with tempfile.TemporaryFile() as out_file, tempfile.TemporaryFile() as err_file:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out_file, stderr=err_file,
                cwd=host_cwd or (cwd if self.kind != "bwrap" else "/"), start_new_session=True,
                pass_fds=tuple(pass_fds),
            )
            timed_out = False
            try:
                proc.wait(timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
                self.kill(proc)
                proc.wait()
            out, err = _tail(out_file), _tail(err_file)
        seconds = time.monotonic() - start
        rc = proc.returncode
        sig = -rc if rc is not None and rc < 0 else None
        # prlimit/bwrap report a child killed by a signal as 128 + signal number.
        if sig is None and rc is not None and rc > 128 and rc - 128 < 65:
            sig = rc - 128
        return RunResult(None if timed_out else rc, timed_out, seconds,
                         out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), sig)

    def kill(self, proc):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def path(self, mount):
        """Where the code sees a mount: its inside path under bwrap, else the host path."""
        return mount.inside if self.kind == "bwrap" else str(mount.host)
