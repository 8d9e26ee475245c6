"""Tests of the CIFAR-10 installer (student_tools/cifar10_setup.py, datasets/get_datasets.sh).

Layout of every test: archives in tmp_path/archives, the target
tmp_path/datasets/cifar-10-batches-py, and next to it a file of the user's that must
survive every run. No test touches the network: urlopen is replaced in all of them.
"""
import hashlib
import io
import os
import pickle
import signal
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from cifar_archives import ESCAPES, batch_bytes, touch_command
from student_tools import cifar10_setup
from student_tools.cifar10_setup import main
from cs231n.data_utils import load_CIFAR10

REPO_ROOT = Path(__file__).resolve().parents[2]
USER_FILE = "my_notes.txt"
USER_TEXT = "the user's own file: never touched\n"
REQUIRED = ["batches.meta", "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
            "data_batch_5", "test_batch"]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Fail loudly if anything here tries the real network; tests that need a fake one
    patch urlopen again. Also hide the caller's CIFAR10_ARCHIVE."""
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried the real network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.delenv("CIFAR10_ARCHIVE", raising=False)


@pytest.fixture
def datasets_dir(tmp_path):
    """tmp_path/datasets holding one unrelated file of the user's."""
    path = tmp_path / "datasets"
    path.mkdir()
    (path / USER_FILE).write_text(USER_TEXT)
    return path


@pytest.fixture
def target(datasets_dir):
    return datasets_dir / "cifar-10-batches-py"


def assert_nothing_left(datasets_dir):
    """Only the user's file remains, unchanged: no target, no temp directory."""
    assert sorted(os.listdir(datasets_dir)) == [USER_FILE]
    assert (datasets_dir / USER_FILE).read_text() == USER_TEXT


def snapshot(directory):
    """{name: (inode, mtime_ns, size)} of every file in directory."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(Path(directory).iterdir())}


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def read_archive_batches(archive):
    """{name: batch dict} straight from the archive with tarfile + plain pickle (a trusted
    file), in one pass: a gzip stream cannot be entered in the middle."""
    batches = {}
    with tarfile.open(archive, "r|*") as tar:
        for member in tar:
            name = member.name.split("/")[-1]
            if name.startswith(("data_batch_", "test_batch")):
                raw = tar.extractfile(member).read()
                batches[name] = pickle.loads(raw, encoding="latin1")
    return batches


# --- the real sample archive ---------------------------------------------------------

def test_install_from_sample_archive(cifar10_sample_archive, target, datasets_dir, capsys):
    code, out, err = run(["--archive", cifar10_sample_archive, "--target", target], capsys)

    assert code == 0, err
    sha256 = hashlib.sha256(cifar10_sample_archive.read_bytes()).hexdigest()
    assert sha256 in out  # which archive was installed
    assert set(REQUIRED) <= set(os.listdir(target))
    assert sorted(os.listdir(datasets_dir)) == sorted([USER_FILE, target.name])
    assert (datasets_dir / USER_FILE).read_text() == USER_TEXT


@pytest.fixture(scope="module")
def installed_sample(cifar10_sample_archive, tmp_path_factory):
    target = tmp_path_factory.mktemp("sample") / "cifar-10-batches-py"
    cifar10_setup.install(target, archive=cifar10_sample_archive)
    return target


def test_installed_sample_loads(cifar10_sample_archive, installed_sample):
    Xtr, Ytr, Xte, Yte = load_CIFAR10(installed_sample)

    batches = read_archive_batches(cifar10_sample_archive)
    train = [batches[f"data_batch_{i}"] for i in range(1, 6)]
    test = batches["test_batch"]
    num_train = sum(len(b["labels"]) for b in train)
    assert Xtr.shape == (num_train, 32, 32, 3) and Xtr.dtype == np.float64
    assert Ytr.shape == (num_train,) and Ytr.dtype == np.int64
    assert Xte.shape == (len(test["labels"]), 32, 32, 3) and Yte.dtype == np.int64
    assert set(np.unique(Ytr)) <= set(range(10)) and set(np.unique(Yte)) <= set(range(10))
    np.testing.assert_array_equal(Ytr, np.concatenate([b["labels"] for b in train]))
    np.testing.assert_array_equal(Yte, test["labels"])

    # Image 0 of data_batch_1: the file stores 1024 red, 1024 green, 1024 blue values,
    # each a 32 x 32 image row by row.
    row = train[0]["data"][0]
    for channel in range(3):
        np.testing.assert_array_equal(
            Xtr[0, :, :, channel], row[1024 * channel:1024 * (channel + 1)].reshape(32, 32))


SAMPLE_SHA256 = "01b64110f7ba3a9c3db6ceb88b5fb785ea72b05cbdafa012ec8bd0e873f2ee2d"


def test_sample_holds_5000_train_and_1000_test_images(cifar10_sample_archive, installed_sample):
    if hashlib.sha256(cifar10_sample_archive.read_bytes()).hexdigest() != SAMPLE_SHA256:
        pytest.skip("CIFAR10_ARCHIVE is not the 1000-per-batch sample")
    Xtr, Ytr, Xte, Yte = load_CIFAR10(installed_sample)
    assert (len(Xtr), len(Ytr), len(Xte), len(Yte)) == (5000, 5000, 1000, 1000)


def test_second_run_leaves_install_untouched(make_cifar_archive, target, capsys):
    archive = make_cifar_archive()
    assert run(["--archive", archive.path, "--target", target], capsys)[0] == 0
    before = snapshot(target)

    code, out, err = run(["--archive", archive.path, "--target", target], capsys)

    assert code == 0, err
    assert "already installed" in out
    assert snapshot(target) == before


def test_second_run_needs_no_archive(make_cifar_archive, target, capsys):
    archive = make_cifar_archive()
    assert run(["--archive", archive.path, "--target", target], capsys)[0] == 0
    sha256 = archive.sha256
    archive.path.unlink()
    # Without archive and with no network allowed: a complete install is all it checks,
    # and it says which archive that install came from.
    code, out, err = run(["--target", target], capsys)
    assert code == 0, err
    assert "already installed" in out and sha256 in out


# --- synthetic archives: what is accepted -------------------------------------------

@pytest.mark.parametrize("sizes, test_size", [
    pytest.param((1, 1, 1, 1, 1), 1, id="one-image-per-batch"),
    pytest.param((3, 10, 2, 7, 5), 4, id="uneven-batches"),
])
def test_batches_of_any_size_install(make_cifar_archive, target, capsys, sizes, test_size):
    archive = make_cifar_archive(sizes=sizes, test_size=test_size)

    code, out, err = run(["--archive", archive.path, "--target", target], capsys)

    assert code == 0, err
    assert f"{sum(sizes)} training and {test_size} test images" in out
    Xtr, Ytr, Xte, Yte = load_CIFAR10(target)
    np.testing.assert_array_equal(
        Ytr, np.concatenate([archive.batches[f"data_batch_{i}"][1] for i in range(1, 6)]))
    np.testing.assert_array_equal(Yte, archive.batches["test_batch"][1])


@pytest.mark.parametrize("option", ["md5", "sha256"])
def test_matching_checksum_is_accepted(make_cifar_archive, target, capsys, option):
    archive = make_cifar_archive()
    digest = getattr(archive, option).upper()  # hex digits in either case
    code, _, err = run(["--archive", archive.path, "--target", target, f"--{option}", digest],
                       capsys)
    assert code == 0, err


def test_members_outside_the_dataset_folder_are_not_unpacked(make_cifar_archive, target,
                                                              datasets_dir, capsys):
    archive = make_cifar_archive(extra_members=[("NOTES.txt", b"not part of the data set")])
    assert run(["--archive", archive.path, "--target", target], capsys)[0] == 0
    assert sorted(os.listdir(datasets_dir)) == sorted([USER_FILE, target.name])


def test_empty_target_directory_is_filled(make_cifar_archive, target, capsys):
    target.mkdir()
    archive = make_cifar_archive()
    code, _, err = run(["--archive", archive.path, "--target", target], capsys)
    assert code == 0, err
    assert set(REQUIRED) <= set(os.listdir(target))


def test_uncompressed_tar_is_accepted(make_cifar_archive, target, capsys):
    archive = make_cifar_archive(name="plain.tar", compression="")
    assert run(["--archive", archive.path, "--target", target], capsys)[0] == 0


# --- synthetic archives: what is refused --------------------------------------------

def _bad_labels():
    data = np.zeros((4, 3072), dtype=np.uint8)
    return {"data_batch_3": batch_bytes(data, [0, 1, 10, 2])}


def _float_data():
    return {"test_batch": batch_bytes(np.zeros((4, 3072)), [0, 1, 2, 3])}


REFUSED = {
    # case: (build_archive options, extra main() args, words the error must contain)
    "corrupt": ({"corrupt": True}, [], "truncated or corrupt"),
    "truncated": ({"truncate": True}, [], "truncated or corrupt"),
    "wrong-md5": ({}, ["--md5", "0" * 32], "md5 mismatch"),
    "wrong-sha256": ({}, ["--sha256", "f" * 64], "sha256 mismatch"),
    "missing-member": ({"drop": ("test_batch",)}, [], "lacks cifar-10-batches-py/test_batch"),
    "missing-meta": ({"drop": ("batches.meta",)}, [], "lacks cifar-10-batches-py/batches.meta"),
    "labels-out-of-range": ({"replace": _bad_labels()}, [], "integers in 0..9 (one per image)"),
    "float-data": ({"replace": _float_data()}, [], "expected uint8 rows (n >= 1, 3072), got float64"),
    "not-a-pickle": ({"replace": {"data_batch_2": b"<html>Not found</html>"}}, [],
                     "data_batch_2: not a readable pickle"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_bad_archive_is_refused_and_leaves_nothing(make_cifar_archive, target, datasets_dir,
                                                   capsys, case):
    options, args, expected = REFUSED[case]
    archive = make_cifar_archive(**options)

    code, out, err = run(["--archive", archive.path, "--target", target, *args], capsys)

    assert code == 1
    assert expected in err
    assert_nothing_left(datasets_dir)


def test_not_an_archive_at_all_is_refused(tmp_path, target, datasets_dir, capsys):
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    code, _, err = run(["--archive", path, "--target", target], capsys)
    assert code == 1 and "cannot be read as a tar archive" in err
    assert_nothing_left(datasets_dir)


@pytest.mark.parametrize("tar_filter", [True, False], ids=["data-filter", "python-without-filter"])
@pytest.mark.parametrize("escape", ESCAPES)
def test_escaping_member_is_refused(make_cifar_archive, tmp_path, target, datasets_dir,
                                    capsys, monkeypatch, escape, tar_filter):
    if not tar_filter:  # Python < 3.10.12 / 3.11.4: the installer's own check must suffice
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    outside = tmp_path / "escaped.txt"
    if escape == "hardlink":  # a link to an existing file of the user's
        outside = datasets_dir / USER_FILE
    archive = make_cifar_archive(escape=escape, outside=outside)

    code, out, err = run(["--archive", archive.path, "--target", target], capsys)

    assert code == 1
    assert "refused: member" in err
    assert not (tmp_path / "escaped.txt").exists()
    assert_nothing_left(datasets_dir)


@pytest.mark.skipif(not hasattr(tarfile, "data_filter"), reason="no tarfile 'data' filter")
def test_data_filter_refuses_escapes_the_member_check_missed(make_cifar_archive, tmp_path,
                                                             target, datasets_dir, capsys,
                                                             monkeypatch):
    # The second line of defence: with the installer's own member check switched off,
    # tarfile's 'data' filter still refuses to write outside while unpacking.
    monkeypatch.setattr(cifar10_setup, "_checked_members", lambda members, archive: members)
    archive = make_cifar_archive(escape="dotdot", outside=tmp_path / "escaped.txt")

    code, out, err = run(["--archive", archive.path, "--target", target], capsys)

    assert code == 1 and "refused while unpacking" in err
    assert not (tmp_path / "escaped.txt").exists()
    assert_nothing_left(datasets_dir)


def test_tampered_pickle_is_refused_without_running_it(make_cifar_archive, tmp_path, target,
                                                       datasets_dir, capsys):
    witness = tmp_path / "command-ran"
    archive = make_cifar_archive(tamper="data_batch_4", tamper_command=touch_command(witness))

    code, out, err = run(["--archive", archive.path, "--target", target], capsys)

    assert code == 1
    assert "refused to unpickle the global posix.system" in err or "nt.system" in err
    assert "cifar-10-batches-py/data_batch_4" in err
    assert not witness.exists()
    assert_nothing_left(datasets_dir)


def test_failed_run_removes_the_folders_it_created(make_cifar_archive, tmp_path, capsys):
    archive = make_cifar_archive(truncate=True)
    target = tmp_path / "new" / "deeper" / "cifar-10-batches-py"

    code, _, err = run(["--archive", archive.path, "--target", target], capsys)

    assert code == 1 and "truncated or corrupt" in err
    assert not (tmp_path / "new").exists()


def test_missing_archive_is_reported(tmp_path, target, datasets_dir, capsys):
    code, _, err = run(["--archive", tmp_path / "nowhere.tar.gz", "--target", target], capsys)
    assert code == 1 and "does not exist" in err
    assert_nothing_left(datasets_dir)


@pytest.mark.parametrize("args", [
    pytest.param(["--md5", "xyz"], id="md5-not-hex"),
    pytest.param(["--sha256", "ab" * 16], id="sha256-too-short"),
    pytest.param(["--bogus"], id="unknown-option"),
    pytest.param(["--timeout", "0"], id="zero-timeout"),
])
def test_bad_arguments_exit_2(target, capsys, args):
    code, _, err = run(["--target", target, *args], capsys)
    assert code == 2 and "usage:" in err


def test_interrupted_run_leaves_nothing(make_cifar_archive, target, datasets_dir, capsys,
                                        monkeypatch):
    def interrupt(directory):
        raise KeyboardInterrupt

    monkeypatch.setattr(cifar10_setup, "validate_dataset_dir", interrupt)
    archive = make_cifar_archive()

    code, _, err = run(["--archive", archive.path, "--target", target], capsys)

    assert code == 130 and "nothing was installed" in err
    assert_nothing_left(datasets_dir)


def test_sigterm_leaves_nothing(make_cifar_archive, target, datasets_dir, capsys, monkeypatch):
    # `kill` or a cancelled CI job sends SIGTERM: it must clean up as Ctrl-C does.
    def terminate(directory):
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(cifar10_setup, "validate_dataset_dir", terminate)
    previous = signal.getsignal(signal.SIGTERM)
    code, _, err = run(["--archive", make_cifar_archive().path, "--target", target], capsys)

    assert code == 130 and "nothing was installed" in err
    assert signal.getsignal(signal.SIGTERM) is previous
    assert_nothing_left(datasets_dir)


# --- an existing target that is not a complete install ------------------------------

def _partial(target):
    target.mkdir()
    (target / "data_batch_1").write_bytes(b"half a download")


def _foreign(target):
    target.mkdir()
    (target / "thesis.tex").write_text("\\documentclass{article}")


def _a_file(target):
    target.write_text("not a directory")


@pytest.mark.parametrize("prepare", [_partial, _foreign, _a_file],
                         ids=["partial", "foreign-files", "a-file"])
def test_existing_incomplete_target_is_refused_and_kept(make_cifar_archive, target,
                                                        datasets_dir, capsys, prepare):
    prepare(target)
    contents = {p: p.read_bytes() for p in [target, *target.glob("*")] if p.is_file()}
    archive = make_cifar_archive()

    code, out, err = run(["--archive", archive.path, "--target", target], capsys)

    assert code == 1
    assert "not a complete CIFAR-10 install" in err and "move it away" in err
    assert {p: p.read_bytes() for p in contents} == contents
    assert sorted(p.name for p in datasets_dir.iterdir()) == sorted([USER_FILE, target.name])


def test_target_of_symlinked_files_counts_as_installed(make_cifar_archive, tmp_path, target,
                                                      capsys):
    # e.g. a lab machine's shared copy linked into the project, file by file
    shared = tmp_path / "shared" / "cifar-10-batches-py"
    archive = make_cifar_archive()
    assert run(["--archive", archive.path, "--target", shared], capsys)[0] == 0
    target.mkdir()
    for name in REQUIRED:
        (target / name).symlink_to(shared / name)

    code, out, err = run(["--archive", archive.path, "--target", target], capsys)

    assert code == 0, err
    assert "already installed" in out
    assert all((target / name).is_symlink() for name in REQUIRED)


def test_install_changed_later_is_refused(make_cifar_archive, target, capsys):
    archive = make_cifar_archive()
    assert run(["--archive", archive.path, "--target", target], capsys)[0] == 0
    (target / "data_batch_2").unlink()

    code, _, err = run(["--archive", archive.path, "--target", target], capsys)

    assert code == 1
    assert "data_batch_2 is missing" in err and "installed by this tool" in err
    assert (target / "data_batch_1").is_file()


# --- downloading (with a fake network) ------------------------------------------------

class FakeResponse(io.BytesIO):
    def __init__(self, payload, length=None):
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload) if length is None else length)}


@pytest.fixture
def fake_server(monkeypatch):
    """Serve bytes at any URL; records (url, timeout) of each request."""
    calls = []

    def serve(payload, length=None):
        def urlopen(url, timeout=None):
            calls.append((url, timeout))
            return FakeResponse(payload, length)

        monkeypatch.setattr(urllib.request, "urlopen", urlopen)
        return calls

    return serve


@pytest.mark.parametrize("failure, explanation", [
    pytest.param(urllib.error.URLError("[Errno -3] Temporary failure in name resolution"),
                 "Temporary failure in name resolution. No network?", id="no-network"),
    pytest.param(TimeoutError("timed out"), "timed out. No network?", id="timeout"),
    pytest.param(urllib.error.HTTPError(cifar10_setup.OFFICIAL_URL, 404, "Not Found", {}, None),
                 "the server answered 404 Not Found", id="http-404"),
])
def test_failed_download_gives_clear_message(monkeypatch, target, datasets_dir, capsys,
                                             failure, explanation):
    def urlopen(url, timeout=None):
        raise failure

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)

    code, out, err = run(["--target", target, "--no-progress"], capsys)

    assert code == 1
    assert explanation in err
    assert "CIFAR10_ARCHIVE=/path/to/cifar-10-python.tar.gz make data" in err
    assert_nothing_left(datasets_dir)


def test_download_is_checked_then_installed(make_cifar_archive, fake_server, monkeypatch,
                                            target, datasets_dir, capsys):
    archive = make_cifar_archive()
    monkeypatch.setattr(cifar10_setup, "OFFICIAL_MD5", archive.md5)
    calls = fake_server(archive.path.read_bytes())

    code, out, err = run(["--target", target, "--no-progress"], capsys)

    assert code == 0, err
    assert [url for url, _ in calls] == [cifar10_setup.OFFICIAL_URL]
    timeout = calls[0][1]
    assert timeout is not None and timeout <= cifar10_setup.NETWORK_TIMEOUT
    assert archive.sha256 in out
    assert sorted(os.listdir(datasets_dir)) == sorted([USER_FILE, target.name])


def test_download_with_wrong_md5_is_never_unpacked(make_cifar_archive, fake_server,
                                                   monkeypatch, target, datasets_dir, capsys):
    archive = make_cifar_archive()  # a valid archive, but not the official one
    fake_server(archive.path.read_bytes())
    unpacked = []
    monkeypatch.setattr(cifar10_setup, "_unpack", lambda *a: unpacked.append(a))

    code, out, err = run(["--target", target, "--no-progress"], capsys)

    assert code == 1
    assert f"md5 mismatch: expected {cifar10_setup.OFFICIAL_MD5}, got {archive.md5}" in err
    assert unpacked == []
    assert_nothing_left(datasets_dir)


def test_download_cut_short_is_reported(make_cifar_archive, fake_server, target, datasets_dir,
                                        capsys):
    payload = make_cifar_archive().path.read_bytes()
    fake_server(payload[:1000], length=len(payload))

    code, _, err = run(["--target", target, "--no-progress"], capsys)

    assert code == 1 and f"stopped at 1000 of {len(payload)} bytes" in err
    assert_nothing_left(datasets_dir)


def test_archive_given_means_no_network(make_cifar_archive, target, capsys):
    # The autouse no_network fixture turns any urlopen call into a failure.
    archive = make_cifar_archive()
    code, _, err = run(["--archive", archive.path, "--target", target], capsys)
    assert code == 0, err


def test_environment_variable_names_the_archive(make_cifar_archive, monkeypatch, target,
                                                capsys):
    archive = make_cifar_archive()
    monkeypatch.setenv("CIFAR10_ARCHIVE", str(archive.path))
    code, out, err = run(["--target", target], capsys)
    assert code == 0, err
    assert f"$CIFAR10_ARCHIVE={archive.path}" in out


# --- the shell script ------------------------------------------------------------------

def script(args, cwd, archive_env=None):
    env = {k: v for k, v in os.environ.items() if k not in ("CIFAR10_ARCHIVE", "PYTHONPATH")}
    env["PYTHON"] = sys.executable
    if archive_env is not None:
        env["CIFAR10_ARCHIVE"] = str(archive_env)
    return subprocess.run(["bash", str(REPO_ROOT / "datasets" / "get_datasets.sh"), *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_script_installs_sample_from_environment(cifar10_sample_archive, tmp_path):
    target = tmp_path / "datasets" / "cifar-10-batches-py"
    # Run from an unrelated directory: the script must find the project by itself.
    result = script(["--target", str(target)], cwd=tmp_path, archive_env=cifar10_sample_archive)

    assert result.returncode == 0, result.stderr
    Xtr, Ytr, Xte, Yte = load_CIFAR10(target)
    assert len(Xtr) == len(Ytr) > 0 and len(Xte) == len(Yte) > 0


def test_script_resolves_relative_paths_from_the_callers_directory(make_cifar_archive,
                                                                    tmp_path):
    archive = make_cifar_archive()
    result = script(["--archive", os.path.relpath(archive.path, tmp_path),
                     "--target", "datasets/cifar-10-batches-py"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "datasets" / "cifar-10-batches-py" / "data_batch_1").is_file()


def test_script_passes_failure_on(tmp_path):
    result = script(["--archive", str(tmp_path / "missing.tar.gz"),
                     "--target", str(tmp_path / "t")], cwd=tmp_path)
    assert result.returncode == 1
    assert "does not exist" in result.stderr
    assert not (tmp_path / "t").exists()
