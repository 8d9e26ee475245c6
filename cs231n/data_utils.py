"""Loading CIFAR-10 from the python-version batch files (CS231N-compatible).

The dataset lives in ``datasets/cifar-10-batches-py/`` (``make data`` or
``bash datasets/get_datasets.sh`` installs it). Each batch file is a pickled dict with

- ``data``:   uint8 array of shape (n, 3072). Row i is image i: 1024 red, then 1024 green,
  then 1024 blue values, each channel a 32 x 32 image stored row by row.
- ``labels``: n integers in 0..9 (``batches.meta`` holds the class names).

The official files have n = 10000; the offline sample has n = 1000. Nothing here assumes n.

Public functions, as in CS231N:

- ``load_CIFAR_batch(filename)`` -> X: (n, 32, 32, 3) float64, Y: (n,) int64 (channels last)
- ``load_CIFAR10(root)`` -> Xtr: (N_train, 32, 32, 3), Ytr, Xte: (N_test, 32, 32, 3), Yte
- ``get_CIFAR10_data(...)`` -> dict of X_train/X_val/X_test: (N, 3, 32, 32) float64
  (channels first, mean training image subtracted) and y_train/y_val/y_test: (N,) int64

Why a restricted unpickler: ``pickle.load`` runs whatever code a file asks for, and
datasets travel by USB stick and e-mail in classrooms. ``load_pickle`` only builds numpy
arrays and plain containers; any other global raises ``UnsafePickleError`` before it runs.
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
NUM_CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)  # (C, H, W) as stored in a row of ``data``
ROW_SIZE = 3 * 32 * 32

INSTALL_HINT = (
    "Install it from the project root with `make data` (or `bash datasets/get_datasets.sh`); "
    "without a network, point it at a local copy of the archive: "
    "`CIFAR10_ARCHIVE=/path/to/cifar-10-python.tar.gz make data`."
)


class UnsafePickleError(ValueError):
    """A pickle asked for a global outside the allow-list (it may be tampered with)."""


class CIFAR10FormatError(ValueError):
    """A file is not a CIFAR-10 python batch (bad pickle, missing key, wrong shape or dtype)."""


def _latin1_encode(text, encoding="utf-8", errors="strict"):
    """``_codecs.encode`` restricted to latin1.

    Protocol-2 pickles written by Python 3 store raw bytes (here the array's buffer) as
    ``_codecs.encode(text, "latin1")``; no other use of it is needed.
    """
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise UnsafePickleError(
            f"_codecs.encode: expected (str, 'latin1') as a protocol-2 pickle writes bytes, "
            f"got ({type(text).__name__}, {encoding!r})"
        )
    return text.encode("latin1", errors)


# The array-reconstruction helpers, taken from numpy itself: pickles name them
# ``numpy.core.multiarray._reconstruct`` (numpy 1, and the official CIFAR-10 files) or
# ``numpy._core...`` (numpy 2). Importing ``numpy.core`` under numpy 2 warns, so both
# names map to the objects numpy's own ``__reduce__`` returns.
_reconstruct = np.empty(0).__reduce__()[0]
_frombuffer = np.empty(0).__reduce_ex__(5)[0]  # arrays pickled with protocol 5
_scalar = np.int64(0).__reduce__()[0]  # labels stored as numpy integers

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose ``find_class`` only returns the allow-listed globals above."""

    def __init__(self, file, source):
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self._source}: refused to unpickle the global {module}.{name}: a CIFAR-10 "
                "batch only needs numpy arrays, so the file may have been tampered with. "
                "Do not open it with plain pickle; reinstall the dataset from a trusted archive."
            ) from None

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self._source}: refused a persistent id in the pickle")


def load_pickle(f):
    """Unpickle a CIFAR-10 file object with the restricted unpickler (latin1 strings).

    Inputs:
    - f: a binary file object (its ``name``, when it has one, appears in error messages)

    Returns the unpickled object. Raises UnsafePickleError for any global a CIFAR-10 file
    does not need, CIFAR10FormatError when the bytes are not a pickle at all.
    """
    source = getattr(f, "name", "<stream>")
    try:
        return _RestrictedUnpickler(f, source).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, MemoryError) as exc:
        raise CIFAR10FormatError(
            f"{source}: not a readable pickle ({type(exc).__name__}: {exc})"
        ) from exc


def _missing(path, what, kind="a regular file"):
    problem = f"is not {kind}" if path.exists() else "not found"
    return FileNotFoundError(f"CIFAR-10 {what} {problem}: {path}. {INSTALL_HINT}")


def _check_path(value, name):
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a path (str or os.PathLike), got {type(value).__name__}")
    return Path(value)


def read_batch(filename, max_images=None, max_images_name="max_images"):
    """Read one batch file as stored, checked: the raw material of every loader here.

    Inputs:
    - filename: path of a CIFAR-10 batch file (``data_batch_k`` or ``test_batch``)
    - max_images: keep only the first max_images images (None: all of them)
    - max_images_name: how the caller's user knows max_images, for error messages

    Returns a tuple of:
    - data: (n, 3072) uint8, one image per row (channel, row, column order)
    - labels: (n,) int64 in 0..NUM_CLASSES-1
    """
    path = _check_path(filename, "filename")
    if max_images is not None:
        max_images = check_positive_int(max_images, max_images_name)
    if not path.is_file():
        raise _missing(path, "batch file")
    with open(path, "rb") as f:
        batch = load_pickle(f)

    if not isinstance(batch, dict):
        raise CIFAR10FormatError(
            f"{path}: expected a pickled dict with 'data' and 'labels', got {type(batch).__name__}"
        )
    # Python 2 wrote str keys; loading with encoding="bytes" elsewhere produces b"data".
    keys = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    for key in ("data", "labels"):
        if key not in keys:
            raise CIFAR10FormatError(
                f"{path}: expected the keys 'data' and 'labels', got {sorted(map(str, keys))}"
            )
    data, labels = keys["data"], keys["labels"]

    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8
            and data.ndim == 2 and data.shape[1] == ROW_SIZE):
        got = (f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray)
               else type(data).__name__)
        raise CIFAR10FormatError(f"{path}: 'data': expected a uint8 array of shape (n, {ROW_SIZE}), got {got}")
    n = data.shape[0]
    if n == 0:
        raise CIFAR10FormatError(f"{path}: 'data': expected at least one image, got 0")

    try:
        labels = np.asarray(labels)
    except (ValueError, TypeError) as exc:
        raise CIFAR10FormatError(f"{path}: 'labels': not a list of integers ({exc})") from exc
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise CIFAR10FormatError(
            f"{path}: 'labels': expected a 1-D sequence of integers, "
            f"got dtype {labels.dtype} and shape {labels.shape}"
        )
    if labels.shape[0] != n:
        raise CIFAR10FormatError(
            f"{path}: 'data' and 'labels': expected the same number of rows, "
            f"got {n} and {labels.shape[0]}"
        )
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise CIFAR10FormatError(
            f"{path}: 'labels': expected integers in 0..{NUM_CLASSES - 1}, "
            f"got values from {labels.min()} to {labels.max()}"
        )

    if max_images is not None:
        if max_images > n:
            raise ValueError(
                f"{max_images_name}: expected at most {n} (the images in {path.name}), "
                f"got {max_images}"
            )
        data, labels = data[:max_images], labels[:max_images]
    return data, labels.astype(np.int64)


def _to_channels_last(data):
    """(n, 3072) uint8 rows -> (n, 32, 32, 3) float64 images, as CS231N returns them."""
    return data.reshape((-1,) + IMAGE_SHAPE).transpose(0, 2, 3, 1).astype(np.float64)


def load_CIFAR_batch(filename, max_images=None):
    """Load one CIFAR-10 batch file (CS231N signature, plus ``max_images``).

    Inputs:
    - filename: path of ``data_batch_k`` or ``test_batch``
    - max_images: keep only the first max_images images (None: all n of the file)

    Returns a tuple of:
    - X: (n, 32, 32, 3) float64, pixel values 0..255, channels last
    - Y: (n,) int64 labels in 0..9
    """
    data, labels = read_batch(filename, max_images)
    return _to_channels_last(data), labels


def _read_split(root, images_per_batch):
    """Raw uint8 rows of the training batches (concatenated in order) and of the test batch."""
    root = Path(root)
    if not root.is_dir():
        raise _missing(root, "directory", kind="a directory")
    parts = [read_batch(root / name, images_per_batch, "images_per_batch")
             for name in TRAIN_BATCHES]
    train_data = np.concatenate([d for d, _ in parts])
    train_labels = np.concatenate([y for _, y in parts])
    test_data, test_labels = read_batch(root / TEST_BATCH, images_per_batch, "images_per_batch")
    return train_data, train_labels, test_data, test_labels


def load_CIFAR10(root, images_per_batch=None):
    """Load all of CIFAR-10 (CS231N signature, plus ``images_per_batch``).

    Inputs:
    - root: the ``cifar-10-batches-py`` directory
    - images_per_batch: read only the first images_per_batch images of EACH batch file
      (data_batch_1..5 and test_batch); None reads everything

    Returns a tuple of:
    - Xtr: (N_train, 32, 32, 3) float64, data_batch_1..5 concatenated in order
    - Ytr: (N_train,) int64
    - Xte: (N_test, 32, 32, 3) float64, test_batch
    - Yte: (N_test,) int64
    """
    root = _check_path(root, "root")
    if images_per_batch is not None:
        images_per_batch = check_positive_int(images_per_batch, "images_per_batch")
    train_data, Ytr, test_data, Yte = _read_split(root, images_per_batch)
    return _to_channels_last(train_data), Ytr, _to_channels_last(test_data), Yte


def get_CIFAR10_data(num_training=49000, num_validation=1000, num_test=1000,
                     subtract_mean=True, cifar10_dir=None, images_per_batch=None):
    """Load CIFAR-10 and split it for the classifiers (CS231N signature, plus two options).

    As in CS231N: X_train is rows [0, num_training) of the concatenated training batches,
    X_val rows [num_training, num_training + num_validation), X_test the first num_test
    test images. With subtract_mean the mean image of the returned X_train,
    ``mean_image = X_train.mean(axis=0)``, is subtracted from all three.

    Inputs:
    - num_training: int >= 1
    - num_validation, num_test: int >= 0
    - subtract_mean: bool
    - cifar10_dir: the ``cifar-10-batches-py`` directory (None: datasets/ of this project)
    - images_per_batch: read only the first images_per_batch images of each batch file.
      With images_per_batch=1000 the official data set and the 1000-per-batch sample give
      identical arrays (e.g. num_training=1000, num_validation=1000: train is the first
      1000 images of data_batch_1, val the first 1000 of data_batch_2).

    Returns a dict with
    - X_train: (num_training, 3, 32, 32), X_val: (num_validation, 3, 32, 32),
      X_test: (num_test, 3, 32, 32), all float64 and channels first
    - y_train, y_val, y_test: int64 label vectors of matching length

    Raises ValueError when more images are requested than the files hold.
    """
    num_training = check_positive_int(num_training, "num_training")
    num_validation = check_nonnegative_int(num_validation, "num_validation")
    num_test = check_nonnegative_int(num_test, "num_test")
    if not isinstance(subtract_mean, (bool, np.bool_)):
        raise TypeError(f"subtract_mean: expected a bool, got {type(subtract_mean).__name__}")
    root = DEFAULT_CIFAR10_DIR if cifar10_dir is None else _check_path(cifar10_dir, "cifar10_dir")
    if images_per_batch is not None:
        images_per_batch = check_positive_int(images_per_batch, "images_per_batch")

    train_data, train_labels, test_data, test_labels = _read_split(root, images_per_batch)
    where = f"{root}" + (f" with images_per_batch={images_per_batch}" if images_per_batch else "")
    if num_training + num_validation > len(train_data):
        raise ValueError(
            f"num_training + num_validation: expected at most {len(train_data)} (the training "
            f"images in {where}), got {num_training} + {num_validation} = "
            f"{num_training + num_validation}"
        )
    if num_test > len(test_data):
        raise ValueError(
            f"num_test: expected at most {len(test_data)} (the test images in {where}), "
            f"got {num_test}"
        )

    # Convert only the rows returned: the full training set in float64 is 1.2 GB.
    def images(rows):
        return rows.reshape((-1,) + IMAGE_SHAPE).astype(np.float64)

    val_end = num_training + num_validation
    data = {
        "X_train": images(train_data[:num_training]),
        "y_train": train_labels[:num_training].copy(),
        "X_val": images(train_data[num_training:val_end]),
        "y_val": train_labels[num_training:val_end].copy(),
        "X_test": images(test_data[:num_test]),
        "y_test": test_labels[:num_test].copy(),
    }
    if subtract_mean:
        mean_image = data["X_train"].mean(axis=0)
        for key in ("X_train", "X_val", "X_test"):
            data[key] -= mean_image
    return data
