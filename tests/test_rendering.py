"""What the chat shows for a message: HTML as text, code untouched, indentation kept; verdicts,
earlier attempts and the workspace's lines."""

from chmocoder.ui.render import (
    answer_content,
    ask_text,
    latest_code,
    part_text,
    run_line,
    safe_markdown,
    to_chatbot,
    verdict_markdown,
)


def test_html_outside_code_is_escaped() -> None:
    shown = safe_markdown("Try <script>alert(1)</script> & <b>this</b>")
    assert "<script>" not in shown and "<b>" not in shown
    assert shown == "Try &lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;this&lt;/b&gt;"


def test_code_is_left_exactly_as_written() -> None:
    text = "Use `a < b` here:\n```html\n<div>\n    <b>x</b>\n</div>\n```\nthen <i>done</i>"
    shown = safe_markdown(text)
    assert "`a < b`" in shown and "```html\n<div>\n    <b>x</b>\n</div>\n```" in shown
    assert shown.endswith("then &lt;i&gt;done&lt;/i&gt;")


def test_an_unfinished_code_block_while_streaming_stays_code() -> None:
    streaming = "Here:\n```python\nif a < b:\n    print('<ok>')"
    assert safe_markdown(streaming) == streaming


def test_messages_become_text_parts_and_stopped_answers_are_marked() -> None:
    shown = to_chatbot(
        [{"role": "user", "content": "def f():\n    return 1"}, {"role": "assistant", "content": "Ok", "stopped": True}]
    )
    assert shown[0]["content"] == [{"type": "text", "text": "def f():\n    return 1"}]
    assert part_text(shown[1]["content"]) == "Ok\n\n*— stopped*"


def test_a_verdict_is_one_line_under_the_answer_and_a_failure_names_its_check() -> None:
    verified = {"status": "verified", "summary": "verified: 4/4 checks passed"}
    assert part_text(answer_content("Ok", verdict=verified)) == "Ok✅ verified: 4/4 checks passed"
    failed = {
        "status": "failed",
        "summary": "1 of 4 checks still fails after 2 repairs",
        "failing": {"check": "print(add(2, 3))  → 6", "detail": "expected 6, got 5"},
    }
    line = answer_content("Ok", verdict=failed)[-1]["text"]
    assert line == "❌ 1 of 4 checks still fails after 2 repairs: `print(add(2, 3)) → 6` — `expected 6, got 5`"
    skipped = {"status": "not_checked", "summary": "not checked: the answer has no Python code"}
    assert answer_content("Ok", verdict=skipped)[-1]["text"] == "ℹ️ not checked: the answer has no Python code"


def test_outside_words_in_a_verdict_stay_text() -> None:
    failing = {"check": "f('`') <b>", "detail": "Traceback:\n  <script>x</script>\nValueError: ```"}
    shown = verdict_markdown({"status": "failed", "summary": "1 of 1 checks fails <i>", "failing": failing})
    first, block = shown.split("\n\n", 1)
    assert first == "❌ 1 of 1 checks fails &lt;i&gt;: ``f('`') <b>``", "a code span long enough for its backticks"
    assert block.startswith("````\n") and block.endswith("\n````"), "a fence longer than any inside"


def test_earlier_attempts_are_collapsed_with_their_verdicts_and_a_cut_draft_is_closed() -> None:
    attempts = [
        {
            "content": "Try <b>this</b>:\n```python\nprint(1)  # Output: 2\n```",
            "verdict": {"summary": "1 of 1 checks fails"},
        },
        {"content": "- no code", "rejected": "it gave no Python code"},
        {"content": "Fixed:\n```python\nprint(", "stopped": True},
    ]
    first, unused, cut = (p["text"] for p in answer_content("Final", attempts=attempts)[1:])
    assert first.startswith('<details class="chmocoder-attempt"><summary>Earlier attempt 1 — 1 of 1 checks fails')
    assert "Try &lt;b&gt;this&lt;/b&gt;" in first and "print(1)  # Output: 2" in first
    assert first.endswith("</details>")
    assert "<summary>Attempt 2 — not used: it gave no Python code</summary>" in unused
    assert "<summary>Attempt 3 — stopped before it was checked</summary>" in cut
    assert "print(\n```\n\n</details>" in cut, "the cut code block is closed before the section ends"


def test_a_stored_answer_shows_stopped_then_verdict_then_attempts_and_streaming_shows_its_status() -> None:
    stored = {
        "role": "assistant",
        "content": "x",
        "stopped": True,
        "verdict": {"status": "failed", "summary": "1 of 1 checks fails"},
        "attempts": [{"content": "y", "stopped": True}],
    }
    parts = [p["text"] for p in to_chatbot([stored])[0]["content"]]
    assert parts[1] == "\n\n*— stopped*" and parts[2].startswith("❌") and parts[3].startswith("<details")
    streaming = answer_content("x", status="2 of 4 checks failed · fixing (round 1 of 2)")
    assert streaming[-1]["text"] == "*⏳ 2 of 4 checks failed · fixing (round 1 of 2)*"


def test_the_workspace_takes_the_latest_answers_python_and_asks_about_a_run() -> None:
    history = [
        {"role": "assistant", "content": "```python\nold()\n```"},
        {"role": "user", "content": "```python\nmine()\n```"},
        {
            "role": "assistant",
            "content": "A:\n```python\ndef f():\n    return 1\n```\n```\n>>> f()\n1\n```\n```js\nx\n```",
        },
    ]
    assert latest_code(history) == "def f():\n    return 1\n\nf()\n# 1"
    assert latest_code(history[:2] + [{"role": "assistant", "content": "No code."}]) == ""
    ok = {"stdout": "1\n", "stderr": "", "exit_code": 0, "status": "ok", "duration_s": 0.041, "message": ""}
    assert run_line(ok) == "✅ exit 0 · 0.04 s"
    assert ask_text("print(1)\n", ok) == "This prints:\n```\n1\n```\nfor this code:\n```python\nprint(1)\n```"
    error = ok | {"stdout": "", "stderr": "Traceback …\nZeroDivisionError: division by zero\n", "exit_code": 1}
    assert run_line(error | {"status": "error"}) == "❌ exit 1 · 0.04 s"
    asked = ask_text("1/0", error | {"status": "error"})
    assert asked.startswith("This fails with:\n```\nTraceback …\nZeroDivisionError: division by zero\n```\n")
    assert asked.endswith("for this code:\n```python\n1/0\n```")
    timeout = ok | {"stdout": "", "exit_code": None, "status": "timeout", "message": "stopped after the 5 s time limit"}
    assert run_line(timeout) == "⚠️ stopped after the 5 s time limit · 0.04 s"
    assert "```\nstopped after the 5 s time limit\n```" in ask_text("while True: pass", timeout)
