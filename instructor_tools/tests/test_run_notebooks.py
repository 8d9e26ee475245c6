"""`make notebooks` (student_tools.run_notebooks): progress, all or nothing, tidy stream outputs.

The kernel tests run tiny notebooks made here, never the real ones (those take minutes)."""
import copy
import io

import nbformat
import pytest
from hypothesis import given, settings, strategies as st
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from nbval.plugin import coalesce_streams
from tqdm import tqdm

from student_tools.run_notebooks import final_text, main, tidy_outputs, write_all

BAR = "{desc} |{bar:10}| {n_fmt}/{total_fmt}"  # the notebooks' progress bar, narrower


def stream(name, text):
    return new_output("stream", name=name, text=text)


def write_notebook(path, *cells):
    """A notebook of the given cells: a string is a code cell, new_markdown_cell(...) text."""
    nb = new_notebook(cells=[new_code_cell(c) if isinstance(c, str) else c for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


def streams_of(path):
    """Per code cell, its outputs as (name, text) for streams, the output type otherwise."""
    nb = nbformat.read(path, as_version=4)
    return [[(o.name, o.text) if o.output_type == "stream" else o.output_type for o in c.outputs]
            for c in nb.cells if c.cell_type == "code"]


# --- tidying, without a kernel ---------------------------------------------------------------

def test_merges_consecutive_streams_of_one_name_only():
    outs = [stream("stdout", "a\n"), stream("stdout", "b\n"), stream("stderr", "w\n"),
            stream("stderr", "x\n"), stream("stdout", "c"), new_output("display_data"),
            stream("stdout", "d\n")]
    assert [(o.get("name"), o.get("text")) for o in tidy_outputs(outs)] == [
        ("stdout", "a\nb\n"), ("stderr", "w\nx\n"), ("stdout", "c"), (None, None),
        ("stdout", "d\n")]


@pytest.mark.parametrize("raw, shown", [
    ("\rbar 0/3\rbar 1/3\rbar 3/3\rbar 3/3\n", "bar 3/3\n"),
    ("\x1b[1mdone\x1b[0m 80%\b\b\b99%\n", "done 99%\n"),
    ("\x1b[31mred\x1b[0m plain\n", "red plain\n"),
    ("old line\x1b[2K\rnew\n", "new\n"),
    ("keep this\rab\x1b[K\n", "ab\n"),
    ("one\ntwo\x1b[A\rONE\x1b[B\rTWO\n", "ONE\nTWO\n"),
    ("abc\x1b[A\x1b[Ad\n", "abcd\n"),
], ids=["carriage-returns", "backspaces", "colours", "erase-line", "erase-to-end", "up-down",
        "up-past-the-top"])
def test_final_text(raw, shown):
    assert final_text(raw) == shown


def test_interrupted_tqdm_bar_leaves_no_escape_sequences():
    """A bar left open (a cell stopped by an error or Ctrl-C) pushes the next one to position 1:
    tqdm then moves the cursor with ESC [ A. The stored text is what a terminal shows."""
    out = io.StringIO()
    left_open = iter(tqdm(range(3), desc="stopped", file=out, bar_format=BAR, mininterval=0))
    next(left_open)
    out.seek(0), out.truncate()  # that bar drew in an earlier cell
    for _ in tqdm(range(2), desc="next", file=out, bar_format=BAR, mininterval=0):
        pass
    raw = out.getvalue()
    assert "\x1b[A" in raw
    assert final_text(raw) == "next |##########| 2/2\nnext |##########| 2/2"
    left_open.close()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.tuples(st.sampled_from(["stdout", "stderr"]),
                                    st.text(alphabet="ab \n\r\x08", max_size=12)),
                          st.just(None)), max_size=6))
def test_nbval_sees_the_same_text_in_tidied_and_raw_outputs(pieces):
    """nbval compares a stored output with a new run's raw one, both through its own
    coalesce_streams: tidying the stored one must not change what nbval sees."""
    outs = [new_output("display_data") if p is None else stream(*p) for p in pieces]
    raw = coalesce_streams(copy.deepcopy(outs))
    assert coalesce_streams(tidy_outputs(copy.deepcopy(outs))) == raw


# --- with a kernel ---------------------------------------------------------------------------

CHUNKED = """\
import random, sys
for part in "first", "second":
    flush_at = set(random.sample(range(20), 5))  # where the kernel cuts the text: each run its own
    for i in range(20):
        print(f"{part} {i}", flush=i in flush_at)
    sys.stdout.flush()
    if part == "first":
        print("between", file=sys.stderr, flush=True)"""
TQDM = f"""\
from tqdm import tqdm
for _ in tqdm(range(5), desc="bar", file=sys.stdout, bar_format="{BAR}", mininterval=0, miniters=1):
    pass"""


@pytest.mark.slow
def test_two_runs_write_the_same_file(tmp_path, capsys):
    """Printed in pieces cut at random places, stored as one merged output: a second run writes
    byte for byte the same file. Without the merge the pieces, and so the file, differ."""
    nb = write_notebook(tmp_path / "chunks.ipynb", new_markdown_cell("# Chunks"), CHUNKED, TQDM)
    assert main([str(nb)]) == 0
    first = nb.read_bytes()
    assert main([str(nb)]) == 0
    assert nb.read_bytes() == first
    chunked, bar = streams_of(nb)
    assert chunked == [("stdout", "".join(f"first {i}\n" for i in range(20))),
                       ("stderr", "between\n"),
                       ("stdout", "".join(f"second {i}\n" for i in range(20)))]
    assert bar == [("stdout", "bar |" + "█" * 10 + "| 5/5\n")]
    assert "\x1b" not in first.decode() and "\\r" not in first.decode()
    progress = capsys.readouterr().out
    assert 'chunks.ipynb: cell 1 of 2 "Chunks" | import random, sys' in progress
    assert "chunks.ipynb: cell 2 of 2" in progress


@pytest.mark.slow
def test_a_failing_cell_changes_no_notebook(tmp_path, capsys):
    """The first notebook runs, the second fails: neither file changes (nbconvert --inplace
    had rewritten the first), the exit status is 1 and the message names the cell."""
    good = write_notebook(tmp_path / "good.ipynb", "print('fine')")
    bad = write_notebook(tmp_path / "bad.ipynb", new_markdown_cell("# Part A"), "x = 1",
                         new_markdown_cell("Text.\n\n## Part B: the broken one\n\nMore."),
                         "\n# the step that fails\nraise ValueError('boom')")
    before = {p: p.read_bytes() for p in (good, bad)}
    assert main([str(good), str(bad)]) == 1
    assert {p: p.read_bytes() for p in (good, bad)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.ipynb", "good.ipynb"]
    out, err = capsys.readouterr()
    assert "good.ipynb: cell 1 of 1" in out and "bad.ipynb: cell 2 of 2" in out
    assert ('FAILED at bad.ipynb: cell 2 of 2 "Part B: the broken one" | # the step that fails'
            in err)
    assert "ValueError" in err and "no notebook was changed" in err


def test_write_all_writes_what_nbconvert_wrote_keeping_the_mode(tmp_path):
    """Through student_tools.atomic: the file's mode stays, no temporary file is left, and
    the bytes are nbconvert --inplace's (the notebook's JSON and a final newline)."""
    path = write_notebook(tmp_path / "private.ipynb", "x = 1")
    path.chmod(0o600)
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source = "x = 2"
    write_all([(path, nb)])
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text(encoding="utf-8") == nbformat.writes(nb) + "\n"
    assert [p.name for p in tmp_path.iterdir()] == ["private.ipynb"]
