"""Each submission alone, in its own bounded world (``SubmissionBox``).

Rlimits bound one process; a submission is many (the worker, two nbval runs, their
kernels and children). A box gives ONE submission, for all its commands together:

- a fresh uid, never handed out before (``UidAllocator``), so nothing a previous
  submission left in per-uid kernel state (the user keyring, processes, files) is its;
- a new empty session keyring in every command (``launch.py``), and its own IPC namespace;
- memory and process budgets in a cgroup (v2, else v1), joined by the launcher before any
  untrusted code runs; without a usable cgroup the grader polls /proc instead;
- a private scratch: a tmpfs of the disk and inode budget, bound as /tmp in each command;
- a deadline: every run gets at most the time left.

``box.report`` says, one line per limit, how it was enforced here ("FALLBACK ..." where
the strong mechanism was missing). ``preflight`` checks that the project's own packages
(the hidden tests) cannot be imported inside the sandbox.
"""
import ctypes
import errno
import fcntl
import grp
import itertools
import os
import pwd
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from instructor_tools.grade.sandbox import (POLL_SECONDS, RunResult, Sandbox, execute,
                                            others_can_run_python)
from instructor_tools.grade.sandbox import preflight  # noqa: F401  (part of this API)

LAUNCH = Path(__file__).with_name("launch.py")
STATE_ENV = "CS231N_GRADER_STATE_DIR"  # overrides where the uid counter lives
UID_FIRST, UID_LAST = 200_000, 2**31 - 2
LEAF = "cs231n-grader"  # cgroup v2: where the grader moves itself (no internal processes)
MS_NOSUID, MS_NODEV, MNT_DETACH = 2, 4, 2
_LIBC = ctypes.CDLL(None, use_errno=True)
_names = itertools.count()
_v2_lock = threading.Lock()


class IsolationError(RuntimeError):
    """A box could not be set up or torn down as promised."""


@dataclass
class Budget:
    """Limits of ONE submission, all its commands and processes together."""
    memory_bytes: int = 6 * 2**30  # resident memory, its scratch tmpfs included (bytes)
    processes: int = 256  # processes + threads alive at once
    disk_bytes: int = 1 * 2**30  # its scratch /tmp, shared by all its commands (bytes)
    files: int = 20_000  # inodes in that scratch
    deadline_seconds: float = 600.0  # wall seconds for everything, notebook kernels included


def _size(n):
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _processes():
    """{pid: (uids, rss_bytes, threads, ppid, pgrp, session)} of every live process."""
    found, page = {}, os.sysconf("SC_PAGE_SIZE")
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
            status = Path(f"/proc/{name}/status").read_text()
        except OSError:  # it exited meanwhile
            continue
        rest = stat[stat.rindex(")") + 2:].split()
        if rest[0] in "ZX":  # zombies hold no memory and cannot be killed again
            continue
        uids = next(set(map(int, line.split()[1:])) for line in status.splitlines()
                    if line.startswith("Uid:"))
        found[int(name)] = (uids, int(rest[21]) * page, int(rest[17]), int(rest[1]),
                            int(rest[2]), int(rest[3]))
    return found


class UidAllocator:
    """Hands out uids never handed out before, from a counter file locked with flock.

    Two allocators on one state file never return the same uid; across grader runs the
    uids keep increasing. A uid that owns a process or has a passwd/group entry is skipped.
    """

    def __init__(self, state=None, first=UID_FIRST, last=UID_LAST):
        if not 0 < first <= last:
            raise ValueError(f"uid range {first}..{last}: must be above 0 (root)")
        if state is None:
            base = os.environ.get(STATE_ENV) or ("/var/lib/cs231n-grader" if os.geteuid() == 0
                                                 else Path.home() / ".local/state/cs231n-grader")
            state = Path(base) / "uid-counter"
        self.path, self.first, self.last = Path(state), first, last

    def allocate(self):
        """The next fresh uid (an int in [first, last])."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released by close
            raw = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
            try:
                uid = max(int(raw) + 1, self.first) if raw else self.first
            except ValueError:
                raise IsolationError(f"uid counter {self.path} is corrupt ({raw!r}): fix or "
                                     f"raise it by hand, never lower it") from None
            busy = set().union(*(p[0] for p in _processes().values()))
            while uid in busy or _has_entry(uid):
                uid += 1
            if uid > self.last:
                raise IsolationError(f"uid range {self.first}..{self.last} used up "
                                     f"({self.path})")
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{uid}\n".encode(), 0)
            os.fsync(fd)
            return uid
        finally:
            os.close(fd)


def _has_entry(uid):
    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(uid)
            return True
        except KeyError:
            pass
    return False


# ---------------------------------------------------------------------------
# cgroups
# ---------------------------------------------------------------------------


def _own_cgroups():
    """{controller: path} of this process ('' for the v2 unified hierarchy)."""
    own = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            own[name] = path
    return own


def _mount_of(fstype, controller=None):
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, where, kind, options = line.split()[:4]
        if kind == fstype and (controller is None or controller in options.split(",")):
            return Path(where)
    return None


def _counter(path, key):
    """The number after key in a 'key value' cgroup file (0 when absent)."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except OSError:
        pass
    return 0


def _v2_base():
    """The v2 cgroup whose children get memory and pids, or None. Moves the grader into a
    leaf child when its own cgroup holds processes (the 'no internal processes' rule)."""
    mount, own = _mount_of("cgroup2"), _own_cgroups().get("")
    if mount is None or own is None:
        return None
    base = mount / own.lstrip("/")
    base = base.parent if base.name == LEAF else base
    try:
        if not {"memory", "pids"} <= set((base / "cgroup.controllers").read_text().split()):
            return None
        with _v2_lock:
            if {"memory", "pids"} <= set((base / "cgroup.subtree_control").read_text().split()):
                return base
            try:
                (base / "cgroup.subtree_control").write_text("+memory +pids")
            except OSError:
                (base / LEAF).mkdir(exist_ok=True)
                for pid in (base / "cgroup.procs").read_text().split():
                    try:
                        (base / LEAF / "cgroup.procs").write_text(pid)
                    except OSError:  # exited, or a kernel thread
                        pass
                (base / "cgroup.subtree_control").write_text("+memory +pids")
        return base
    except OSError:
        return None


class _Cgroups:
    """The cgroup folders of one box: {'memory': dir, 'pids': dir} (the same dir in v2)."""

    def __init__(self, name, budget):
        self.dirs, self.problems, base = {}, [], _v2_base()
        self.version = 1 if base is None else 2
        if base is not None:
            self._make("memory", base / name, {"memory.max": budget.memory_bytes,
                                               "memory.swap.max": 0, "memory.oom.group": 1})
            if "memory" in self.dirs:
                self._make("pids", base / name, {"pids.max": budget.processes})
            return
        own, memory = _own_cgroups(), budget.memory_bytes
        for controller, values in (("memory", {"memory.limit_in_bytes": memory,
                                               "memory.memsw.limit_in_bytes": memory}),
                                   ("pids", {"pids.max": budget.processes})):
            mount = _mount_of("cgroup", controller)
            if mount is None or controller not in own:
                self.problems.append(f"no cgroup v1 {controller} controller")
            else:
                self._make(controller, mount / own[controller].lstrip("/") / name, values)

    def _make(self, controller, folder, values):
        made = not folder.is_dir()
        try:
            folder.mkdir(exist_ok=True)
            for key, value in values.items():
                try:
                    (folder / key).write_text(str(value))
                except FileNotFoundError:  # no swap accounting: nothing to limit there
                    if key not in ("memory.memsw.limit_in_bytes", "memory.swap.max"):
                        raise
            self.dirs[controller] = folder
        except OSError as exc:
            self.problems.append(f"cgroup {controller}: {exc}")
            if made and folder.is_dir():
                folder.rmdir()

    def procs_files(self):
        return sorted({d / "cgroup.procs" for d in self.dirs.values()})

    def counters(self):
        """(OOM kills, refused forks) so far."""
        memory, pids = self.dirs.get("memory"), self.dirs.get("pids")
        events = "memory.events" if self.version == 2 else "memory.oom_control"
        return (_counter(memory / events, "oom_kill") if memory else 0,
                _counter(pids / "pids.events", "max") if pids else 0)

    def pids(self):
        found = set()
        for path in self.procs_files():
            try:
                found.update(int(p) for p in path.read_text().split())
            except FileNotFoundError:
                pass
        return found

    def remove(self):
        for folder in sorted(set(self.dirs.values())):
            for attempt in range(100):  # EBUSY until the killed tasks have left
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if attempt == 99:
                        raise
                    time.sleep(0.02)
        self.dirs = {}


# ---------------------------------------------------------------------------
# The box
# ---------------------------------------------------------------------------


class SubmissionBox:
    """One submission's world; a context manager (always use ``with``).

    uid: its fresh uid (None when not root, or when a fallback kind cannot drop it).
    scratch: host path of its private scratch (a tmpfs when mounting works).
    report: one line per limit saying how it is enforced here.
    """
    # Tests switch these off to show that each defence matters and to run the fallbacks.
    _use_cgroups = True
    _use_tmpfs = True
    _new_keyring = True

    def __init__(self, kind, budget, workdir, uids=None, *, extra_roots=()):
        self.kind, self.budget, root = kind, budget, os.geteuid() == 0
        self._deadline = time.monotonic() + budget.deadline_seconds
        self._closed, self._mounted, self._cgroups, self.uid = False, False, None, None
        if root and (kind == "bwrap" or others_can_run_python()):
            self.uid = (uids or UidAllocator()).allocate()
        self.sandbox = Sandbox(kind, uid=self.uid, extra_roots=list(extra_roots))
        self.scratch = Path(tempfile.mkdtemp(prefix="scratch-", dir=workdir))
        try:
            if root and self._use_cgroups:
                self._cgroups = _Cgroups(f"cs231n-box-{os.getpid()}-{next(_names)}", budget)
            why_disk = self._mount_scratch() if root and self._use_tmpfs else \
                "not root" if not root else "tmpfs switched off"
            if not self._mounted and self.uid is not None:
                os.chown(self.scratch, self.uid, self.uid)  # mkdtemp made it 0700
            have = self._cgroups.dirs if self._cgroups else {}
            self._polled = ({"memory"} - set(have)) | ({"processes"} if "pids" not in have
                                                       else set())
            self._polled |= set() if self._mounted else {"disk", "files"}
            self.report = self._describe(why_disk)
        except BaseException:
            self.close()
            raise

    def _mount_scratch(self):
        """Mount the scratch tmpfs; None, or why it could not be."""
        owner = f",uid={self.uid},gid={self.uid}" if self.uid is not None else ""
        options = f"size={self.budget.disk_bytes},nr_inodes={self.budget.files},mode=0700"
        if _LIBC.mount(b"tmpfs", os.fsencode(self.scratch), b"tmpfs", MS_NOSUID | MS_NODEV,
                       (options + owner).encode()) != 0:
            return f"mount tmpfs: {os.strerror(ctypes.get_errno())}"
        self._mounted = True
        return None

    def _describe(self, why_disk):
        b, uid, root = self.budget, self.uid, os.geteuid() == 0
        who = f"uid {uid}" if uid is not None else "its session"
        why = ("; ".join(self._cgroups.problems) or "-") if self._cgroups else \
            "not root" if not root else "cgroups switched off"
        cgroup = f"cgroup v{self._cgroups.version}" if self._cgroups else ""
        where = "as /tmp" if self.kind == "bwrap" else "through TMPDIR etc."
        return [
            f"uid: fresh uid {uid}, never used before" if uid is not None else
            "FALLBACK uid: the code runs as the grader's uid (not root, or the interpreter "
            "is out of other uids' reach outside bubblewrap)",
            "FALLBACK keyring: the grader's session keyring is inherited"
            if not self._new_keyring else
            "keyring: new empty session keyring per command, fresh uid (own user keyring)"
            if uid is not None else "FALLBACK keyring: new empty session keyring per "
            "command, but the user keyring is the grader's (same uid)",
            "ipc: own IPC namespace per command (bwrap --unshare-ipc)" if self.kind == "bwrap"
            else "ipc: own IPC namespace per command (launcher)" if root else
            "FALLBACK ipc: the host's IPC namespace (not root)",
            f"FALLBACK memory: the grader polls the RSS of {who} every {POLL_SECONDS:g} s, "
            f"{_size(b.memory_bytes)} ({why})" if "memory" in self._polled else
            f"memory: {cgroup}, {_size(b.memory_bytes)} for the whole submission "
            f"(its scratch included)",
            f"FALLBACK processes: the grader counts the tasks of {who} every "
            f"{POLL_SECONDS:g} s, {b.processes} ({why})" if "processes" in self._polled else
            f"processes: {cgroup}, {b.processes} tasks for the whole submission",
            f"disk: tmpfs of {_size(b.disk_bytes)} {where}, shared by all commands"
            if self._mounted else f"FALLBACK disk: a plain folder {where}, the grader polls "
            f"its size every {POLL_SECONDS:g} s, {_size(b.disk_bytes)} ({why_disk})",
            f"files: {b.files} inodes in that tmpfs" if self._mounted else
            f"FALLBACK files: the grader counts its files every {POLL_SECONDS:g} s, {b.files}",
            *([] if self.kind == "bwrap" else [
                "FALLBACK host files: the code sees the host's file system (its /tmp, "
                "/var/tmp and /dev/shm are shared with other submissions)"]),
            f"deadline: {b.deadline_seconds:g} s for the whole submission",
        ]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def remaining(self):
        """Seconds left before the submission's deadline (0 when past it)."""
        return max(0.0, self._deadline - time.monotonic())

    def path(self, mount):
        """Where the code sees a mount (as Sandbox.path)."""
        return self.sandbox.path(mount)

    def host_env(self, env):
        """env with its /tmp/... paths moved into the scratch: for the kinds without
        bwrap, whose commands see host paths."""
        return {k: str(self.scratch) + v[4:] if v == "/tmp" or v.startswith("/tmp/") else v
                for k, v in env.items()}

    def run(self, argv, mounts, cwd, env, limits, pass_fds=()):
        """Sandbox.run inside the box: in its cgroup, as its uid, its scratch as /tmp, for
        at most min(limits.wall_seconds, remaining()) seconds. RunResult.budget_exceeded
        names the budget that ended or refused something ("memory", "processes", "disk",
        "files", "deadline"), else None."""
        if self._closed:
            raise IsolationError("run() on a closed SubmissionBox")
        left = self.remaining()
        if left <= 0:
            return RunResult(None, True, 0.0, "", "not run: the submission's deadline had "
                             "passed", budget_exceeded="deadline")
        by_deadline = left < limits.wall_seconds
        limits = replace(limits, wall_seconds=min(limits.wall_seconds, left),
                         file_bytes=min(limits.file_bytes, self.budget.disk_bytes),
                         processes=min(limits.processes, self.budget.processes))
        # The launcher joins the cgroups and the new keyring, then execs the command.
        prefix = [sys.executable, "-I", "-S", str(LAUNCH)]
        for path in self._cgroups.procs_files() if self._cgroups else []:
            prefix += ["--cgroup", str(path)]
        prefix += ["--keyring"] * self._new_keyring + ["--ipc"] * (
            self.kind != "bwrap" and os.geteuid() == 0)
        cmd = self.sandbox.command(argv, mounts, cwd, env, limits, prefix=prefix,
                                   tmp=self.scratch if self.kind == "bwrap" else None)
        status = os.pipe()
        cmd[len(prefix):len(prefix)] = ["--status", str(status[1]), "--"]
        start, seen, ending = self._counters(), [], []

        def watch(proc):
            over = self._over(proc.pid, start)
            seen.extend(r for r in over if r not in seen)
            # The kernel refuses forks past pids.max and writes past the tmpfs by itself:
            # only the memory budget and the budgets the grader polls end the run.
            ending[:] = [r for r in over if r == "memory" or r in self._polled][:1]
            return ending[0] if ending else None

        def kill(proc):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if by_deadline or ending:  # a budget of the whole submission: all of it ends
                self._kill_all(proc.pid)

        run = execute(cmd, cwd if self.kind != "bwrap" else "/",
                      limits.wall_seconds, pass_fds, status=status, watch=watch, kill=kill)
        if run.budget_exceeded is None:
            late = seen + self._over(None, start)
            run.budget_exceeded = "deadline" if run.timed_out and by_deadline else \
                (late or [None])[0]
        return run

    def _counters(self):
        return self._cgroups.counters() if self._cgroups else (0, 0)

    def _over(self, leader, start):
        """The budgets hit since the counters were start, in the order memory, processes,
        disk, files. leader: the run's first pid (finds its processes when uid is None)."""
        b, over, oom, refused = self.budget, [], *self._counters()
        if self._polled & {"memory", "processes"}:
            procs = self._members(leader).values()
            oom = start[0] + (sum(p[1] for p in procs) > b.memory_bytes)
            refused = start[1] + (sum(p[2] for p in procs) > b.processes)
        over += ["memory"] * (oom > start[0]) + ["processes"] * (refused > start[1])
        if self._mounted:
            fs = os.statvfs(self.scratch)
            full = fs.f_bavail * fs.f_frsize < min(2**20, b.disk_bytes // 100)
            return over + ["disk"] * full + ["files"] * (fs.f_favail == 0)
        size, count = 0, 0
        for folder, dirs, files in os.walk(self.scratch):
            for name in dirs + files:
                count += 1
                try:
                    size += os.lstat(os.path.join(folder, name)).st_blocks * 512
                except OSError:
                    pass
            if count > b.files or size > b.disk_bytes:
                break
        return over + ["disk"] * (size > b.disk_bytes) + ["files"] * (count > b.files)

    def _members(self, leader):
        """The submission's processes: its uid's, else the run's session and descendants."""
        procs = _processes()
        if self.uid is not None:
            return {pid: p for pid, p in procs.items() if self.uid in p[0]}
        tree, grown = {leader} - {None}, bool(leader)
        while grown:
            new = {pid for pid, p in procs.items() if pid not in tree and
                   (p[3] in tree or leader in (p[4], p[5]))}
            tree, grown = tree | new, bool(new)
        return {pid: procs[pid] for pid in tree if pid in procs}

    def _kill_all(self, leader=None):
        """SIGKILL every process of the submission until none is left (10 s at most)."""
        for _ in range(1000):
            pids = (self._cgroups.pids() if self._cgroups else set()) | \
                set(self._members(leader))
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)
        raise IsolationError(f"processes of the box survive SIGKILL: {sorted(pids)[:10]}")

    def close(self):
        """Kill what is left, unmount the scratch, remove the cgroups and the scratch.
        Every step is tried; failures are raised together at the end."""
        self._closed, errors = True, []
        for step in (self._kill_all, self._unmount, self._remove_cgroups, self._remove_scratch):
            try:
                step()
            except Exception as exc:  # the other steps must still run
                errors.append(f"{step.__name__}: {exc}")
        if errors:
            raise IsolationError("SubmissionBox cleanup: " + "; ".join(errors))

    def _unmount(self):
        if self._mounted:
            path = os.fsencode(self.scratch)
            if _LIBC.umount2(path, 0) != 0:
                err = ctypes.get_errno()
                # Busy (a task stuck in the kernel holds it): detach, freed when it lets go.
                if err != errno.EBUSY or _LIBC.umount2(path, MNT_DETACH) != 0:
                    raise OSError(err, f"umount {self.scratch}: {os.strerror(err)}")
            self._mounted = False

    def _remove_cgroups(self):
        if self._cgroups:
            self._cgroups.remove()

    def _remove_scratch(self):
        if not self._mounted and self.scratch.exists():
            shutil.rmtree(self.scratch)
