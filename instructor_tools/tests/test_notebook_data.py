"""The notebooks print the same numbers with the full CIFAR-10 files as with the sample.

The sample (../shared/datasets, installed by make into datasets/) holds the first 1000
images of each official batch; the official files hold 10,000. The notebooks call
get_CIFAR10_data with images_per_batch, so only the first images of each file count. Here a
"full" copy is made from the installed data: each batch file gets extra images appended
(more than 1000 per batch, as in the official files), and the notebooks' own call must give
arrays identical to the ones it gives on the sample.
"""
import ast
import os
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from cifar_archives import BATCH_NAMES, batch_bytes
from cs231n.data_utils import get_CIFAR10_data, read_batch

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ("BatchNormalization.ipynb", "Dropout.ipynb")
INSTALLED = ROOT / "datasets" / "cifar-10-batches-py"
CALL_RE = re.compile(r"get_CIFAR10_data\([^()]*\)")


def notebook_calls(name):
    """The keyword arguments of every get_CIFAR10_data(...) call in a notebook's code."""
    nb = nbformat.read(ROOT / name, as_version=4)
    calls = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for text in CALL_RE.findall(cell.source):
            call = ast.parse(text, mode="eval").body
            assert not call.args, f"{name}: {text}: positional arguments; use keywords"
            calls.append({kw.arg: ast.literal_eval(kw.value) for kw in call.keywords})
    return calls


@pytest.fixture(scope="module")
def sample_dir():
    if not (INSTALLED / "data_batch_1").is_file():
        message = f"CIFAR-10 is not installed in {INSTALLED} (make data)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return INSTALLED


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_the_notebook_loads_a_fixed_number_of_images_per_batch(name):
    calls = notebook_calls(name)
    assert calls, f"{name} never calls get_CIFAR10_data"
    for kwargs in calls:
        # Without images_per_batch the full files would give other training images.
        assert kwargs.get("images_per_batch") == 1000, kwargs
        assert "cifar10_dir" not in kwargs, kwargs


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_full_batch_files_give_the_notebooks_the_same_arrays(name, sample_dir, tmp_path):
    rng = np.random.default_rng(0)
    full_dir = tmp_path / "cifar-10-batches-py"
    full_dir.mkdir()
    for batch in BATCH_NAMES:
        data, labels = read_batch(sample_dir / batch)
        assert len(labels) <= 1000, f"{batch} already holds {len(labels)} images"
        extra = 1500  # more than the notebooks read, so reading too far shows
        more = rng.integers(0, 256, size=(extra, data.shape[1]), dtype=np.uint8)
        more_labels = rng.integers(0, 10, size=extra).tolist()
        (full_dir / batch).write_bytes(
            batch_bytes(np.concatenate([data, more]), list(labels) + more_labels))
    (full_dir / "batches.meta").write_bytes((sample_dir / "batches.meta").read_bytes())

    for kwargs in notebook_calls(name):
        from_sample = get_CIFAR10_data(**kwargs, cifar10_dir=sample_dir)
        from_full = get_CIFAR10_data(**kwargs, cifar10_dir=full_dir)
        assert from_sample.keys() == from_full.keys()
        for key in from_sample:
            np.testing.assert_array_equal(from_full[key], from_sample[key], err_msg=key)
