"""Each submission alone, in its own bounded world (isolation.SubmissionBox).

Every hostile case is a small trusted payload run through SubmissionBox.run, as a student's
code would be. Where a defence has a fallback (cgroup -> polling, tmpfs -> polling), both
are run. The keyring case also runs with each of its two defences switched off, to show
that the payload really replays the keys when nothing stops it; the hidden-package case
runs the preflight with and without the masks. Each test was also checked to fail with
its defence switched off in the code.

Needs root and bubblewrap (the grader's production setup); skipped otherwise, except with
REQUIRE_BWRAP=1 (CI), where a missing bubblewrap fails.
"""
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from instructor_tools.grade import isolation, launch
from instructor_tools.grade.isolation import Budget, SubmissionBox, UidAllocator, preflight
from instructor_tools.grade.sandbox import Limits, detect

KIND = detect()
ROOT = os.geteuid() == 0
PROJECT = Path(__file__).resolve().parents[2]
MiB = 2**20


@pytest.fixture(autouse=True)
def _private_state(tmp_path, monkeypatch):
    """Never touch the machine's real uid counter."""
    monkeypatch.setenv(isolation.STATE_ENV, str(tmp_path / "state"))


@pytest.fixture
def bwrap():
    if KIND != "bwrap":
        message = "needs bubblewrap, run as root"
        if os.environ.get("REQUIRE_BWRAP") == "1":
            pytest.fail(f"REQUIRE_BWRAP=1 but bubblewrap is not usable here: {message}")
        pytest.skip(message)


@pytest.fixture
def uids(tmp_path):
    return UidAllocator(tmp_path / "state" / "uids")


def box(tmp_path, uids, kind="bwrap", **budget):
    work = tmp_path / f"work-{uuid.uuid4().hex[:6]}"
    work.mkdir()
    work.chmod(0o755)
    return SubmissionBox(kind, Budget(**budget), work, uids=uids)


def run(box_, code, *args, wall=30):
    """Run a payload (python -c code args) in the box."""
    return box_.run([sys.executable, "-I", "-c", code, *map(str, args)], [],
                    cwd="/tmp" if box_.kind == "bwrap" else str(box_.scratch),
                    env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                    limits=Limits(cpu_seconds=60, wall_seconds=wall))


def alive(uid):
    return [pid for pid, p in isolation._processes().items() if uid in p[0]]


def leftovers(work):
    """Mounts under work and cgroups of this process's boxes that still exist."""
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()
              if line.split()[1].startswith(str(work))]
    own, found = isolation._own_cgroups(), []
    for controller in ("memory", "pids", ""):
        mount = isolation._mount_of("cgroup2" if controller == "" else "cgroup",
                                    controller or None)
        if mount is not None and controller in own:
            folder = mount / own[controller].lstrip("/")
            found += [str(p) for p in folder.parent.glob(f"*/cs231n-box-{os.getpid()}-*")]
            found += [str(p) for p in folder.glob(f"cs231n-box-{os.getpid()}-*")]
    return mounts + found


# ---------------------------------------------------------------------------
# Keyrings: a correct submission stored hidden-test outputs, a later one replayed them
# ---------------------------------------------------------------------------

KEYS = """import ctypes, json, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
action, desc, add_key, request_key, keyctl = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
USER, SESSION, SEARCH = -4, -3, 10
if action == "add":
    for ring, name in ((USER, "user"), (SESSION, "session")):
        data = b"hidden outputs"
        serial = libc.syscall(ctypes.c_long(add_key), b"user", f"{desc}-{name}".encode(),
                              data, ctypes.c_size_t(len(data)), ctypes.c_long(ring))
        if serial < 0:
            sys.exit(f"add_key to the {name} keyring failed: errno {ctypes.get_errno()}")
    print("added")
else:
    found = set()
    for name in ("user", "session"):
        full = f"{desc}-{name}".encode()
        for ring in (USER, SESSION):
            if libc.syscall(ctypes.c_long(keyctl), ctypes.c_long(SEARCH), ctypes.c_long(ring),
                            b"user", full, ctypes.c_long(0)) >= 0:
                found.add(name)
        if libc.syscall(ctypes.c_long(request_key), b"user", full, None,
                        ctypes.c_long(0)) >= 0:
            found.add(name)
    print(json.dumps(sorted(found)))
"""


class SameUid:
    """An allocator without the defence: every box gets the same uid."""

    def __init__(self, uid):
        self.uid = uid

    def allocate(self):
        return self.uid


@pytest.mark.parametrize("defences, leaked", [
    ("fresh uid + new session keyring", []),
    ("same uid (no fresh uid)", ["user"]),
    ("inherited session keyring (no new keyring)", ["session"]),
])
def test_keyring_replay_between_submissions(tmp_path, bwrap, uids, monkeypatch, defences,
                                            leaked):
    """Submission A adds a key to its user and session keyrings; B, in its own box
    afterwards, searches for both. Only with both defences does B find neither."""
    if defences.startswith("same uid"):
        uids = SameUid(uids.allocate())
    if defences.startswith("inherited"):
        monkeypatch.setattr(SubmissionBox, "_new_keyring", False)
    desc = f"cs231n-test-{uuid.uuid4().hex}"
    numbers = launch.syscall_numbers()
    args = (desc, numbers["add_key"], numbers["request_key"], numbers["keyctl"])
    outcome = {}

    def grader():
        # A grader started from a login has a session keyring of its own (pam_keyinit):
        # give this thread one, so that "inherited" means something here.
        launch.join_new_session_keyring()
        with box(tmp_path, uids) as a:
            outcome["a"] = run(a, KEYS, "add", *args)
        with box(tmp_path, uids) as b:
            outcome["b"] = run(b, KEYS, "find", *args)

    thread = threading.Thread(target=grader)
    thread.start()
    thread.join()
    assert outcome["a"].returncode == 0 and "added" in outcome["a"].stdout, outcome["a"]
    assert outcome["b"].returncode == 0, outcome["b"]
    assert json.loads(outcome["b"].stdout) == leaked, defences


# ---------------------------------------------------------------------------
# Memory, disk, files, deadline: budgets of the whole submission
# ---------------------------------------------------------------------------

FORK_HOGS = """import os, sys, time
size, kids = int(sys.argv[1]), []
for i in range(4):
    pid = os.fork()
    if pid == 0:
        block = b"x" * size  # written, so resident
        print("child", i, "holds", size >> 20, "MiB", flush=True)
        time.sleep(60)
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
print("all children done")
"""


@pytest.mark.parametrize("mechanism", ["cgroup", "polling"])
def test_memory_of_many_processes_is_one_budget(tmp_path, bwrap, uids, monkeypatch,
                                                mechanism):
    """4 children x 350 MiB, each under its own rlimit, 1.4 GiB together: the 700 MiB
    budget of the submission ends the run, and every child is gone afterwards."""
    if mechanism == "polling":
        monkeypatch.setattr(SubmissionBox, "_use_cgroups", False)
    with box(tmp_path, uids, memory_bytes=700 * MiB) as b:
        expected = {"cgroup": "memory: cgroup v",
                    "polling": "FALLBACK memory: the grader polls"}[mechanism]
        assert any(line.startswith(expected) for line in b.report), b.report
        result = run(b, FORK_HOGS, 350 * MiB)
        assert result.budget_exceeded == "memory", result
        assert not result.timed_out and result.seconds < 20, result
        assert "all children done" not in result.stdout
        assert alive(b.uid) == []  # the host has the memory back
        if mechanism == "cgroup" and b._cgroups.version == 1:
            usage = int((b._cgroups.dirs["memory"] / "memory.usage_in_bytes").read_text())
            assert usage < 100 * MiB
    assert leftovers(b.scratch.parent) == []


FORKS = """import os, signal, time
kids = []
try:
    for i in range(60):
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        kids.append(pid)
except OSError as e:
    print("stopped errno", e.errno)
for pid in kids:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
print("forked", len(kids), flush=True)
"""


def test_processes_of_the_submission_are_one_budget(tmp_path, bwrap, uids):
    with box(tmp_path, uids, processes=30) as b:
        if not any(line.startswith("processes: cgroup v") for line in b.report):
            pytest.skip(f"no pids cgroup here: {b.report}")
        result = run(b, FORKS)
        assert "stopped errno 11" in result.stdout, result  # EAGAIN
        assert int(result.stdout.split()[-1]) < 30
        assert result.budget_exceeded == "processes", result


DISK_FLOOD = """import sys
written = 0
try:
    for i in range(12):
        with open(f"/tmp/flood-{i}", "wb") as f:
            for _ in range(100):
                f.write(b"x" * 2**20)
                written += 1
except OSError as e:
    print("stopped errno", e.errno)
print("written MiB", written, flush=True)
"""


def _folder_bytes(folder):
    """Bytes of the files under folder on folder's own file system (the host's disk)."""
    device = os.stat(folder).st_dev
    stats = [os.lstat(os.path.join(d, f)) for d, _, files in os.walk(folder) for f in files]
    return sum(s.st_blocks * 512 for s in stats if s.st_dev == device)


@pytest.mark.parametrize("mechanism", ["tmpfs", "polling"])
def test_disk_flood_stays_off_the_host_disk(tmp_path, bwrap, uids, monkeypatch, mechanism):
    """12 files of 100 MiB under a 300 MiB disk budget: refused (tmpfs) or killed
    (polling); nothing is left on the host's disk after the box."""
    if mechanism == "polling":
        monkeypatch.setattr(SubmissionBox, "_use_tmpfs", False)
    with box(tmp_path, uids, disk_bytes=300 * MiB) as b:
        work = b.scratch.parent
        assert os.path.ismount(b.scratch) == (mechanism == "tmpfs")
        result = run(b, DISK_FLOOD)
        assert result.budget_exceeded == "disk", result
        if mechanism == "tmpfs":
            assert "stopped errno 28" in result.stdout, result  # ENOSPC
            assert int(result.stdout.split()[-1]) <= 300
            assert _folder_bytes(work) < MiB  # the tmpfs is not on the work dir's disk
        else:
            assert result.signal == 9 and "written MiB 1200" not in result.stdout, result
    assert not b.scratch.exists() and _folder_bytes(work) < MiB
    assert leftovers(work) == []


MANY_FILES = """import os
os.mkdir("/tmp/many")
made = 0
try:
    for i in range(100_000):
        open(f"/tmp/many/{i}", "w").close()
        made += 1
except OSError as e:
    print("stopped errno", e.errno)
print("made", made, flush=True)
"""


@pytest.mark.parametrize("mechanism", ["tmpfs", "polling"])
def test_file_count_stops_at_the_budget(tmp_path, bwrap, uids, monkeypatch, mechanism):
    if mechanism == "polling":
        monkeypatch.setattr(SubmissionBox, "_use_tmpfs", False)
    # The polled folder is on the host's disk, where creating files can be slow.
    budget = 3000 if mechanism == "tmpfs" else 1000
    with box(tmp_path, uids, files=budget) as b:
        result = run(b, MANY_FILES)
        assert result.budget_exceeded == "files", result
        if mechanism == "tmpfs":
            assert "stopped errno 28" in result.stdout
            assert int(result.stdout.split()[-1]) < budget, result
        else:
            assert result.signal == 9 and "made 100000" not in result.stdout, result
    assert leftovers(b.scratch.parent) == []


def test_two_runs_share_one_deadline(tmp_path, bwrap, uids):
    start = time.monotonic()
    with box(tmp_path, uids, deadline_seconds=3) as b:
        first = run(b, "import time; time.sleep(0.5); print('first done')")
        assert first.returncode == 0 and first.budget_exceeded is None, first
        second = run(b, "import time; time.sleep(60)", wall=60)
        assert second.timed_out and second.budget_exceeded == "deadline", second
        assert time.monotonic() - start < 5  # killed at the deadline, not at its wall
        assert alive(b.uid) == []
        third = run(b, "print('never')")
        assert third.budget_exceeded == "deadline" and "never" not in third.stdout
        assert b.remaining() == 0


def test_leftovers_are_killed_and_removed_on_exceptions(tmp_path, uids):
    """A daemon that escaped its command's session (kind 'none': no PID namespace) is
    killed when the box closes on an exception; mounts and cgroups go too."""
    if not ROOT:
        pytest.skip("the box's cgroups and tmpfs need root")
    daemon = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n"
              "    print(os.getpid(), flush=True)\n    time.sleep(120)\n")
    work = None
    with pytest.raises(RuntimeError, match="grader bug"):
        with box(tmp_path, uids, kind="none") as b:
            work = b.scratch.parent
            result = run(b, daemon)
            pid = int(result.stdout.split()[0])
            os.kill(pid, 0)  # still running after its command ended
            raise RuntimeError("grader bug")
    assert pid not in isolation._processes()  # dead (at most a zombie of init's)
    assert leftovers(work) == [] and not b.scratch.exists()


def test_nothing_runs_when_the_launcher_cannot_isolate(tmp_path, bwrap, uids, monkeypatch):
    """A command never runs with half of its isolation: a cgroup the launcher cannot join
    stops it before the payload starts, with a clear error."""
    with box(tmp_path, uids) as b:
        if b._cgroups is None or not b._cgroups.dirs:
            pytest.skip(f"no cgroup here: {b.report}")
        monkeypatch.setattr(b._cgroups, "procs_files", lambda: [tmp_path / "gone" / "procs"])
        with pytest.raises(RuntimeError, match="nothing was run: launch: .*gone/procs"):
            run(b, "open('/tmp/ran', 'w').close()")
        assert list(b.scratch.iterdir()) == []


# ---------------------------------------------------------------------------
# uids
# ---------------------------------------------------------------------------


def test_uids_are_never_reused(tmp_path, bwrap, uids):
    seen = []
    for _ in range(3):
        with box(tmp_path, uids) as b:
            seen.append(b.uid)
            assert run(b, "import os; print(os.getuid())").stdout.strip() == str(b.uid)
    assert seen == sorted(set(seen)) and min(seen) >= isolation.UID_FIRST


def test_two_allocators_on_one_state_file_never_collide(tmp_path):
    state = tmp_path / "shared" / "uids"
    got = []

    def take(n):
        mine = UidAllocator(state)  # its own open file: flock excludes the other
        got.extend(mine.allocate() for _ in range(n))

    threads = [threading.Thread(target=take, args=(25,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 50 and len(set(got)) == 50
    # A later grader run continues above everything handed out.
    assert UidAllocator(state).allocate() > max(got)


def test_allocator_never_returns_root_or_a_busy_uid(tmp_path):
    state = tmp_path / "uids"
    with pytest.raises(ValueError, match="above 0"):
        UidAllocator(state, first=0)
    state.write_text("-7\n")  # a counter below the range restarts at its first uid
    assert UidAllocator(state).allocate() == isolation.UID_FIRST
    if not ROOT:
        pytest.skip("starting a process as another uid needs root")
    state.write_text("250000\n")
    sleeper = subprocess.Popen(["/usr/bin/setpriv", "--reuid=250001", "--regid=250001",
                                "--clear-groups", "sleep", "30"])
    try:
        time.sleep(0.1)
        assert UidAllocator(state).allocate() == 250002
    finally:
        sleeper.kill()
        sleeper.wait()


# ---------------------------------------------------------------------------
# The project's packages are not importable inside
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A non-editable install of this project (`pip install --target`), as a grader
    installed with `pip install ".[instructor]"` would have it in site-packages."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(PROJECT / name, src / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "tests", "artifacts")
    for name in ("cs231n", "student_tools", "instructor_tools"):
        shutil.copytree(PROJECT / name, src / name, ignore=skip)
    target = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                           "--no-build-isolation", "--quiet", "--target", str(target), str(src)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    target.chmod(0o755)  # readable by any uid, as a real site-packages is
    assert (target / "instructor_tools" / "grade" / "hidden" / "tests.py").is_file()
    return target


def test_preflight_finds_no_project_package_inside(bwrap):
    assert preflight("bwrap") == []


def test_installed_hidden_tests_are_masked(bwrap, installed):
    assert preflight("bwrap", extra_roots=[installed]) == []
    unmasked = preflight("bwrap", extra_roots=[installed], mask=False)
    assert any(p.startswith("instructor_tools.grade.hidden is importable inside the sandbox "
                            f"(from {installed}") for p in unmasked), unmasked
