"""What the chat shows for a message: HTML as text, code untouched, indentation kept."""

from chmocoder.ui.render import part_text, safe_markdown, to_chatbot


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
