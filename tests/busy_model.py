"""Another user keeps the model busy: a script writing a long essay until the test cancels it.

Shared by the tests that need the model's queue occupied (the page's queue position, reads that must
not wait for the model). A script rather than a browser: a page drawing the streamed essay competes
with the model for these 2 cores and slows everything the test then waits for.
"""

from __future__ import annotations

import time

import httpx
from gradio_client import Client
from gradio_client.client import Job

from .live_server import LiveServer

# The test model writes this essay, and most long answers, until it reaches the token limit. Answers a
# test stops or cancels may run this long: about 90 s here, longer than any test needs them to last
# on a slow machine. Nothing waits for them to end.
LONG_ESSAY = "Write a long essay about the history of Python."
LONG_TOKENS = 4000
LONG_ANSWER = {"n_ctx": "8192", "max_new_tokens_limit": str(LONG_TOKENS)}  # server settings that allow it


def occupy_model(server: LiveServer) -> Job:
    """Start the essay and return once it streams."""
    client = Client(server.url, verbose=False)
    chat = client.predict("write", "intermediate", api_name="/new_chat")
    job = client.submit(chat, LONG_ESSAY, None, None, None, LONG_TOKENS, api_name="/chat")
    deadline = time.monotonic() + 60
    while not job.outputs() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.outputs(), "the essay should have started streaming"
    return job


def give_up(essay: Job) -> None:
    """The essay's writer cancels it. gradio_client waits 5 s for the server's reply to its cancel
    request; on a machine this test keeps busy (throttled pages) the reply was seen to take longer,
    while the server had the request and acted on it, as what the test checks next shows."""
    try:
        essay.cancel()
    except httpx.TimeoutException:
        pass


def still_running(essay: Job) -> None:
    """What follows needs the model busy: say so plainly if this machine let the essay finish first."""
    assert not essay.done(), f"the essay ended before the test was done with it ({LONG_TOKENS} tokens)"
