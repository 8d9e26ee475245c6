"""The answer-region scanner shared by the submission packer and the grader."""
import pytest

from student_tools.markers import ANSWER_BEGIN as B, ANSWER_END as E, answer_blocks


@pytest.mark.parametrize("cell, expected", [
    (f"Q\n{B}\n  my answer \n{E}\n", [("answer", 4, "my answer")]),
    (f"{B}\n{E}", [("answer", 2, "")]),
    (f"{B}\nold\n  {B}  \nnew\n{E}", [("begin_twice", 3, None), ("answer", 5, "new")]),
    (f"text\n{E}", [("end_without_begin", 2, None)]),
    (f"{B}\nhalf", [("unclosed", 1, None)]),
    (f"{B}\na\n{E}\n{B}\nb\n{E}", [("answer", 3, "a"), ("answer", 6, "b")]),
    ("no markers at all", []),
], ids=["one", "empty", "begin-twice", "end-alone", "unclosed", "two", "none"])
def test_answer_blocks(cell, expected):
    assert list(answer_blocks(cell)) == expected
