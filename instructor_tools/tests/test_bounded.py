"""The grader's own reads of untrusted bytes are bounded (instructor_tools/grade/bounded.py).

Each test carries its own hostile payload, the kind the sandboxed submission could leave for
the grader: a named pipe, a symlink, a growing file, an .npz bomb, a pickled array, a forged
result channel, an oversized notebook. Each one fails when its defence is replaced by the
naive call (plain open(), np.load, an unchecked loop).
"""
import io
import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import zipfile
import zlib
from pathlib import Path

import nbformat
import numpy as np
import pytest
from numpy.lib import format as npy_format

from instructor_tools.grade.bounded import (
    Unreadable,
    encode_record,
    npz_arrays,
    read_channel,
    read_channel_fd,
    read_notebook,
    read_regular,
)

PROJECT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- read_regular

def test_regular_file_within_the_limit_is_read(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"x" * 1000)
    assert read_regular(path, 1000) == b"x" * 1000


def test_named_pipe_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "result.npz"
    os.mkfifo(fifo)
    outcome = {}

    def call():
        try:
            outcome["value"] = read_regular(fifo, 1000)
        except Exception as err:  # noqa: BLE001 - the test inspects it
            outcome["error"] = err

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(2)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # let the blocked reader go
        thread.join(2)
        pytest.fail("read_regular blocked on a named pipe")
    assert isinstance(outcome.get("error"), Unreadable), outcome
    assert "result.npz is a named pipe, not a regular file" in str(outcome["error"])


def test_symlink_is_not_followed(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"the instructor's key")
    link = tmp_path / "result.npz"
    link.symlink_to(secret)
    with pytest.raises(Unreadable, match="symbolic link"):
        read_regular(link, 1000)


def test_directory_device_and_socket_are_refused(tmp_path):
    with pytest.raises(Unreadable, match="directory"):
        read_regular(tmp_path, 1000)
    with pytest.raises(Unreadable, match="character device"):
        read_regular("/dev/zero", 1000)
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(tmp_path / "sock"))
        with pytest.raises(Unreadable, match="socket"):
            read_regular(tmp_path / "sock", 1000)
    finally:
        server.close()


def _count_reads(monkeypatch):
    real_read, sizes = os.read, []

    def counting_read(fd, n):
        chunk = real_read(fd, n)
        sizes.append(len(chunk))
        return chunk

    monkeypatch.setattr(os, "read", counting_read)
    return sizes


def test_oversize_file_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "result.npz"
    with open(path, "wb") as handle:
        handle.truncate(6 << 30)  # sparse: 6 GB declared, no disk used
    sizes = _count_reads(monkeypatch)
    with pytest.raises(Unreadable, match="over the limit of 1000"):
        read_regular(path, 1000)
    assert sizes == []


def test_file_that_grows_after_fstat_is_cut_at_max_bytes_plus_one(tmp_path, monkeypatch):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"x" * 100)
    real_fstat = os.fstat

    def fstat_then_grow(fd):  # the sandbox appends right after the size was checked
        info = real_fstat(fd)
        with open(path, "ab") as handle:
            handle.write(b"y" * (8 << 20))
        return info

    monkeypatch.setattr(os, "fstat", fstat_then_grow)
    sizes = _count_reads(monkeypatch)
    with pytest.raises(Unreadable, match="grew past"):
        read_regular(path, 1000)
    assert sum(sizes) == 1001


# ---------------------------------------------------------------- npz_arrays

def _npy_header(descr, shape):
    handle = io.BytesIO()
    npy_format.write_array_header_1_0(
        handle, {"descr": descr, "fortran_order": False, "shape": shape})
    return handle.getvalue()


def _zip_one_member(name, deflated, crc, compressed_size, size):
    """A zip with one deflated member written byte by byte (zipfile cannot take raw deflate)."""
    name = name.encode()
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc,
                        compressed_size, size, len(name), 0) + name
    central = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc,
                          compressed_size, size, len(name), 0, 0, 0, 0, 0, 0) + name
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central),
                      len(local) + compressed_size, 0)
    return local + deflated + central + end


def _deflate_bomb(gib=1):
    """A real .npz: one float64 array of `gib` GiB of zeros, deflated to about 1 MB.

    After a full flush deflate forgets its history, so every 1 MiB of zeros compresses to the
    same bytes: compress it once and repeat it."""
    header = _npy_header("<f8", ((gib << 30) // 8,))
    zeros = bytes(1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = deflate.compress(header) + deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    assert deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH) == block
    stream = start + block * (gib << 10) + deflate.flush()
    crc = zlib.crc32(header)
    for _ in range(gib << 10):
        crc = zlib.crc32(zeros, crc)
    size = len(header) + (gib << 30)
    return _zip_one_member("result.npy", stream, crc, len(stream), size)


def _forged_header_npz():
    """A 6 GB array announced by its .npy header, 1 KB of data behind it."""
    handle = io.BytesIO()
    with zipfile.ZipFile(handle, "w") as archive:
        archive.writestr("result.npy", _npy_header("<f8", ((6 << 30) // 8,)) + bytes(1024))
    return handle.getvalue()


_UNDER_RLIMIT = r"""
import io, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
import numpy as np
from instructor_tools.grade.bounded import Unreadable, npz_arrays
data = open(sys.argv[2], "rb").read()
try:
    if sys.argv[1] == "naive":
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    else:
        arrays = npz_arrays(data)
    print("LOADED", sum(a.nbytes for a in arrays.values()))
except Unreadable as err:
    print("UNREADABLE", err)
except MemoryError as err:
    print("MEMORYERROR", err)
# VmHWM is this process's own peak: ru_maxrss would also carry the peak of the process
# that forked it (the kernel keeps it across exec), here a large pytest.
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print("MAXRSS_KB", int(hwm.split()[1]))
"""


def _run_under_rlimit(how, path):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", _UNDER_RLIMIT, how, str(path)], cwd=PROJECT,
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("build", [_deflate_bomb, _forged_header_npz], ids=["1GiB-deflate-bomb",
                                                                            "6GB-forged-header"])
def test_npz_bomb_is_refused_without_allocating(tmp_path, build):
    payload = build()
    assert len(payload) < 2 << 20
    path = tmp_path / "result.npz"
    path.write_bytes(payload)
    guarded = _run_under_rlimit("bounded", path)
    assert guarded.returncode == 0, guarded.stderr[-2000:]
    first, rss = guarded.stdout.splitlines()
    assert first.startswith("UNREADABLE") and "over the limit" in first, guarded.stdout
    assert int(rss.split()[1]) < 400 << 10  # KiB: nothing near the array's size was touched
    naive = _run_under_rlimit("naive", path)  # the payload is a real bomb under this limit
    assert naive.returncode != 0 or naive.stdout.startswith("MEMORYERROR"), naive.stdout


class _Plant:
    """Unpickling this creates a file: proof that a pickle ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickled_object_member_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "unpickled"
    handle = io.BytesIO()
    np.savez(handle, result=np.array([_Plant(str(marker))], dtype=object))
    with pytest.raises(Unreadable, match="non-numeric"):
        npz_arrays(handle.getvalue())
    assert not marker.exists()
    with np.load(io.BytesIO(handle.getvalue()), allow_pickle=True) as npz:
        npz["result"]  # the payload is live: a pickling load runs it
    assert marker.exists()


@pytest.mark.parametrize("dtype", ["U5", "S3", "M8[s]", [("a", "<i4"), ("b", "<f8")]],
                         ids=["unicode", "bytes", "datetime", "structured"])
def test_non_numeric_dtypes_are_refused(dtype):
    handle = io.BytesIO()
    np.savez(handle, result=np.zeros(3, dtype=dtype))
    with pytest.raises(Unreadable, match="non-numeric"):
        npz_arrays(handle.getvalue())


def _zip(members):
    handle = io.BytesIO()
    with zipfile.ZipFile(handle, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
    return handle.getvalue()


_SMALL = _npy_header("<f8", (10,)) + bytes(80)


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize("members, limits, reason", [
    ([(f"a{i}.npy", _SMALL) for i in range(4)], {"max_members": 3}, "4 members"),
    ([("a.npy", _SMALL), ("a.npy", _SMALL)], {}, "duplicate"),
    ([("a.txt", _SMALL)], {}, "<key>.npy"),
    ([("a.npy", _npy_header("<f8", (10,)) + bytes(160))], {}, "the zip declares"),
    ([("a.npy", _npy_header("<f8", (20,)) + bytes(80))], {}, "the zip declares"),
    ([("a.npy", _SMALL), ("b.npy", _SMALL)], {"max_total_bytes": 100}, "over the limit"),
], ids=["too-many-members", "duplicate-names", "not-npy", "data-longer-than-header",
        "data-shorter-than-header", "total-over-limit"])
def test_zip_directory_and_header_are_checked(members, limits, reason):
    with pytest.raises(Unreadable, match=reason):
        npz_arrays(_zip(members), **limits)


def test_central_directory_flood_is_refused_before_zipfile_parses_it(monkeypatch):
    """5000 central-directory entries of 51 bytes: zipfile would build a ZipInfo for each
    (about 8x their size in memory) before any member count could be checked."""
    name = b"a.npy"
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0x21, 0, 0, 0, 5, 0) + name
    entry = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0x21, 0, 0, 0, 5, 0,
                        0, 0, 0, 0, 0) + name
    central = entry * 5000
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 5000, 5000, len(central), len(local), 0)
    parsed = []
    monkeypatch.setattr(zipfile, "ZipFile", lambda *a, **k: parsed.append(a) or pytest.fail(
        "zipfile parsed the flooded directory"))
    with pytest.raises(Unreadable, match="more than 4000 zip entries"):
        npz_arrays(local + central + end)
    assert parsed == []


def test_npz_round_trip_keeps_dtype_shape_and_order():
    arrays = {"x": np.arange(12.0).reshape(3, 4), "f": np.asfortranarray(np.eye(3, 2)),
              "b": np.array([True, False]), "c": np.ones(2, ">c16"), "s": np.int8(7)}
    handle = io.BytesIO()
    np.savez_compressed(handle, **arrays)
    loaded = npz_arrays(handle.getvalue())
    assert sorted(loaded) == sorted(arrays)
    for key, value in arrays.items():
        assert loaded[key].dtype == np.asarray(value).dtype
        np.testing.assert_array_equal(loaded[key], value)


# ---------------------------------------------------------------- the result channel

def _good_prefix():
    return (encode_record({"op": "a", "ok": True}, {"out": np.arange(6.0).reshape(2, 3)})
            + encode_record({"op": "b", "ok": False, "error": "boom"}))


def test_channel_round_trip():
    stream = _good_prefix() + encode_record({"op": "c"}, {"x": np.int64(3), "y": np.zeros(0)})
    records, problems = read_channel(stream)
    assert problems == []
    assert [r["op"] for r, _ in records] == ["a", "b", "c"]
    np.testing.assert_array_equal(records[0][1]["out"], np.arange(6.0).reshape(2, 3))
    assert records[1][1] is None and records[2][1]["x"] == 3


_AFTER = encode_record({"op": "after"})  # never reached: reading stops at a framing error
_NPZ = encode_record({"op": "bad"}, {"out": np.ones(50)})
_NPZ_LINE, _NPZ_BLOB = _NPZ.split(b"\n", 1)


@pytest.mark.parametrize("bad, reason", [
    (_NPZ[:-100], "truncated npz"),
    (b'{"op": "bad", "npz_bytes": %d}\n' % (len(_NPZ_BLOB) + 10) + _NPZ_BLOB, "truncated npz"),
    (b'{"op": "bad", "npz_bytes": -5}\n' + _AFTER, "npz_bytes is -5"),
    (b'{"op": "bad", "npz_bytes": "12"}\n' + _AFTER, "npz_bytes is str"),
    (b"not json at all\n" + _AFTER, "not a line of JSON"),
    (b"[1, 2]\n" + _AFTER, "not a JSON object"),
    (b"\xff\xfe{}\n" + _AFTER, "not a line of JSON"),
    (b"[" * 200_000 + b"\n" + _AFTER, "not a line of JSON"),
    (json.dumps({"pad": "x" * (2 << 20)}).encode() + b"\n" + _AFTER, "line longer than"),
    (b'{"op": "bad"', "truncated line"),
], ids=["npz-cut", "npz_bytes-past-end", "negative-npz_bytes", "string-npz_bytes",
        "not-json", "not-an-object", "not-utf8", "deep-nesting", "huge-line", "no-newline"])
def test_channel_framing_error_is_one_problem_and_keeps_earlier_records(bad, reason):
    records, problems = read_channel(_good_prefix() + bad)
    assert [r["op"] for r, _ in records] == ["a", "b"]
    assert records[0][1]["out"].shape == (2, 3)
    assert len(problems) == 1 and reason in problems[0] and "record 3" in problems[0], problems


def test_channel_stops_after_max_records():
    stream = b"".join(encode_record({"op": str(i)}) for i in range(8))
    records, problems = read_channel(stream, max_records=5)
    assert [r["op"] for r, _ in records] == ["0", "1", "2", "3", "4"]
    assert problems == ["more than 5 records; the rest was not read"]


def test_channel_refused_npz_keeps_its_record_and_the_framing(tmp_path):
    marker = tmp_path / "unpickled"
    handle = io.BytesIO()
    np.savez(handle, out=np.array([_Plant(str(marker))], dtype=object))
    blob = handle.getvalue()
    stream = (_good_prefix() + b'{"op": "pickled", "npz_bytes": %d}\n' % len(blob) + blob
              + encode_record({"op": "big"}, {"out": np.zeros(200)}) + _AFTER)
    records, problems = read_channel(stream, max_array_bytes=1000)
    assert [(r["op"], a is None) for r, a in records] == [
        ("a", False), ("b", True), ("pickled", True), ("big", True), ("after", True)]
    assert len(problems) == 2 and "non-numeric" in problems[0] and "over the limit" in problems[1]
    assert not marker.exists()


def test_channel_never_raises_on_mangled_bytes():
    stream = _good_prefix() + _NPZ + _AFTER
    rng = random.Random(231)
    for cut in range(len(stream)):
        read_channel(stream[:cut])
    for _ in range(300):
        mangled = bytearray(stream)
        for _ in range(rng.randint(1, 8)):
            mangled[rng.randrange(len(mangled))] = rng.randrange(256)
        read_channel(bytes(mangled))


def test_channel_fd_reads_at_most_max_bytes_from_the_start(tmp_path):
    with open(tmp_path / "channel", "w+b") as handle:
        handle.write(bytes(range(256)) * 8192)  # 2 MiB; the offset is now at the end
        handle.flush()
        assert read_channel_fd(handle.fileno(), (1 << 20) + 5) == (bytes(range(256)) * 8192)[
            :(1 << 20) + 5]
        assert len(read_channel_fd(handle.fileno(), 10 << 20)) == 2 << 20


# ---------------------------------------------------------------- notebooks

def _notebook(cells, source="x = 1"):
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for _ in range(cells)])
    return nbformat.writes(notebook).encode()


def test_notebook_within_limits_is_read(tmp_path):
    path = tmp_path / "Dropout.ipynb"
    path.write_bytes(_notebook(5))
    assert len(read_notebook(path).cells) == 5


@pytest.mark.parametrize("payload, limits, reason", [
    (_notebook(30), {"max_cells": 20}, "30 cells"),
    (_notebook(1, "x" * (2 << 20)), {"max_bytes": 1 << 20}, "over the limit"),
    (b'{"cells": [', {}, "not JSON"),
    (b"[1, 2, 3]", {}, "not a notebook"),
    (b'{"cells": "x", "metadata": {}, "nbformat": 4, "nbformat_minor": 5}', {},
     "not a notebook"),
    (b'{"cells": [{"cell_type": "evil"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}',
     {}, "not a valid notebook"),
    (b'{"cells": [{"cell_type": "code", "source": "x", "metadata": {}, "id": "a"}], '
     b'"metadata": {}, "nbformat": 4, "nbformat_minor": 5}', {}, "not a valid notebook"),
], ids=["too-many-cells", "too-big", "not-json", "json-list", "cells-not-a-list",
        "unknown-cell-type", "invalid-schema"])  # nbformat.reads raises for the first, only
# logs the second (a code cell without outputs) and returns it
def test_notebook_is_refused(tmp_path, payload, limits, reason):
    path = tmp_path / "Dropout.ipynb"
    path.write_bytes(payload)
    with pytest.raises(Unreadable, match=reason):
        read_notebook(path, **limits)
