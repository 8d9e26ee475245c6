"""The benchmark (instructor_tools.benchmarks.bench) keeps working: its correctness checks stop it on
a wrong layer before anything is timed, and a tiny timing pass (--quick) produces the
documented structure. Times are never asserted: they depend on the machine and its load.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

import cs231n.layers

from instructor_tools.benchmarks import bench, layer_cases, notebook_run, timing

ROOT = Path(__file__).resolve().parents[2]

try:
    import torch
    HAVE_TORCH = True
except ImportError:
    torch = None
    HAVE_TORCH = False

LAYER_LABELS = [row[0] for row in bench.LAYER_ROWS]
TRAIN_PREFIX = "train iteration"


def run_quick(tmp_path, *extra):
    """(results, markdown, stdout, stderr) of a --quick run in a fresh process, or the
    NotImplementedError that stopped it (see unwrap)."""
    out_json, out_md = tmp_path / "results.json", tmp_path / "results.md"
    proc = subprocess.run(
        [sys.executable, "-m", "instructor_tools.benchmarks.bench", "--quick",
         "--json", str(out_json), "--markdown", str(out_md), *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    if proc.returncode == 2 and "NotImplementedError" in proc.stderr:
        return NotImplementedError(proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stderr
    return json.loads(out_json.read_text()), out_md.read_text(), proc.stdout, proc.stderr


def unwrap(run):
    """In the student release the layers are stubs: each test that needs the run then fails
    with NotImplementedError in its own body (as every test of the release must), instead
    of the shared fixture erroring once for all of them."""
    if isinstance(run, Exception):
        raise run
    return run


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_quick(tmp_path_factory.mktemp("bench_quick"))


@pytest.fixture(scope="module")
def quick_without_torch(tmp_path_factory):
    return run_quick(tmp_path_factory.mktemp("bench_no_torch"), "--no-torch")


def expected_target(label, shape):
    if label.startswith("batchnorm bwd"):
        return bench.BACKWARD_SPEEDUP_TARGET
    if label.startswith("batchnorm fwd+bwd (simplified"):
        return bench.BN_TORCH_TARGETS.get(tuple(shape))
    if label.startswith("layernorm"):
        return 1.0
    if label.startswith("dropout"):
        return 0.5
    if label.startswith(TRAIN_PREFIX):
        return 1.0
    return None


def test_quick_run_has_one_row_per_case_and_shape(quick):
    results = unwrap(quick)[0]
    labels = [(r["case"], tuple(r["shape"])) for r in results["rows"]]
    expected = [(label, shape) for shape in bench.QUICK_SHAPES for label in LAYER_LABELS]
    assert labels[:-1] == expected
    assert labels[-1][0].startswith(TRAIN_PREFIX) and "float32" in labels[-1][0]
    assert labels[-1][1] == (50, 3072)
    assert results["notebooks"] == [] and results["notebooks_skipped"] == "--quick"
    assert results["repeats"] == 3


def test_quick_run_rows_are_consistent(quick):
    for row in unwrap(quick)[0]["rows"]:
        assert np.isfinite(row["numpy_ms"]) and row["numpy_ms"] > 0, row
        assert row["target"] == expected_target(row["case"], row["shape"]), row
        if row["case"].startswith(TRAIN_PREFIX):
            assert row["floor_ratio"] is None
        else:
            assert row["floor_ratio"] > 0, row
        if HAVE_TORCH or row["reference"] == "numpy staged bwd":
            assert row["reference_ms"] > 0, row
            np.testing.assert_allclose(row["ratio"], row["numpy_ms"] / row["reference_ms"],
                                       rtol=1e-12)
            assert row["met"] is (None if row["target"] is None
                                  else bool(row["ratio"] <= row["target"])), row


def test_quick_run_describes_machine_and_writes_markdown(quick):
    results, markdown, stdout, _ = unwrap(quick)
    machine = results["machine"]
    assert machine["description"] and machine["copy_bandwidth_gb_s"] > 0
    # The Makefile's environment is applied, whatever the caller's was.
    for name, value in bench.makefile_exports().items():
        if name.endswith("_NUM_THREADS"):
            assert f"{name}={value}" in machine["env"]
    for text in (markdown, stdout):
        assert "floor ratio" in text and "numpy ms" in text
        for label in LAYER_LABELS:
            assert label in text
    assert markdown.count("\n|") >= len(results["rows"]) + 1  # header, rule, one line per row


@pytest.mark.skipif(not HAVE_TORCH, reason="the torch side is only there with torch")
def test_quick_run_compares_against_torch(quick):
    results, _, stdout, _ = unwrap(quick)
    assert {r["reference"] for r in results["rows"]} == {"torch", "numpy staged bwd"}
    assert "PyTorch comparisons skipped" not in stdout


def test_without_torch_the_comparisons_say_skipped(quick_without_torch):
    results, markdown, stdout, _ = unwrap(quick_without_torch)
    assert results["torch_skipped"] == "disabled by --no-torch"
    assert "PyTorch comparisons skipped" in stdout and "PyTorch comparisons skipped" in markdown
    for row in results["rows"]:
        if row["reference"] == "numpy staged bwd":
            assert row["ratio"] > 0  # the numpy-only comparison still runs
        else:
            assert row["reference"] == "torch (skipped)"
            assert row["reference_ms"] is None and row["ratio"] is None and row["met"] is None


# ---------------------------------------------------------------------------
# The checks run before timing, and stop the benchmark on a wrong result
# ---------------------------------------------------------------------------


def _scaled(fn, index, factor):
    def wrong(*args):
        result = list(fn(*args))
        result[index] = result[index] * factor
        return tuple(result)
    return wrong


def _shifted_out(fn, delta):
    def wrong(*args):
        out, cache = fn(*args)
        return out + delta, cache
    return wrong


BROKEN = {
    "simplified_bn_dx_off_by_1e-6": (
        "batchnorm_backward_alt", _scaled(cs231n.layers.batchnorm_backward_alt, 0, 1 + 1e-6),
        False, "simplified vs staged backward dx"),
    "simplified_bn_dgamma_sign": (
        "batchnorm_backward_alt", _scaled(cs231n.layers.batchnorm_backward_alt, 1, -1.0),
        False, "dgamma"),
    "dropout_backward_forgets_mask": (
        "dropout_backward", lambda dout, cache: dout, False, "dx = dout * mask / p"),
    "layernorm_dgamma_off_by_1e-6": (
        "layernorm_backward", _scaled(cs231n.layers.layernorm_backward, 1, 1 + 1e-6),
        True, "layernorm"),
    "batchnorm_out_shifted_by_1e-7": (
        "batchnorm_forward", _shifted_out(cs231n.layers.batchnorm_forward, 1e-7),
        True, "vs torch: out"),
}


@pytest.mark.parametrize("name", BROKEN)
def test_a_wrong_layer_stops_the_benchmark_before_timing(name, monkeypatch, tmp_path, capsys):
    function, replacement, needs_torch, message = BROKEN[name]
    if needs_torch and not HAVE_TORCH:
        pytest.skip("this mismatch is only visible against torch")
    layer_cases.check_numpy(bench.QUICK_SHAPES[0])  # the real layers pass the checks
    if needs_torch:
        layer_cases.check_torch(torch, bench.QUICK_SHAPES[0])
    monkeypatch.setattr(cs231n.layers, function, replacement)
    timed = []
    monkeypatch.setattr(timing, "interleaved_medians", lambda *a: timed.append(a) or {})
    out_json = tmp_path / "results.json"
    args = ["--quick", "--json", str(out_json)] + ([] if needs_torch else ["--no-torch"])

    assert bench.main(args) == 2
    assert timed == [] and not out_json.exists()
    error = capsys.readouterr().err
    assert "correctness check failed, nothing timed" in error and message in error


@pytest.mark.parametrize("ours, theirs, scale, ok", [
    ([1.0, 2.0], [1.0, 2.0], None, True),
    ([1.0, 2.0 + 1e-11], [1.0, 2.0], None, True),
    ([1.0, 2.0 + 1e-8], [1.0, 2.0], None, False),
    ([np.nan], [1.0], None, False),
    ([1e-17], [-3e-17], None, False),    # rounding noise on its own scale: too strict
    ([1e-17], [-3e-17], 1.0, True),      # ... on the scale of what was summed: equal
    ([1.0, 2.0], [1.0, 2.0, 3.0], None, False),
], ids=["equal", "within_rtol", "beyond_rtol", "nan", "noise_own_scale",
        "noise_given_scale", "shape"])
def test_assert_close(ours, theirs, scale, ok):
    if ok:
        layer_cases.assert_close("case", np.array(ours), np.array(theirs), scale=scale)
    else:
        with pytest.raises(layer_cases.BenchmarkError, match="case"):
            layer_cases.assert_close("case", np.array(ours), np.array(theirs), scale=scale)


# ---------------------------------------------------------------------------
# Pieces: the Makefile's environment, timing, the notebook runner
# ---------------------------------------------------------------------------


def test_makefile_exports(tmp_path):
    makefile = tmp_path / "Makefile"
    makefile.write_text(
        "PYTHON ?= python3\n"
        "export OMP_NUM_THREADS := 1\n"
        "export MPLBACKEND := module://matplotlib_inline.backend_inline\n"
        "export PLAIN = 2\n"
        "export DERIVED := $(PYTHON)\n"
        "\texport INDENTED_RECIPE_LINE := 3\n"
        "bench: export MALLOC_MMAP_THRESHOLD_ := 268435456\n"
        "test: export ONLY_FOR_TEST := 1\n"
    )
    assert bench.makefile_exports(makefile) == {
        "OMP_NUM_THREADS": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "PLAIN": "2",
        "MALLOC_MMAP_THRESHOLD_": "268435456",
    }
    real = bench.makefile_exports()
    assert real["OPENBLAS_NUM_THREADS"] == "1" and real["OMP_NUM_THREADS"] == "1"


def test_interleaved_medians_times_every_function_in_every_round():
    calls = {"a": 0, "b": 0}

    def counter(name):
        def fn():
            calls[name] += 1
        return fn

    medians = timing.interleaved_medians({"a": counter("a"), "b": counter("b")}, 5, 0.0)
    assert set(medians) == {"a", "b"} and all(v >= 0 for v in medians.values())
    # warm-up 1 + calibration 3 + 5 rounds of one call each (min_sample_s = 0)
    assert calls == {"a": 9, "b": 9}


def test_notebook_rows_take_the_median_time_and_the_largest_memory(monkeypatch, tmp_path):
    (tmp_path / "BatchNormalization.ipynb").write_text("{}")
    (tmp_path / "Dropout.ipynb").write_text("{}")
    runs = {"BatchNormalization.ipynb": iter([(95.0, 400), (70.0, 420), (80.0, 390)]),
            "Dropout.ipynb": iter([RuntimeError("Dropout.ipynb failed (exit 1):\nboom")])}

    def fake_run(path, env):
        result = next(runs[Path(path).name])
        if isinstance(result, Exception):
            raise result
        return {"wall_s": result[0], "peak_rss_mib": result[1]}

    monkeypatch.setattr(bench, "ROOT", tmp_path)
    monkeypatch.setattr(bench.notebook_run, "run", fake_run)
    bn, dropout = bench.time_notebooks(3, lambda message: None)

    assert bn == {"notebook": "BatchNormalization.ipynb", "target_s": 90.0, "runs": 3,
                  "wall_s": 80.0, "peak_rss_mib": 420, "met": True, "error": None}
    assert dropout["wall_s"] is None and dropout["met"] is None
    assert dropout["error"].endswith("boom")
    header, body = bench.notebook_table([bn, dropout])
    assert body[0][-1] == "met"
    assert body[1][2] == "Dropout.ipynb failed (exit 1):"  # one line in the table


def test_a_missing_notebook_is_reported(monkeypatch, tmp_path):
    monkeypatch.setattr(bench, "ROOT", tmp_path)
    rows = bench.time_notebooks(1, lambda message: None)
    assert [r["error"] for r in rows] == ["not found", "not found"]


def test_notebook_runner_uses_a_copy_and_reports_time_and_memory(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import numpy as np\nx = np.ones((1000, 1000))\nprint(x.sum())"),
    ])
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    before = path.read_bytes()

    result = notebook_run.run(path, dict(os.environ))

    assert path.read_bytes() == before  # executed on a copy: no outputs written back
    assert set(result) == {"wall_s", "peak_rss_mib"}
    assert result["wall_s"] > 0
    assert result["peak_rss_mib"] > 8  # the kernel held an 8 MB array


def test_notebook_runner_reports_a_failing_cell(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")])
    path = tmp_path / "fails.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(RuntimeError, match="(?s)fails.ipynb failed.*ZeroDivisionError"):
        notebook_run.run(path, dict(os.environ))
