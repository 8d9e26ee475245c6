"""The rubric: a TOML data file (rubric.toml) of graded items, read with tomllib."""
import hashlib
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from instructor_tools.grade.hidden.tests import TESTS

DEFAULT_RUBRIC = Path(__file__).with_name("rubric.toml")


@dataclass(frozen=True)
class Item:
    id: str
    title: str
    points: float
    tests: tuple
    check: str


@dataclass(frozen=True)
class Rubric:
    items: tuple
    digest: str  # sha256 of the file: a changed rubric re-grades everything

    @property
    def max_score(self):
        return sum(item.points for item in self.items)

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
    return Rubric(tuple(items), hashlib.sha256(raw).hexdigest())
