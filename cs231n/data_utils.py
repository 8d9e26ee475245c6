"""Loading CIFAR-10 from the python-version batch files (CS231N-compatible).

A batch file pickles a dict: ``data``, uint8 (n, 3072), one row per image (1024 red, green,
blue values each, 32 x 32 row by row); ``labels``, n integers in 0..9. ``pickle.load`` runs
any code a file asks for, so ``load_pickle`` builds numpy arrays and containers only.
"""
import os
import pickle
from pathlib import Path

import numpy as np

from cs231n.validation import check_nonnegative_int, check_positive_int

#: Where ``make data`` installs CIFAR-10, resolved from this file so any cwd works.
DEFAULT_CIFAR10_DIR = Path(__file__).resolve().parents[1] / "datasets" / "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META_FILE = "batches.meta"
INSTALL_HINT = ("Install it from the project root with `make data` or `bash datasets/get_data"
                "sets.sh`; offline: `CIFAR10_ARCHIVE=/path/to/cifar-10-python.tar.gz make data`.")


class UnsafePickleError(ValueError):
    """A pickle asked for a global outside the allow-list (it may be tampered with)."""


class CIFAR10FormatError(ValueError):
    """A file is not a CIFAR-10 python batch (bad pickle, missing key, wrong shape or dtype)."""


def _latin1_encode(text, encoding="utf-8", errors="strict"):  # how protocol 2 stores bytes
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise UnsafePickleError(f"_codecs.encode: expected (str, 'latin1') as a protocol-2 pickle "
                                f"writes bytes, got ({type(text).__name__}, {encoding!r})")
    return text.encode("latin1", errors)


# numpy's own reconstructors, under the names pickles use: numpy.core (numpy 1, and the
# official files) and numpy._core (numpy 2, where importing numpy.core warns).
_ALLOWED_GLOBALS = {("_codecs", "encode"): _latin1_encode,
                    ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
for _core in ("numpy.core", "numpy._core"):
    _ALLOWED_GLOBALS.update({
        (f"{_core}.multiarray", "_reconstruct"): np.empty(0).__reduce__()[0],
        (f"{_core}.numeric", "_frombuffer"): np.empty(0).__reduce_ex__(5)[0],  # protocol 5
        (f"{_core}.multiarray", "scalar"): np.int64(0).__reduce__()[0]})  # numpy int labels


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"{self.source}: refused to unpickle the global {module}.{name}: a CIFAR-10 "
                "batch only needs numpy arrays, so the file may have been tampered with. "
                "Do not open it with plain pickle; reinstall the dataset from a trusted archive.")
        return _ALLOWED_GLOBALS[(module, name)]


def load_pickle(f):
    """Unpickle the binary file f allowing numpy arrays only (CIFAR10FormatError: no pickle)."""
    unpickler = _RestrictedUnpickler(f, encoding="latin1")
    unpickler.source = getattr(f, "name", "<stream>")
    try:
        return unpickler.load()
    except UnsafePickleError:
        raise
    except Exception as exc:  # whatever bytes that are not a pickle make the unpickler raise
        raise CIFAR10FormatError(f"{unpickler.source}: not a readable pickle "
                                 f"({type(exc).__name__}: {exc})") from exc


def _path(value, name):
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a path (str or os.PathLike), got {type(value).__name__}")
    return Path(value)


def read_batch(filename, max_images=None, name="max_images"):
    """One batch file, checked -> its first max_images (None: all) images as stored,
    data: (n, 3072) uint8, and labels: (n,) int64. name: max_images in error messages."""
    path = _path(filename, "filename")
    max_images = None if max_images is None else check_positive_int(max_images, name)
    if not path.is_file():
        problem = "is not a regular file" if path.exists() else "not found"
        raise FileNotFoundError(f"CIFAR-10 batch file {problem}: {path}. {INSTALL_HINT}")
    with open(path, "rb") as f:
        batch = load_pickle(f)
    if isinstance(batch, dict):  # encoding="bytes" (or Python 2's files) gives b"data" keys
        batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if not (isinstance(batch, dict) and "data" in batch and "labels" in batch):
        got = sorted(map(str, batch)) if isinstance(batch, dict) else type(batch).__name__
        raise CIFAR10FormatError(f"{path}: expected a dict with 'data', 'labels', got {got}")
    data = batch["data"]
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == 3072 and len(data) > 0):
        got = (f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray)
               else type(data).__name__)
        raise CIFAR10FormatError(f"{path}: 'data': expected uint8 rows (n >= 1, 3072), got {got}")
    try:
        labels = np.asarray(batch["labels"])
    except (ValueError, TypeError) as exc:
        raise CIFAR10FormatError(f"{path}: 'labels': not a list of integers ({exc})") from exc
    ints = labels.dtype.kind in "iu" and labels.size > 0
    if not (ints and labels.shape == data.shape[:1] and 0 <= labels.min() <= labels.max() < 10):
        values = f" from {labels.min()} to {labels.max()}" if ints else ""
        raise CIFAR10FormatError(f"{path}: 'labels': expected {len(data)} integers in 0..9 (one "
                                 f"per image), got {labels.dtype} of shape {labels.shape}{values}")
    if (max_images or 0) > len(data):
        raise ValueError(f"{name}: expected at most {len(data)} (the images in {path.name}), "
                         f"got {max_images}")
    return data[:max_images], labels[:max_images].astype(np.int64)


def _channels_last(data):
    """(n, 3072) uint8 rows -> (n, 32, 32, 3) float64 images, as CS231N returns them."""
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.float64)


def load_CIFAR_batch(filename, max_images=None):
    """A batch file's first max_images images -> X: (n, 32, 32, 3) float64, Y: (n,) int64."""
    data, labels = read_batch(filename, max_images)
    return _channels_last(data), labels


def _read_split(root, images_per_batch):
    """Rows and labels of data_batch_1..5 (concatenated in order), then of test_batch."""
    parts = [read_batch(root / name, images_per_batch, "images_per_batch")
             for name in TRAIN_BATCHES + (TEST_BATCH,)]
    return (*[np.concatenate(rows) for rows in zip(*parts[:-1])], *parts[-1])


def load_CIFAR10(root, images_per_batch=None):
    """The batches in root, first images_per_batch (None: all) images of each, as CS231N ->
    Xtr: (N_train, 32, 32, 3) float64 (data_batch_1..5), Ytr: (N_train,) int64, Xte, Yte."""
    train, Ytr, test, Yte = _read_split(_path(root, "root"), images_per_batch)
    return _channels_last(train), Ytr, _channels_last(test), Yte


def get_CIFAR10_data(num_training=49000, num_validation=1000, num_test=1000,
                     subtract_mean=True, cifar10_dir=None, images_per_batch=None):
    """CIFAR-10 split as in CS231N: X_train (num_training, 3, 32, 32) float64 is rows [0,
    num_training) of the training batches, X_val the next num_validation rows, X_test the first
    num_test test images, minus X_train.mean(axis=0) if subtract_mean; y_*: int64 labels.
    images_per_batch reads the first images of each file (the full data and the sample agree)."""
    num_training = check_positive_int(num_training, "num_training")
    num_validation = check_nonnegative_int(num_validation, "num_validation")
    num_test = check_nonnegative_int(num_test, "num_test")
    if not isinstance(subtract_mean, (bool, np.bool_)):
        raise TypeError(f"subtract_mean: expected a bool, got {type(subtract_mean).__name__}")
    root = DEFAULT_CIFAR10_DIR if cifar10_dir is None else _path(cifar10_dir, "cifar10_dir")
    train, train_labels, test, test_labels = _read_split(root, images_per_batch)
    where = f"{root} with images_per_batch={images_per_batch}" if images_per_batch else root
    end = num_training + num_validation
    if end > len(train):
        raise ValueError(f"num_training + num_validation: expected at most {len(train)} (the train"
                         f"ing images in {where}), got {num_training} + {num_validation} = {end}")
    if num_test > len(test):
        raise ValueError(f"num_test: expected at most {len(test)} (the test images in {where}), "
                         f"got {num_test}")
    # Views: only the rows returned become float64 (the whole training set would be 1.2 GB).
    train, test = train.reshape(-1, 3, 32, 32), test.reshape(-1, 3, 32, 32)
    data = {"X_train": train[:num_training].astype(float), "y_train": train_labels[:num_training],
            "X_val": train[num_training:end].astype(float), "y_val": train_labels[num_training:end],
            "X_test": test[:num_test].astype(float), "y_test": test_labels[:num_test]}
    if subtract_mean:
        mean_image = data["X_train"].mean(axis=0)
        for key in ("X_train", "X_val", "X_test"):
            data[key] -= mean_image
    return data
