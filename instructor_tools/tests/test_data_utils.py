"""Tests of the CIFAR-10 loaders and the restricted unpickler (cs231n/data_utils.py).

Most tests use small synthetic batch directories (tests/cifar_archives.py); installing and
loading the real data set is covered by the course's tests of the installer.
"""
import io
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

from cifar_archives import (BATCH_NAMES, RunsShellCommand, batch_bytes, random_batch,
                            touch_command, write_batch_dir)
from cs231n import data_utils
from cs231n.data_utils import (CIFAR10FormatError, UnsafePickleError, get_CIFAR10_data,
                               load_CIFAR10, load_CIFAR_batch, load_pickle, read_batch)

REPO_ROOT = Path(__file__).resolve().parents[2]
KEYS = ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")


def slow_channels_last(data):
    """(n, 3072) rows -> (n, 32, 32, 3) by the CIFAR-10 format's definition, one pixel at a
    time: value (c, r, k) of an image is at c*1024 + r*32 + k of its row."""
    n = data.shape[0]
    images = np.empty((n, 32, 32, 3))
    for i in range(n):
        for c in range(3):
            for r in range(32):
                for k in range(32):
                    images[i, r, k, c] = data[i, c * 1024 + r * 32 + k]
    return images


@pytest.fixture
def cifar_dir(tmp_path):
    """A synthetic cifar-10-batches-py with 10 images per batch; returns (dir, batches)."""
    directory = tmp_path / "cifar-10-batches-py"
    return directory, write_batch_dir(directory, sizes=(10,) * 5, test_size=10, seed=1)


def training_rows(batches, per_batch=None):
    """uint8 rows and labels of data_batch_1..5, concatenated, optionally truncated per batch."""
    names = BATCH_NAMES[:5]
    data = np.concatenate([batches[b][0][:per_batch] for b in names])
    labels = np.concatenate([np.asarray(batches[b][1][:per_batch]) for b in names])
    return data, labels


# --- load_CIFAR_batch / load_CIFAR10 ---------------------------------------------------

@pytest.mark.parametrize("n", [1, 3, 17])
def test_batch_of_any_size_loads(tmp_path, n):
    data, labels = random_batch(n, np.random.default_rng(n))
    path = tmp_path / "data_batch_1"
    path.write_bytes(batch_bytes(data, labels))

    X, Y = load_CIFAR_batch(path)

    assert X.shape == (n, 32, 32, 3) and X.dtype == np.float64
    assert Y.shape == (n,) and Y.dtype == np.int64
    np.testing.assert_array_equal(X, slow_channels_last(data))
    np.testing.assert_array_equal(Y, labels)


@pytest.mark.parametrize("max_images", [1, 4, 17])
def test_max_images_keeps_the_first_images(tmp_path, max_images):
    data, labels = random_batch(17, np.random.default_rng(0))
    path = tmp_path / "test_batch"
    path.write_bytes(batch_bytes(data, labels))

    X, Y = load_CIFAR_batch(path, max_images=max_images)

    np.testing.assert_array_equal(X, slow_channels_last(data[:max_images]))
    np.testing.assert_array_equal(Y, labels[:max_images])


def test_load_CIFAR10_concatenates_batches_in_order(tmp_path):
    directory = tmp_path / "cifar-10-batches-py"
    batches = write_batch_dir(directory, sizes=(2, 1, 3, 1, 2), test_size=3)

    Xtr, Ytr, Xte, Yte = load_CIFAR10(directory)

    data, labels = training_rows(batches)
    np.testing.assert_array_equal(Xtr, slow_channels_last(data))
    np.testing.assert_array_equal(Ytr, labels)
    np.testing.assert_array_equal(Xte, slow_channels_last(batches["test_batch"][0]))
    np.testing.assert_array_equal(Yte, batches["test_batch"][1])
    assert Ytr.dtype == Yte.dtype == np.int64


def test_images_per_batch_reads_the_first_images_of_each_file(cifar_dir):
    directory, batches = cifar_dir
    Xtr, Ytr, Xte, Yte = load_CIFAR10(directory, images_per_batch=4)

    data, labels = training_rows(batches, per_batch=4)
    np.testing.assert_array_equal(Xtr, slow_channels_last(data))
    np.testing.assert_array_equal(Ytr, labels)
    np.testing.assert_array_equal(Xte, slow_channels_last(batches["test_batch"][0][:4]))


def test_more_images_per_batch_than_a_file_holds_is_refused(cifar_dir):
    directory, _ = cifar_dir
    with pytest.raises(ValueError, match=r"images_per_batch: expected at most 10 .*got 11"):
        load_CIFAR10(directory, images_per_batch=11)


# --- get_CIFAR10_data --------------------------------------------------------------------

def test_get_CIFAR10_data_keys_shapes_dtypes(cifar_dir):
    directory, _ = cifar_dir
    data = get_CIFAR10_data(num_training=30, num_validation=15, num_test=7,
                            cifar10_dir=directory)

    assert sorted(data) == sorted(KEYS)
    for split, n in (("train", 30), ("val", 15), ("test", 7)):
        assert data[f"X_{split}"].shape == (n, 3, 32, 32)
        assert data[f"X_{split}"].dtype == np.float64
        assert data[f"y_{split}"].shape == (n,)
        assert data[f"y_{split}"].dtype == np.int64


def test_get_CIFAR10_data_splits_and_subtracts_the_training_mean(cifar_dir):
    directory, batches = cifar_dir
    data = get_CIFAR10_data(num_training=30, num_validation=15, num_test=7,
                            cifar10_dir=directory)

    # The CS231N recipe from a channels-last load: rows [0, 30) train, [30, 45) val.
    Xtr, Ytr, Xte, Yte = load_CIFAR10(directory)
    raw_train, raw_val, raw_test = Xtr[:30], Xtr[30:45], Xte[:7]
    mean_image = raw_train.mean(axis=0)
    expected = {
        "X_train": (raw_train - mean_image).transpose(0, 3, 1, 2), "y_train": Ytr[:30],
        "X_val": (raw_val - mean_image).transpose(0, 3, 1, 2), "y_val": Ytr[30:45],
        "X_test": (raw_test - mean_image).transpose(0, 3, 1, 2), "y_test": Yte[:7],
    }
    for key in KEYS:
        np.testing.assert_allclose(data[key], expected[key], rtol=0, atol=1e-12, err_msg=key)
    np.testing.assert_allclose(data["X_train"].mean(axis=0), 0.0, rtol=0, atol=1e-12)


def test_get_CIFAR10_data_without_mean_subtraction_returns_pixel_values(cifar_dir):
    directory, batches = cifar_dir
    data = get_CIFAR10_data(num_training=12, num_validation=3, num_test=2,
                            subtract_mean=False, cifar10_dir=directory)

    data_rows, _ = training_rows(batches)
    np.testing.assert_array_equal(data["X_train"],
                                  slow_channels_last(data_rows[:12]).transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(data["X_val"],
                                  slow_channels_last(data_rows[12:15]).transpose(0, 3, 1, 2))


def test_images_per_batch_gives_the_same_data_as_a_truncated_copy(tmp_path):
    """The notebooks' promise: images_per_batch=K on the full data set equals the
    K-per-batch sample (here: a copy of each file holding its first K images)."""
    full_dir, small_dir = tmp_path / "full", tmp_path / "small"
    batches = write_batch_dir(full_dir, sizes=(10,) * 5, test_size=10, seed=3)
    small_dir.mkdir()
    for name, (rows, labels) in batches.items():
        (small_dir / name).write_bytes(batch_bytes(rows[:4], labels[:4]))
    (small_dir / "batches.meta").write_bytes((full_dir / "batches.meta").read_bytes())

    from_full = get_CIFAR10_data(4, 4, 4, cifar10_dir=full_dir, images_per_batch=4)
    from_small = get_CIFAR10_data(4, 4, 4, cifar10_dir=small_dir, images_per_batch=4)

    for key in KEYS:
        np.testing.assert_array_equal(from_full[key], from_small[key], err_msg=key)
    # train = first 4 images of data_batch_1, val = first 4 of data_batch_2
    np.testing.assert_array_equal(from_full["y_train"], batches["data_batch_1"][1][:4])
    np.testing.assert_array_equal(from_full["y_val"], batches["data_batch_2"][1][:4])


def test_validation_rows_follow_the_training_rows_across_batches(cifar_dir):
    directory, batches = cifar_dir
    # 8 training images: 8 of data_batch_1; validation: the last 2 of it, then batch 2.
    data = get_CIFAR10_data(num_training=8, num_validation=5, num_test=1,
                            subtract_mean=False, cifar10_dir=directory)
    expected = list(batches["data_batch_1"][1][8:]) + list(batches["data_batch_2"][1][:3])
    np.testing.assert_array_equal(data["y_val"], expected)


@pytest.mark.parametrize("kwargs, message", [
    pytest.param({"num_training": 45, "num_validation": 6}, r"num_training \+ num_validation: "
                 r"expected at most 50 .*got 45 \+ 6 = 51", id="train+val"),
    pytest.param({"num_training": 51, "num_validation": 0}, r"expected at most 50", id="train"),
    pytest.param({"num_training": 10, "num_validation": 0, "num_test": 11}, r"num_test: expected at most 10 .*got 11",
                 id="test"),
    pytest.param({"num_training": 10, "num_validation": 11, "images_per_batch": 4},
                 r"expected at most 20 .*images_per_batch=4", id="images_per_batch"),
])
def test_too_many_images_requested(cifar_dir, kwargs, message):
    directory, _ = cifar_dir
    kwargs.setdefault("num_test", 1)
    with pytest.raises(ValueError, match=message):
        get_CIFAR10_data(cifar10_dir=directory, **kwargs)


@pytest.mark.parametrize("kwargs, error, message", [
    pytest.param({"num_training": 0}, ValueError, r"num_training: expected an integer >= 1, got 0",
                 id="no-training"),
    pytest.param({"num_training": 10.0}, TypeError, r"num_training: expected an integer, got float",
                 id="float-count"),
    pytest.param({"num_validation": True}, TypeError, r"num_validation: expected an integer, got bool",
                 id="bool-count"),
    pytest.param({"num_test": -1}, ValueError, r"num_test: expected an integer >= 0, got -1",
                 id="negative-count"),
    pytest.param({"subtract_mean": "yes"}, TypeError, r"subtract_mean: expected a bool, got str",
                 id="subtract-mean-str"),
    pytest.param({"images_per_batch": 0}, ValueError, r"images_per_batch: expected an integer >= 1",
                 id="zero-per-batch"),
    pytest.param({"cifar10_dir": 3}, TypeError, r"cifar10_dir: expected a path", id="dir-int"),
])
def test_bad_arguments_are_named(cifar_dir, kwargs, error, message):
    directory, _ = cifar_dir
    kwargs = {"num_training": 10, "num_validation": 5, "num_test": 5,
              "cifar10_dir": directory, **kwargs}
    with pytest.raises(error, match=message):
        get_CIFAR10_data(**kwargs)


def test_zero_validation_and_test_images_are_allowed(cifar_dir):
    directory, _ = cifar_dir
    data = get_CIFAR10_data(num_training=5, num_validation=0, num_test=0, cifar10_dir=directory)
    assert data["X_val"].shape == (0, 3, 32, 32) and data["y_test"].shape == (0,)


# --- a missing dataset -------------------------------------------------------------------

def test_missing_dataset_names_the_install_command(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        get_CIFAR10_data(cifar10_dir=tmp_path / "cifar-10-batches-py")
    message = str(info.value)
    assert str(tmp_path / "cifar-10-batches-py") in message
    assert "make data" in message and "bash datasets/get_datasets.sh" in message


def test_missing_batch_file_is_named(cifar_dir):
    directory, _ = cifar_dir
    (directory / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match=r"batch file not found: .*test_batch.*make data"):
        load_CIFAR10(directory)


def test_default_directory_is_the_projects_datasets_folder():
    assert data_utils.DEFAULT_CIFAR10_DIR == REPO_ROOT / "datasets" / "cifar-10-batches-py"


# --- the restricted unpickler ------------------------------------------------------------

def test_tampered_pickle_is_refused_without_running(tmp_path):
    witness = tmp_path / "command-ran"
    data, labels = random_batch(2, np.random.default_rng(0))
    path = tmp_path / "data_batch_1"
    path.write_bytes(batch_bytes(data, labels,
                                 extra={"x": RunsShellCommand(touch_command(witness))}))

    with pytest.raises(UnsafePickleError, match=r"data_batch_1: refused to unpickle the global "
                                                r"(posix|nt)\.system"):
        load_CIFAR_batch(path)
    assert not witness.exists()

    # The control: plain pickle does run it, so the check above can fail.
    with open(path, "rb") as f:
        pickle.load(f, encoding="latin1")
    assert witness.exists()


class _Calls:
    """Pickles as func(*args), for any importable func."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


@pytest.mark.parametrize("payload, refused", [
    pytest.param(_Calls(eval, "1 + 1"), r"builtins\.eval", id="eval"),
    pytest.param(_Calls(getattr, 0, "real"), r"builtins\.getattr", id="getattr"),
    pytest.param(_Calls(pickle.loads, b"."), r"_?pickle\.loads", id="nested-pickle"),
    pytest.param(_Calls(np.load, "x.npy"), r"numpy(\.lib\.\w+)?\.load", id="numpy-load"),
])
def test_any_other_global_is_refused(tmp_path, payload, refused):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": payload}, protocol=3))
    with pytest.raises(UnsafePickleError, match=rf"global {refused}\b"):
        read_batch(path)


def test_codecs_encode_is_limited_to_latin1(tmp_path):
    import _codecs
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": _Calls(_codecs.encode, "abc", "rot13")}, protocol=2))
    with pytest.raises(UnsafePickleError, match=r"_codecs.encode: expected \(str, 'latin1'\)"):
        read_batch(path)


@pytest.mark.parametrize("protocol, numpy_core, bytes_keys, labels_as", [
    pytest.param(2, True, False, "list", id="official-layout"),
    pytest.param(2, False, False, "list", id="numpy2-protocol2"),
    pytest.param(3, True, True, "list", id="bytes-keys"),
    pytest.param(4, False, False, "ndarray", id="protocol4-ndarray-labels"),
    pytest.param(5, False, False, "numpy-ints", id="protocol5-numpy-int-labels"),
])
def test_every_way_of_pickling_a_batch_loads(tmp_path, protocol, numpy_core, bytes_keys,
                                             labels_as):
    data, labels = random_batch(5, np.random.default_rng(protocol))
    stored = {"list": labels, "ndarray": np.array(labels),
              "numpy-ints": list(np.array(labels))}[labels_as]
    path = tmp_path / "data_batch_1"
    path.write_bytes(batch_bytes(data, stored, protocol=protocol, numpy_core=numpy_core,
                                 bytes_keys=bytes_keys))

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. numpy 2's DeprecationWarning for numpy.core
        rows, Y = read_batch(path)

    np.testing.assert_array_equal(rows, data)
    np.testing.assert_array_equal(Y, labels)
    assert rows.dtype == np.uint8 and Y.dtype == np.int64


def _pickled(obj):
    return pickle.dumps(obj, protocol=3)


def _with_persistent_id():
    """A batch whose labels are a persistent id: an unpickler hook that could load anything."""
    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return "labels" if isinstance(obj, list) else None

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump({"data": np.zeros((3, 3072), np.uint8), "labels": [0, 1, 2]})
    return buffer.getvalue()


ROWS = np.zeros((3, 3072), dtype=np.uint8)
MALFORMED = {
    "not-a-dict": (_pickled([ROWS, [0, 1, 2]]), r"expected a dict with 'data', 'labels', got list"),
    "no-labels": (_pickled({"data": ROWS}), r"expected a dict with 'data', 'labels', got \['data'\]"),
    "float-data": (_pickled({"data": ROWS.astype(float), "labels": [0, 1, 2]}),
                   r"'data': expected uint8 rows \(n >= 1, 3072\), got float64"),
    "wrong-width": (_pickled({"data": np.zeros((3, 3071), np.uint8), "labels": [0, 1, 2]}),
                    r"got uint8 array of shape \(3, 3071\)"),
    "no-images": (_pickled({"data": np.zeros((0, 3072), np.uint8), "labels": []}),
                  r"expected uint8 rows \(n >= 1, 3072\), got uint8 array of shape \(0, 3072\)"),
    "label-10": (_pickled({"data": ROWS, "labels": [0, 10, 2]}),
                 r"'labels': expected 3 integers in 0..9 .*, got int64 of shape \(3,\) from 0 to 10"),
    "label-negative": (_pickled({"data": ROWS, "labels": [0, -1, 2]}), r"in 0..9 .*from -1 to 2"),
    "float-labels": (_pickled({"data": ROWS, "labels": [0.0, 1.0, 2.0]}),
                     r"'labels': expected 3 integers .*, got float64 of shape \(3,\)$"),
    "ragged-labels": (_pickled({"data": ROWS, "labels": [0, [1, 2], 2]}),
                      r"'labels': not a list of integers"),
    "too-few-labels": (_pickled({"data": ROWS, "labels": [0, 1]}),
                       r"expected 3 integers in 0..9 \(one per image\), got int64 of shape \(2,\)"),
    "not-a-pickle": (b"<html>404</html>", r"not a readable pickle"),
    "persistent-id": (_with_persistent_id(), r"not a readable pickle .*persistent"),
    "truncated-pickle": (_pickled({"data": ROWS, "labels": [0, 1, 2]})[:500],
                         r"not a readable pickle"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_batch_is_refused_naming_the_file(tmp_path, case):
    raw, message = MALFORMED[case]
    path = tmp_path / "data_batch_3"
    path.write_bytes(raw)
    with pytest.raises(CIFAR10FormatError, match=message) as info:
        load_CIFAR_batch(path)
    assert str(path) in str(info.value)


def test_load_pickle_reads_meta_with_str_keys(tmp_path):
    path = tmp_path / "batches.meta"
    path.write_bytes(pickle.dumps({"label_names": ["cat"]}, protocol=2))
    with open(path, "rb") as f:
        assert load_pickle(f) == {"label_names": ["cat"]}
