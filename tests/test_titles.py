"""Chat titles read as a person would name the chat: plain text, not pasted code or Markdown marks."""

from __future__ import annotations

import pytest

from chmocoder.titles import TITLE_CHARS, title_from


@pytest.mark.parametrize(
    ("question", "title"),
    [
        # Before: "```python def average(xs): return sum(xs) / len(xs) ``` Why does…"
        (
            "```python\ndef average(xs):\n    return sum(xs) / len(xs)\n```\nWhy does this fail on []?",
            "Why does this fail on []?",
        ),
        ("## **Bug**: my `sort` fails\nDetails follow.", "Bug: my sort fails"),
        ("> see [the docs](https://example.com) first", "see the docs first"),
        ("1. Write a fizzbuzz\n2. Test it", "Write a fizzbuzz"),
        ("---\n\n   \n- *why* is `x` None?", "why is x None?"),
        ("rename snake_case_name and compute 2*3*4", "rename snake_case_name and compute 2*3*4"),
        ("```python\nimport os\n\nprint(os.getcwd())\n```", "import os"),
        ("```python def aver(xs): pass\n```", "def aver(xs): pass"),
        ("```\n\n```", "New chat"),
    ],
)
def test_a_title_is_the_first_line_of_plain_text(question: str, title: str) -> None:
    assert title_from(question) == title


def test_a_long_first_line_is_cut_with_an_ellipsis() -> None:
    title = title_from("Explain " + "very " * 30 + "slowly")
    assert len(title) == TITLE_CHARS and title.endswith("…") and title.startswith("Explain very")
