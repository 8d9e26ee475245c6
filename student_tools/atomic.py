"""One way to write a file so that a reader never sees it half-written.

The data goes to a temporary file in the same folder, which is then renamed over the
target (``os.replace`` is atomic on one file system). On any failure the temporary file is
removed and the target is left as it was.
"""
import os
import tempfile
from pathlib import Path


def write_atomic(path, data, mode=0o644):
    """Write data (bytes, or str as UTF-8) to path; the folder is made if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
