"""Execute notebooks in place, printing progress: what `make notebooks` runs.

    python -m student_tools.run_notebooks BatchNormalization.ipynb Dropout.ipynb

Each notebook runs in a fresh kernel through nbconvert's ExecutePreprocessor, as
`jupyter nbconvert --to notebook --execute --inplace` would (kernel in the notebook's folder,
no timing metadata, TIMEOUT_S per cell), but: it prints "NOTEBOOK: cell i of n" as each code
cell starts; it writes the files only when every notebook ran (on a failure, exit status 1
and a message naming the notebook, the cell's section and first line); and it tidies
streams (``tidy_outputs``): the kernel cuts printed text into messages by timing and
progress bars leave carriage returns and escape sequences, so a second run changed the
files. Stored: consecutive stdout (stderr) pieces as one output, the text as it shows.
"""
import re
import stat
import sys
import time
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ExecutePreprocessor

from student_tools import contract
from student_tools.atomic import write_atomic

TIMEOUT_S = 1800  # per cell, as the Makefile gave nbconvert

# nbval's rule (nbval.plugin.coalesce_streams), so that nbval sees the same text in a tidied
# stored output as in a new run's raw one: a carriage return followed by more text on its line
# starts the line anew. (nbval's backspace rule never fires, so backspaces are left alone.)
_CARRIAGE_RETURN = re.compile(r"^.*\r(?=[^\n])", re.MULTILINE)
# Text with escape sequences, cut into: ESC [ params letter, another escape, \n \r \b, plain text.
_TOKEN = re.compile(r"\x1b\[([0-9;?]*)([@-~])|\x1b.?|[\n\r\x08]|[^\x1b\n\r\x08]+", re.DOTALL)


def _terminal(text):
    """What a terminal shows after `text`, played on a model screen: newline, carriage
    return, backspace, cursor up and down (CSI A, B), erase in line (CSI K), writing
    overwrites; other sequences (colours too) are dropped: no escape character is left."""
    lines, row, col = [""], 0, 0
    for m in _TOKEN.finditer(text):
        tok, cmd = m.group(), m.group(2)
        n = int(m.group(1).split(";")[0]) if cmd and m.group(1)[:1].isdigit() else None
        if tok == "\n":
            row, col = row + 1, 0
        elif tok == "\r":
            col = 0
        elif tok == "\x08":
            col = max(col - 1, 0)
        elif cmd in ("A", "B"):
            row = max(row + (n or 1) * (1 if cmd == "B" else -1), 0)
        elif cmd == "K":  # 0: to the end of the line, 1: to its start, 2: the whole line
            line = lines[row]
            lines[row] = {1: " " * (col + 1) + line[col + 1:], 2: ""}.get(n, line[:col])
        elif not tok.startswith("\x1b"):
            line = lines[row].ljust(col)
            lines[row] = line[:col] + tok + line[col + len(tok):]
            col += len(tok)
        lines.extend("" for _ in range(row + 1 - len(lines)))
    return "\n".join(lines)


def final_text(text):
    """The text a stream shows once every redraw is done. Without escape sequences, nbval's
    rule: it shows what a terminal does when each redraw is at least as long as the line it
    replaces (tqdm pads so); with them, a model terminal (nbval cannot match those anyway)."""
    return _terminal(text) if "\x1b" in text else _CARRIAGE_RETURN.sub("", text)


def tidy_outputs(outputs):
    """Merge consecutive stream outputs of one name (stdout, stderr) and give each its final
    text. How the kernel split the text depends on timing; the merged text does not."""
    merged = []
    for out in outputs:
        if merged and out.output_type == merged[-1].output_type == "stream" \
                and merged[-1].name == out.name:
            merged[-1].text += out.text
        else:
            merged.append(out)
    mid_line = set()  # names whose text so far stops inside a line (e.g. a bar, then a plot)
    for out in (o for o in merged if o.output_type == "stream"):
        raw = out.text
        if out.name in mid_line and "\x1b" not in raw:
            # nbval joins all of a cell's stdout (or stderr): this first line continues the
            # earlier piece's last one there, so its carriage returns stay for nbval to apply.
            head, newline, rest = raw.partition("\n")
            out.text = head + newline + final_text(rest)
        else:
            out.text = final_text(raw)
        if raw.endswith("\n"):
            mid_line.discard(out.name)
        elif raw:
            mid_line.add(out.name)
    return merged


def describe(nb, index):
    """'"<section heading>" | <first line>' of cell `index`, to say where a run is or failed."""
    heading = contract.headings(nb)[index] or "(no heading)"
    first = next((line.strip() for line in nb.cells[index].source.splitlines() if line.strip()),
                 "(empty cell)")
    return f'"{heading}" | {first[:90]}'


class ProgressExecutor(ExecutePreprocessor):
    """nbconvert's executor, saying which cell starts and tidying each cell's outputs."""

    def __init__(self, name, **kw):
        super().__init__(timeout=TIMEOUT_S, record_timing=False, **kw)
        self.name, self.where = name, None  # where: the cell running now, for the error message

    def preprocess(self, nb, resources=None, km=None):
        code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
        self.numbers = {index: k for k, index in enumerate(code, 1)}
        self.started = time.monotonic()
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        self.where = (f"{self.name}: cell {self.numbers[index]} of {len(self.numbers)} "
                      f"{describe(self.nb, index)}")
        print(f"[{time.monotonic() - self.started:4.0f} s] {self.where}", flush=True)
        cell, resources = super().preprocess_cell(cell, resources, index)
        cell.outputs = tidy_outputs(cell.outputs)
        return cell, resources


def write_all(executed):
    """Write each (path, notebook) as nbconvert --inplace does: atomically, mode kept."""
    for path, nb in executed:
        write_atomic(path, nbformat.writes(nb) + "\n", mode=stat.S_IMODE(path.stat().st_mode))


def main(argv=None):
    """Execute the notebooks named in argv; write them only if all of them ran. Exit status:
    0 written, 1 a cell (or its kernel) failed, 2 bad arguments: nothing written then."""
    paths = [Path(p) for p in (sys.argv[1:] if argv is None else argv)]
    if not paths:
        print("usage: python -m student_tools.run_notebooks NOTEBOOK.ipynb ...", file=sys.stderr)
        return 2
    try:
        notebooks = [nbformat.read(path, as_version=4) for path in paths]
    except (OSError, ValueError) as err:
        print(f"run_notebooks: cannot read a notebook: {err}", file=sys.stderr)
        return 2
    for path, nb in zip(paths, notebooks):
        print(f"{path.name}: starting a kernel", flush=True)
        executor = ProgressExecutor(path.name)
        try:
            executor.preprocess(nb, {"metadata": {"path": str(path.resolve().parent)}})
        except Exception as err:  # a cell's error, a timeout, a kernel that died or never started
            failed = f"run_notebooks: FAILED at {executor.where or path.name + ' (no cell yet)'}"
            print(f"\n{failed}\n{err}\n\n{failed}\nrun_notebooks: no notebook was changed",
                  file=sys.stderr)
            return 1
        print(f"{path.name}: all cells ran ({time.monotonic() - executor.started:.0f} s)",
              flush=True)
    write_all(list(zip(paths, notebooks)))
    print("run_notebooks: wrote " + ", ".join(str(p) for p in paths), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
