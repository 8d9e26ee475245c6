"""Bounded reads of the bytes a sandboxed submission could have written.

The grader runs outside the sandbox, where a named pipe left as a result file blocks open()
forever, a symlink redirects it and a 6 MB .npz inflates to 6 GB in np.load. Each function here
bounds its time (no blocking open, no loop without a limit) and memory (sizes checked before
anything is read or allocated); a refusal is an `Unreadable` carrying the reason."""
import errno
import io
import json
import math
import os
import stat
import zipfile

import numpy as np
from numpy.lib import format as npy_format

_KINDS = {stat.S_IFIFO: "a named pipe", stat.S_IFDIR: "a directory", stat.S_IFSOCK: "a socket",
          stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}
_OPEN_ERRORS = {errno.ELOOP: "is a symbolic link (not followed)", errno.ENOENT: "does not exist",
                errno.ENXIO: "is a socket or a device without a reader"}
_NUMERIC = "biufc"         # bool, int, uint, float, complex: nothing that can hold a pickle
_MAX_NPY_HEADER = 10_000   # numpy's own limit on the literal_eval'd .npy header
_CHUNK = 1 << 20


class Unreadable(ValueError):
    """Untrusted bytes refused; str() is the reason in plain words."""


def read_regular(path, max_bytes):
    """At most max_bytes of a regular file, without blocking or following a final symlink.

    O_NONBLOCK makes opening a FIFO return at once and O_NOFOLLOW refuses a symlink; fstat on
    the opened descriptor (not the path, which could be swapped) must say S_ISREG with a size
    within max_bytes; the read stops at max_bytes + 1, so a file that grows after the fstat
    cannot make the grader read more."""
    name = os.path.basename(os.fsdecode(path)) or os.fsdecode(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
                     | os.O_NOCTTY)
    except OSError as err:
        why = _OPEN_ERRORS.get(err.errno, f"cannot be opened ({err.strerror})")
        raise Unreadable(f"{name} {why}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _KINDS.get(stat.S_IFMT(info.st_mode), "something else")
            raise Unreadable(f"{name} is {kind}, not a regular file")
        if info.st_size > max_bytes:
            raise Unreadable(f"{name} is {info.st_size} bytes, over the limit of {max_bytes}")
        chunks, total = [], 0
        while total <= max_bytes:
            chunk = os.read(fd, min(_CHUNK, max_bytes + 1 - total))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            total += len(chunk)
        raise Unreadable(f"{name} grew past the limit of {max_bytes} bytes while being read")
    finally:
        os.close(fd)


def npz_arrays(data, *, max_members=1000, max_array_bytes=64 * 2**20,
               max_total_bytes=256 * 2**20):
    """{key: array} of an .npz given as bytes, nothing allocated before it is known to fit.

    Checked in order: central-directory signatures (bounding the ZipInfos zipfile builds, ~8x
    their bytes); member count, `<key>.npy` names, duplicates, declared sizes; each member's
    .npy header alone (numeric dtype, prod(shape) * itemsize within the limits, header + data
    equal to the declared size). Only then the data: exactly those bytes, in chunks into one
    buffer. No np.load, and no pickle can run (object dtypes stop at the header)."""
    if data.count(b"PK\x01\x02") > 4 * max_members:  # slack: array data may hold the bytes
        raise Unreadable(f".npz has more than {4 * max_members} zip entries")
    try:
        return _npz_arrays(zipfile.ZipFile(io.BytesIO(data)), max_members, max_array_bytes,
                           max_total_bytes)
    except (Unreadable, MemoryError):
        raise
    except Exception as err:  # zipfile, zlib and .npy header errors: forged or truncated
        raise Unreadable(f"not a valid .npz ({type(err).__name__}: {err})") from None


def _npz_arrays(archive, max_members, max_array_bytes, max_total_bytes):
    infos = archive.infolist()
    names = [info.filename for info in infos]
    if len(infos) > max_members:
        raise Unreadable(f".npz has {len(infos)} members, over the limit of {max_members}")
    if len(set(names)) != len(names):
        raise Unreadable(".npz has duplicate member names")
    declared = 0
    for info in infos:
        declared += info.file_size
        if not info.filename.endswith(".npy") or len(info.filename) == 4:
            raise Unreadable(f"member {info.filename!r} is not named <key>.npy")
        if info.flag_bits & 1 or info.compress_type not in (zipfile.ZIP_STORED,
                                                            zipfile.ZIP_DEFLATED):
            raise Unreadable(f"member {info.filename!r} is encrypted or oddly compressed")
        if info.file_size > max_array_bytes + _MAX_NPY_HEADER or \
                declared > max_total_bytes + len(infos) * _MAX_NPY_HEADER:
            raise Unreadable(f"member {info.filename!r} declares {info.file_size} bytes "
                             "uncompressed, over the limit")
    plans, total = [], 0
    for info in infos:
        with archive.open(info) as member:
            version = npy_format.read_magic(member)
            if version not in ((1, 0), (2, 0)):  # 3.0 is only for utf-8 field names
                raise Unreadable(f"member {info.filename!r}: .npy version {version}")
            read_header = npy_format.read_array_header_1_0 if version == (1, 0) \
                else npy_format.read_array_header_2_0
            shape, fortran, dtype = read_header(member, _MAX_NPY_HEADER)
            header_len = member.tell()
        what = f"member {info.filename!r} ({dtype.str} {shape})"
        if dtype.kind not in _NUMERIC or dtype.fields or dtype.subdtype or dtype.hasobject \
                or any(n < 0 for n in shape):
            raise Unreadable(f"{what} has a non-numeric dtype or a negative dimension")
        nbytes = math.prod(shape) * dtype.itemsize
        total += nbytes
        if nbytes > max_array_bytes or total > max_total_bytes:
            raise Unreadable(f"{what} needs {nbytes} bytes, over the limit of "
                             f"{max_array_bytes} per array / {max_total_bytes} in all")
        if info.file_size != header_len + nbytes:
            raise Unreadable(f"{what}: the zip declares {info.file_size} bytes, the header "
                             f"{header_len} + {nbytes}")
        plans.append((info, shape, fortran, dtype, header_len, nbytes))
    arrays = {}
    for info, shape, fortran, dtype, header_len, nbytes in plans:
        buffer, done = bytearray(nbytes), 0
        with archive.open(info) as member:
            member.read(header_len)
            while done < nbytes:
                chunk = member.read(min(_CHUNK, nbytes - done))
                if not chunk:
                    raise Unreadable(f"member {info.filename!r} is truncated")
                buffer[done:done + len(chunk)] = chunk
                done += len(chunk)
            member.read(1)  # at the declared end: zipfile checks the CRC here
        array = np.frombuffer(buffer, dtype=dtype)
        arrays[info.filename[:-4]] = array.reshape(shape, order="F" if fortran else "C")
    return arrays


def encode_record(record, arrays=None):
    """One channel record: a line of JSON, then the .npz of arrays (if given), its length in
    the record's "npz_bytes"."""
    blob = b""
    if arrays is not None:
        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=False, **arrays)
        blob = buffer.getvalue()
        record = {**record, "npz_bytes": len(blob)}
    return json.dumps(record).encode() + b"\n" + blob


def read_channel(data, *, max_records=10_000, max_line_bytes=1 * 2**20, **npz_limits):
    """([(record, arrays or None)], [problems]) of a channel the untrusted worker wrote.

    Never raises on hostile bytes: at most max_records records, a newline looked for only
    max_line_bytes far, npz_bytes checked against the bytes left, each .npz via npz_arrays.
    A framing error (bad line, bad or too large npz_bytes) is a problem that ends the reading
    (earlier records kept); a refused .npz is a problem, its record kept with arrays None."""
    records, problems, pos = [], [], 0
    while pos < len(data):
        where = f"record {len(records) + 1}"
        if len(records) >= max_records:
            problems.append(f"more than {max_records} records; the rest was not read")
            break
        end = data.find(b"\n", pos, pos + max_line_bytes + 1)
        if end < 0:
            problems.append(f"{where}: line longer than {max_line_bytes} bytes"
                            if len(data) - pos > max_line_bytes else f"{where}: truncated line")
            break
        try:
            record = json.loads(data[pos:end].decode("utf-8"))
        except (ValueError, RecursionError) as err:
            problems.append(f"{where}: not a line of JSON ({str(err)[:200]})")
            break
        if not isinstance(record, dict):
            problems.append(f"{where}: not a JSON object")
            break
        pos, arrays, size = end + 1, None, record.get("npz_bytes", 0)
        if type(size) is not int or size < 0:
            shown = size if isinstance(size, int) else type(size).__name__
            problems.append(f"{where}: npz_bytes is {shown}, not an integer >= 0")
            break
        if size > len(data) - pos:
            problems.append(f"{where}: truncated npz ({size} bytes announced, "
                            f"{len(data) - pos} left)")
            break
        if "npz_bytes" in record:
            try:
                arrays = npz_arrays(data[pos:pos + size], **npz_limits)
            except Unreadable as err:
                problems.append(f"{where}: npz refused: {err}")
            pos += size
        records.append((record, arrays))
    return records, problems


def read_channel_fd(fd, max_bytes):
    """At most max_bytes from the start of fd, whatever its offset (os.pread)."""
    chunks, offset = [], 0
    while offset < max_bytes and (chunk := os.pread(fd, min(_CHUNK, max_bytes - offset),
                                                    offset)):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def read_notebook(path, *, max_bytes=20 * 2**20, max_cells=2000):
    """An nbformat 4 notebook from a regular file of at most max_bytes, its cells (at most
    max_cells) counted on the plain JSON before nbformat's slow validation sees them."""
    name = os.path.basename(os.fsdecode(path))
    data = read_regular(path, max_bytes)
    try:
        raw = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as err:
        raise Unreadable(f"{name} is not JSON ({str(err)[:200]})") from None
    if not isinstance(raw, dict) or raw.get("nbformat") != 4 or \
            not isinstance(raw.get("cells"), list):
        raise Unreadable(f"{name} is not a notebook of nbformat 4 (a JSON object with cells)")
    if len(raw["cells"]) > max_cells:
        raise Unreadable(f"{name} has {len(raw['cells'])} cells, over the limit of {max_cells}")
    import nbformat  # imported here: it takes seconds (jsonschema), and only this needs it

    invalid = {}  # nbformat.reads only logs a ValidationError; it lands here
    try:
        notebook = nbformat.reads(data.decode("utf-8"), 4, capture_validation_error=invalid)
    except Exception as err:  # anything else a forged notebook makes nbformat raise
        invalid["ValidationError"] = err
    if invalid:
        error = invalid["ValidationError"]
        raise Unreadable(f"{name} is not a valid notebook "
                         f"({str(getattr(error, 'message', error))[:200]})")
    return notebook
