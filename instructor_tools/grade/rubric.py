"""The rubric: a TOML data file (rubric.toml), read with tomllib.

Two parts: ``[[item]]`` tables, the code graded by the hidden tests, and ``[[written]]``
tables, the written answers (inline questions and derivations) graded by people. The
written part is kept out of ``code_digest``, the digest a cached code result must match:
changing a written question's points or guide never re-runs anyone's code.
"""
import hashlib
import json
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from instructor_tools.grade.hidden.tests import TESTS
from student_tools.contract import NOTEBOOKS

DEFAULT_RUBRIC = Path(__file__).with_name("rubric.toml")


@dataclass(frozen=True)
class Item:
    id: str
    title: str
    points: float
    tests: tuple
    check: str


@dataclass(frozen=True)
class Written:
    """One written question: the answer region under ``heading`` in ``notebook``."""
    id: str
    notebook: str
    heading: str
    points: float
    guide: str


@dataclass(frozen=True)
class Rubric:
    items: tuple
    digest: str  # sha256 of the whole file (items and written questions)
    written: tuple = ()
    code_digest: str = ""  # sha256 of the items only: what decides cached code results

    @property
    def max_score(self):
        return sum(item.points for item in self.items)

    @property
    def written_max(self):
        return sum(question.points for question in self.written)

    @property
    def tests(self):
        """Every hidden test the rubric needs, in rubric order, once each."""
        return list(dict.fromkeys(t for item in self.items for t in item.tests))

    @property
    def checks(self):
        return list(dict.fromkeys(item.check for item in self.items if item.check))


def load_rubric(path=DEFAULT_RUBRIC):
    """Read and validate a rubric file; ValueError names the item and field at fault."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"rubric {path}: not valid TOML: {exc}") from None
    entries = data.get("item")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"rubric {path}: expected a list of [[item]] tables, got "
                         f"{type(entries).__name__}")
    items, seen = [], set()
    for n, entry in enumerate(entries, start=1):
        where = f"rubric {path}, item {n}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected a table, got {type(entry).__name__}")
        unknown = set(entry) - {"id", "title", "points", "tests", "check"}
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}")
        item_id = entry.get("id")
        if not isinstance(item_id, str) or not item_id.isidentifier():
            raise ValueError(f"{where}: id: expected an identifier, got {item_id!r}")
        if item_id in seen:
            raise ValueError(f"{where}: id {item_id!r} appears twice")
        seen.add(item_id)
        points = entry.get("points")
        if isinstance(points, bool) or not isinstance(points, (int, float)) or not (
                math.isfinite(points) and points >= 0):
            raise ValueError(f"{where} ({item_id}): points: expected a number >= 0, got "
                             f"{points!r}")
        tests = entry.get("tests")
        if not isinstance(tests, list) or not tests or not all(isinstance(t, str) for t in tests):
            raise ValueError(f"{where} ({item_id}): tests: expected a non-empty list of test "
                             f"names, got {tests!r}")
        missing = [t for t in tests if t not in TESTS]
        if missing:
            raise ValueError(f"{where} ({item_id}): tests: unknown test(s) {missing}; known: "
                             f"{sorted(TESTS)}")
        check = entry.get("check", "")
        if not isinstance(check, str):
            raise ValueError(f"{where} ({item_id}): check: expected a piece name, got {check!r}")
        items.append(Item(item_id, str(entry.get("title", item_id)), points, tuple(tests),
                          check))
    written = _load_written(path, data.get("written", []))
    code = json.dumps([item.__dict__ for item in items], sort_keys=True).encode("utf-8")
    return Rubric(tuple(items), hashlib.sha256(raw).hexdigest(), written,
                  hashlib.sha256(code).hexdigest())


WRITTEN_FIELDS = ("id", "notebook", "heading", "points", "guide")
_WRITTEN_ID = re.compile(r"[a-z0-9_]+")


def _load_written(path, entries):
    """The [[written]] tables as a tuple of Written; ValueError names the entry and field."""
    if not isinstance(entries, list):
        raise ValueError(f"rubric {path}: written: expected a list of [[written]] tables, got "
                         f"{type(entries).__name__}")
    written, ids, places = [], set(), set()
    for n, entry in enumerate(entries, start=1):
        where = f"rubric {path}, written {n}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected a table, got {type(entry).__name__}")
        unknown = set(entry) - set(WRITTEN_FIELDS)
        missing = [f for f in WRITTEN_FIELDS if f not in entry]
        if unknown or missing:
            raise ValueError(f"{where}: " + "; ".join(
                filter(None, [unknown and f"unknown field(s) {sorted(unknown)}",
                              missing and f"missing field(s) {missing}"])))
        qid = entry["id"]
        if not isinstance(qid, str) or not _WRITTEN_ID.fullmatch(qid):
            raise ValueError(f"{where}: id: expected lower-case letters, digits and _, got "
                             f"{qid!r}")
        where += f" ({qid})"
        if qid in ids:
            raise ValueError(f"{where}: id {qid!r} appears twice")
        ids.add(qid)
        if entry["notebook"] not in NOTEBOOKS:
            raise ValueError(f"{where}: notebook: expected one of {list(NOTEBOOKS)}, got "
                             f"{entry['notebook']!r}")
        heading = entry["heading"]
        if not isinstance(heading, str) or not heading.strip() or heading != heading.strip():
            raise ValueError(f"{where}: heading: expected the heading's text as the notebook "
                             f"shows it (no #, no surrounding spaces), got {heading!r}")
        if (entry["notebook"], heading) in places:
            raise ValueError(f"{where}: {entry['notebook']} {heading!r} has two [[written]] "
                             f"entries")
        places.add((entry["notebook"], heading))
        points = entry["points"]
        if isinstance(points, bool) or not isinstance(points, (int, float)) or not (
                math.isfinite(points) and points > 0):
            raise ValueError(f"{where}: points: expected a number > 0, got {points!r}")
        if not isinstance(entry["guide"], str) or not entry["guide"].strip():
            raise ValueError(f"{where}: guide: expected a non-empty grading guide for the TAs")
        written.append(Written(qid, entry["notebook"], heading, points, entry["guide"].strip()))
    return tuple(written)
