"""What a person sees, in Debian's Chromium driven by playwright, against a live app with the test model."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gradio_client import Client
from playwright.sync_api import Browser, Page, expect, sync_playwright

from .conftest import LiveServer

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CODE_MESSAGE = (
    "Explain this code:\n```python\ndef walk(tree):\n    for node in tree:\n"
    "        if node.children:\n            walk(node.children)\n```"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(start_server: Callable[..., LiveServer], redis_server) -> LiveServer:
    # Long answers, so that there is something to stop.
    return start_server(redis_server.url, max_new_tokens="400")


@pytest.fixture()
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def bubbles(page: Page, role: str):
    return page.locator(f"#chmocoder-chat .message-row.{role}-row")


def send(page: Page, text: str) -> None:
    box = page.locator("#chmocoder-input textarea")
    box.fill(text)
    box.press("Enter")


def wait_for_answer(page: Page) -> None:
    expect(page.locator("#chmocoder-stats")).to_contain_text("tokens", timeout=60_000)


def test_answer_streams_and_code_keeps_its_indentation(page: Page, server: LiveServer, artifacts: Path) -> None:
    page.goto(server.url)
    send(page, CODE_MESSAGE)
    expect(bubbles(page, "user")).to_have_count(1)
    lengths = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "tokens" not in page.locator("#chmocoder-stats").inner_text():
        if bubbles(page, "bot").count():
            lengths.add(len(bubbles(page, "bot").last.inner_text()))
        time.sleep(0.05)
    page.screenshot(path=str(artifacts / "01-answer.png"))
    assert len([n for n in lengths if n > 0]) >= 3, f"the answer should appear piece by piece, saw {lengths}"
    code = bubbles(page, "user").first.locator("pre code").inner_text()
    assert "    for node in tree:\n        if node.children:\n            walk(node.children)" in code


def test_reload_restores_the_chat(page: Page, server: LiveServer, artifacts: Path) -> None:
    page.goto(server.url)
    send(page, "Write a Python one-liner that squares a list.")
    wait_for_answer(page)
    answer = bubbles(page, "bot").last.inner_text()
    page.reload()
    expect(bubbles(page, "bot")).to_have_count(1, timeout=15_000)
    assert bubbles(page, "bot").last.inner_text() == answer
    expect(bubbles(page, "user").first).to_contain_text("squares a list")
    page.screenshot(path=str(artifacts / "02-after-reload.png"))
    page.get_by_role("button", name="New chat").click()
    expect(bubbles(page, "user")).to_have_count(0)
    page.reload()
    page.wait_for_timeout(1500)
    expect(bubbles(page, "user")).to_have_count(0)


def test_stop_keeps_the_partial_answer(page: Page, server: LiveServer, artifacts: Path) -> None:
    page.goto(server.url)
    send(page, "Write a long, detailed tutorial about Python decorators with many examples.")
    expect(bubbles(page, "bot")).to_have_count(1, timeout=30_000)
    page.wait_for_timeout(700)
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#chmocoder-stats")).to_have_text("Stopped.", timeout=15_000)
    expect(bubbles(page, "bot").last).to_contain_text("— stopped")
    page.screenshot(path=str(artifacts / "03-stopped.png"))
    # The model is free at once: the next question is answered.
    send(page, "Say hello.")
    wait_for_answer(page)
    expect(bubbles(page, "bot")).to_have_count(2)


def test_chat_links_open_that_chat_and_unknown_ids_get_a_notice(
    page: Page, server: LiveServer, artifacts: Path
) -> None:
    client = Client(server.url, verbose=False)
    chat_id = client.predict("review", "expert", api_name="/new_chat")
    client.submit(chat_id, "Review: `x = [i for i in range(10) if i % 2 == 0]`", api_name="/chat").result()
    page.goto(f"{server.url}?chat={chat_id}")
    expect(bubbles(page, "user").first).to_contain_text("Review:", timeout=15_000)
    expect(page.get_by_role("combobox", name="Task")).to_have_value("Review code")
    expect(page.get_by_role("combobox", name="Level")).to_have_value("Expert")
    page.goto(f"{server.url}?chat=not-a-real-chat-id")
    expect(page.locator("#chmocoder-notice")).to_contain_text("expired or does not exist", timeout=15_000)
    expect(bubbles(page, "user")).to_have_count(0)
    page.screenshot(path=str(artifacts / "04-unknown-chat.png"))


def test_refused_message_stays_in_the_box(page: Page, server: LiveServer, artifacts: Path) -> None:
    page.goto(server.url)
    page.wait_for_timeout(1000)
    huge = "y" * 40_000
    page.locator("#chmocoder-input textarea").fill(huge)
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("the limit is 32,000")).to_be_visible(timeout=10_000)
    assert page.locator("#chmocoder-input textarea").input_value() == huge
    expect(bubbles(page, "user")).to_have_count(0)
    page.screenshot(path=str(artifacts / "05-refused.png"))
