"""pytest plugin loaded into the sandboxed nbval run (``-p nbval_guard``), never elsewhere.

It makes the pytest process non-dumpable (prctl PR_SET_DUMPABLE = 0). The notebook's kernel
runs the student's code as the same uid; without this it could open
/proc/<pytest>/fd/<report> or attach to pytest and rewrite the junit report that says which
cells reproduce. Non-dumpable, pytest's /proc entries and memory are closed to processes
without CAP_SYS_PTRACE, and the report's file descriptor (passed by the grader, not
inherited by the kernel: jupyter_client starts it with close_fds) stays out of reach.
"""
import ctypes

PR_SET_DUMPABLE = 4

_libc = ctypes.CDLL(None, use_errno=True)
if _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
    raise OSError(ctypes.get_errno(), "nbval_guard: prctl(PR_SET_DUMPABLE, 0) failed")
