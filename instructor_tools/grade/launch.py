"""The first program of every command of a submission: sets up, then execs the command.

Runs with the grader's privileges (root), before prlimit, bubblewrap and the uid drop,
so every later process, the untrusted code included, starts already inside the
submission's cgroups, with a new empty session keyring and (optionally) its own IPC
namespace. Started as ``python -I -S launch.py`` and imports nothing of the project.

    launch.py --status FD [--cgroup PROCS_FILE]... [--keyring] [--ipc] -- ARGV...

Failures are written to FD (a pipe the grader reads until it closes) and the program exits
with 125 without running ARGV: a command never runs with half of its isolation. On
success FD is closed by the exec (close-on-exec), so the untrusted code never holds it.
"""
import ctypes
import os
import platform
import sys

# keyctl(2), add_key(2), request_key(2) syscall numbers (no libkeyutils here).
SYSCALLS = {"x86_64": {"add_key": 248, "request_key": 249, "keyctl": 250},
            "aarch64": {"add_key": 217, "request_key": 218, "keyctl": 219}}
KEYCTL_JOIN_SESSION_KEYRING = 1
CLONE_NEWIPC = 0x08000000


def syscall_numbers():
    """The keyring syscall numbers of this machine's architecture."""
    try:
        return SYSCALLS[platform.machine()]
    except KeyError:
        raise OSError(f"keyring syscalls unknown on {platform.machine()}") from None


def join_new_session_keyring():
    """Replace this process's session keyring with a new, empty, anonymous one."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    serial = libc.syscall(ctypes.c_long(syscall_numbers()["keyctl"]),
                          ctypes.c_long(KEYCTL_JOIN_SESSION_KEYRING), ctypes.c_void_p(None))
    if serial < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"keyctl(JOIN_SESSION_KEYRING): {os.strerror(err)}")
    return serial


def unshare_ipc():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWIPC) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_NEWIPC): {os.strerror(err)}")


def main(args):
    status, procs, keyring, ipc = None, [], False, False
    while args and args[0] != "--":
        flag = args.pop(0)
        if flag == "--status":
            status = int(args.pop(0))
        elif flag == "--cgroup":
            procs.append(args.pop(0))
        elif flag == "--keyring":
            keyring = True
        elif flag == "--ipc":
            ipc = True
        else:
            raise SystemExit(f"launch.py: unknown option {flag!r}")
    argv = args[1:]
    try:
        if status is not None:
            os.set_inheritable(status, False)
        if not argv:
            raise OSError("no command given")
        for path in procs:
            # Writing our own pid moves this process; its descendants are born inside.
            with open(path, "w", encoding="ascii") as handle:
                handle.write(str(os.getpid()))
        if keyring:
            join_new_session_keyring()
        if ipc:
            unshare_ipc()
        os.execvp(argv[0], argv)
    except OSError as exc:
        message = f"launch: {exc}".encode("utf-8", "replace")
        if status is not None:
            os.write(status, message)
        else:
            os.write(2, message + b"\n")
        os._exit(125)


if __name__ == "__main__":
    main(sys.argv[1:])
