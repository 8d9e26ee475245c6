"""What ships: the files committed at HEAD that are on the allow-list, read with git.

The allow-list is SHIPPED_PATHSPECS, git pathspecs matched by git itself against the
commit's tree (git diff-tree), the work tree's status and untracked files; on top, a second
lock (_never_shipped: instructor_tools/, .ci/, requirements-ci.txt, archives, PDFs, pickles,
data, caches). The release's README.md is STUDENT_README.
"""
import os
import subprocess
from pathlib import Path

from .errors import ReleaseError

# What a release may hold: committed files matching one of these (git's glob magic: ``**/``
# is any number of directories, ``*`` anything but '/'). Everything else stays home.
SHIPPED_PATHSPECS = tuple(":(top,glob)" + p for p in (
    "cs231n/**/*.py",              # the student's package
    "student_tools/**/*.py",       # data installer, submission packer, markers
    "tests/**/*.py",               # tests of the student's own pieces
    "tests/nbval_sanitize.cfg",
    "BatchNormalization.ipynb",
    "Dropout.ipynb",
    "cs231n.jupyterlab-workspace",  # make lab opens both notebooks from it
    "datasets/get_datasets.sh",
    "Makefile",
    "pyproject.toml",
    "requirements.txt",
    "collectSubmission.sh",
    ".gitignore",
))
# Never shipped, whatever SHIPPED_PATHSPECS says (a second lock, should the list grow).
NEVER_SHIPPED_DIRS = ("instructor_tools/", ".ci/", ".git/", "release/", "datasets/cifar-10")
NEVER_SHIPPED_NAMES = ("requirements-ci.txt", "README.md")
NEVER_SHIPPED_SUFFIXES = (
    ".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".pdf", ".pkl", ".pickle",
    ".npy", ".npz", ".h5", ".pt", ".pth", ".pyc",
)
# Committed, written for students; shipped as the release's README.md.
STUDENT_README = "instructor_tools/release_README.md"


def _never_shipped(rel):
    """The second lock: whether POSIX path ``rel`` must never ship, listed or not."""
    parts = rel.split("/")
    return (rel.startswith(NEVER_SHIPPED_DIRS) or parts[-1] in NEVER_SHIPPED_NAMES
            or rel.lower().endswith(NEVER_SHIPPED_SUFFIXES)
            # caches and editor/Jupyter folders (.ipynb_checkpoints/...), even if committed
            or any(p == "__pycache__" or p.endswith(".egg-info") or p.startswith(".")
                   for p in parts[:-1]))


# Set by git hooks and some tools: they would point git at another repository or index
# than the one in --root.
_GIT_REDIRECTS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
                  "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE")


def _run_git(root, *args, stdin=None, text=False):
    """The finished ``git -C root ARGS`` (a CompletedProcess); ReleaseError without git."""
    env = {k: v for k, v in os.environ.items() if k not in _GIT_REDIRECTS}
    try:
        return subprocess.run(["git", "-C", str(root), *args], input=stdin, text=text,
                              capture_output=True, check=False, env=env)
    except OSError as exc:
        raise ReleaseError([f"cannot run git ({exc}); the release is built from a git "
                            f"checkout, so git must be installed"]) from None


def _git(root, *args, stdin=None):
    """stdout (bytes) of ``git -C root ARGS``; ReleaseError naming the command if it fails."""
    done = _run_git(root, *args, stdin=stdin)
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()
        raise ReleaseError([f"git {' '.join(args)} failed in {root}: {message}"])
    return done.stdout


def _paths(raw):
    """NUL-separated paths from git's -z output."""
    return [p.decode("utf-8", "surrogateescape") for p in raw.split(b"\0") if p]


def _ignored_files(root):
    """Tracked paths that .gitignore (or another exclude file) matches."""
    return set(_paths(_git(root, "ls-files", "-z", "-c", "-i", "--exclude-standard")))


def _check_git_top(root):
    """Refuse unless root is the top of a git work tree with at least one commit."""
    done = _run_git(root, "rev-parse", "--show-toplevel", text=True)
    if done.returncode != 0:
        said = done.stderr.strip()
        said = "" if "not a git repository" in said else f" (git: {said})"
        raise ReleaseError([
            f"--root {root}: not a git checkout{said}. The release is built from committed "
            f"files only, so that nothing stray (a solved submission zip, a PDF, data) can "
            f"ship; run it in a clone of the project"
        ])
    top = Path(done.stdout.strip()).resolve()
    if top != root:
        raise ReleaseError([
            f"--root {root}: not the top of its git work tree ({top}); the project must be "
            f"a repository of its own"
        ])
    head = _run_git(root, "rev-parse", "--verify", "-q", "HEAD^{commit}", text=True)
    if head.returncode != 0:
        raise ReleaseError([f"--root {root}: no commit yet; the release is built from HEAD"])
    return head.stdout.strip()


def shipped_files(root, commit):
    """{path: (mode, object id)} of the commit's files on the allow-list (a diff against
    the empty tree: ls-tree knows no glob pathspecs)."""
    empty_tree = _git(root, "hash-object", "-t", "tree", "--stdin", stdin=b"").decode().strip()
    raw = _git(root, "diff-tree", "-r", "-z", "--no-renames", empty_tree, commit, "--",
               *SHIPPED_PATHSPECS).split(b"\0")
    files = {}
    for meta, path in zip(raw[0::2], raw[1::2]):  # ":000000 MODE 000... SHA A", path
        _, mode, _, sha, _ = meta.decode("ascii").split()
        rel = path.decode("utf-8", "surrogateescape")
        if not _never_shipped(rel):
            files[rel] = (mode, sha)
    return files


def _object_id(root, commit, rel):
    """The object id of path rel in commit, or None where the commit lacks it."""
    done = _run_git(root, "rev-parse", "--verify", "-q", f"{commit}:{rel}", text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def _read_blobs(root, shas):
    """{object id: bytes}, read with one ``git cat-file --batch``."""
    shas = sorted(set(shas))
    if not shas:
        return {}
    out = _git(root, "cat-file", "--batch", stdin="".join(s + "\n" for s in shas).encode())
    blobs, pos = {}, 0
    for sha in shas:
        header_end = out.index(b"\n", pos)
        _, _, size = out[pos:header_end].decode("ascii").split()
        start = header_end + 1
        blobs[sha] = out[start : start + int(size)]
        pos = start + int(size) + 1  # cat-file ends each object with a newline
    return blobs


_STATUS_WORDS = {"M": "modified", "A": "added", "D": "deleted", "R": "renamed",
                 "C": "copied", "T": "type changed", "U": "unmerged"}


def _describe_status(xy):
    x, y = xy[0], xy[1]
    said = []
    if x not in " ?":
        said.append(f"{_STATUS_WORDS.get(x, x)}, staged")
    if y not in " ?":
        said.append(f"{_STATUS_WORDS.get(y, y)}, not staged")
    return "; ".join(said)


def _work_tree_status(root):
    """({path: XY status} of shipped paths and STUDENT_README changed against HEAD,
    [untracked paths that would ship])."""
    # --no-optional-locks: a read-only look that never takes the index lock of a checkout
    # others may be committing in.
    out = _git(root, "--no-optional-locks", "status", "--porcelain=v1", "-z",
               "--untracked-files=all", "--", *SHIPPED_PATHSPECS, STUDENT_README)
    entries = out.split(b"\0")
    changed, untracked, i = {}, [], 0
    while i < len(entries):
        entry, i = entries[i], i + 1
        if not entry:
            continue
        xy, path = entry[:2].decode("ascii"), entry[3:].decode("utf-8", "surrogateescape")
        if xy == "??":
            if path != STUDENT_README and not _never_shipped(path):
                untracked.append(path)
            continue
        changed[path] = xy
        if "R" in xy or "C" in xy:  # -z: the source path follows as its own entry
            changed[entries[i].decode("utf-8", "surrogateescape")] = xy
            i += 1
    return changed, untracked
