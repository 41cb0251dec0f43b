"""The named gradio_client endpoints (/new_chat, /chat, /history, ..., /run_code), on the same
services as the page.

They share the page's queue and its concurrency groups: the model's, so that the model never runs
two generations at once; the sandbox's, so that runs of code never wait behind the model; and one for
reads and chat-list changes, which need only Redis. New
optional parameters go after the existing ones, never before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import Any

import gradio as gr

from .chat import ChatService, TurnOptions
from .errors import Unavailable
from .gradio_errors import user_errors
from .library import ChatLibrary
from .prompts import DEFAULT_LEVEL, DEFAULT_TASK
from .runner import CodeRunner

MODEL_QUEUE = "model"  # one concurrency group for everything that runs the model
SANDBOX_QUEUE = "sandbox"  # and one for people's own runs of code, as many at once as the sandbox has workers
# Reads and chat-list changes (Redis only) share a group of their own: they never wait behind the model,
# and a full model queue never refuses them (chmocoder.gradio_internals.limit_waiting).
READS_QUEUE = "reads"
READS = {"concurrency_id": READS_QUEUE, "concurrency_limit": 8}
NO_SANDBOX = "code cannot run here: this server has no code sandbox"


def add_api(service: ChatService, library: ChatLibrary, runner: CodeRunner | None = None) -> None:
    """Named endpoints for gradio_client. New optional parameters go after the existing ones."""

    @user_errors()
    def new_chat(task: str | None = DEFAULT_TASK, level: str | None = DEFAULT_LEVEL, owner: str | None = None) -> str:
        """Start a chat and return its id.

        Args:
            task: what you want: "write" (write code), "debug" (find and fix a bug), "explain", "review",
                or "auto" (picked from each message; the answer's stats say which, as picked_task).
            level: the reader's level: "beginner", "intermediate" or "expert".
            owner: optional owner token (32-64 random URL-safe characters you keep) to list the chat in /list_chats.
        Returns:
            The new chat's id; pass it to /chat and /history. Chats expire after a day without use.
        """
        return service.new_chat(task, level, owner=owner)

    @user_errors()
    def chat(
        chat_id: str,
        message: str,
        task: str | None = None,
        level: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        instructions: str | None = None,
        files: list[dict[str, str]] | None = None,
    ) -> Iterator[str]:
        """Send a message to a chat and stream the answer.

        Args:
            chat_id: an id from /new_chat.
            message: your question or code (plain text, Markdown welcome).
            task: change the chat's task from this turn on ("auto", "write", "debug", "explain", "review").
            level: change the reader's level from this turn on ("beginner", "intermediate", "expert").
            temperature: sampling temperature, 0 (deterministic) to 2; default from the server.
            max_tokens: longest answer in tokens; default from the server.
            instructions: standing instructions for this answer, after the task and level rules
                (e.g. "Python 3.12, type hints, pytest"; at most 2,000 characters).
            files: text files to attach to the message, [{"name": "app.py", "text": "..."}]; the model
                reads them after the message, and they are kept with it (see /history).
        Returns:
            The answer so far, growing with every update; the last update is the whole answer.
        """
        options = TurnOptions(
            task=task, level=level, temperature=temperature, max_new_tokens=max_tokens, instructions=instructions
        )
        with closing(service.send(chat_id, message, options, files=files)) as replies:
            for reply in replies:
                yield reply.text

    @user_errors()
    def history(chat_id: str) -> list[dict[str, Any]]:
        """The chat's transcript, oldest first.

        Args:
            chat_id: an id from /new_chat.
        Returns:
            A list of {"role": "user" | "assistant", "content": text}; an answer cut short by Stop
            or a disconnect also has "stopped": true; a question the server stopped before answering
            is followed by {"role": "assistant", "content": "", "interrupted": true} (send it again);
            an answer with Python code has "verdict"
            ({"status": "verified" | "failed" | "not_checked", "summary", "passed", "total",
            "repairs", "failing", "checks", ...}) and, if a repair replaced a draft, "attempts"; an
            answer its reader rated has "feedback": "up" | "down" (see /rate_answer); a question sent
            with files has "files": [{"name", "text"}].
        """
        messages = service.history(chat_id)
        return [
            {"role": m["role"], "content": m["content"]}
            | {k: m[k] for k in ("stopped", "interrupted", "verdict", "attempts", "feedback", "files") if m.get(k)}
            for m in messages
        ]

    gr.api(new_chat, api_name="new_chat", **READS)
    gr.api(chat, api_name="chat", concurrency_id=MODEL_QUEUE, concurrency_limit=service.settings.parallel)
    gr.api(history, api_name="history", **READS)
    add_chat_list(library)
    add_run_code(runner)


def add_chat_list(library: ChatLibrary) -> None:
    """An owner's chats: list, search, keep, rate an answer, delete, remove (Redis only, never the model)."""

    @user_errors()
    def list_chats(owner: str) -> list[dict[str, Any]]:
        """The chats of an owner token, most recently used first.

        Args:
            owner: the owner token given to /new_chat.
        Returns:
            A list of {"id", "title", "task", "level", "created", "updated", "guest", "expires_at" (epoch
            seconds), "keep_s" (how long after its last use it is kept)}; expired chats are left out.
        """
        return library.list_chats(owner)

    @user_errors()
    def search_chats(owner: str, query: str) -> list[dict[str, Any]]:
        """The owner's chats holding every word of `query` (any case) in the title or a message.

        Args:
            owner: the owner token given to /new_chat.
            query: words to look for (at most 200 characters).
        Returns:
            At most 50 of {"id", "title", "line" (the best-matching line), "role" ("title", "user" or
            "assistant": where that line is), "updated"}, most recently used first.
        """
        return [hit.as_dict() for hit in library.search(owner, query)]

    @user_errors()
    def keep_chat(chat_id: str, owner: str, seconds: int) -> bool:
        """Keep a chat `seconds` after its last use; only the owner token that started it may.

        Args:
            chat_id: the chat to keep.
            owner: the owner token given to /new_chat when the chat was made.
            seconds: CHMOCODER_CHAT_TTL_SECONDS (a day by default) to CHMOCODER_CHAT_TTL_MAX_SECONDS (30 days).
        Returns:
            True once its new lifetime is set (renewed from now, and by every later message).
        """
        library.keep(chat_id, owner, int(seconds))
        return True

    @user_errors()
    def rate_answer(chat_id: str, owner: str, index: int, rating: str) -> bool:
        """Thumbs up or down on an answer of a chat in the owner's list (kept with it, in /history and
        the exports, and counted in /metrics).

        Args:
            chat_id: the chat.
            owner: an owner token whose list holds the chat.
            index: the answer's position in /history (0 is the first question).
            rating: "up", "down", or "" to take a rating back.
        Returns:
            True once the rating is kept.
        """
        library.rate(chat_id, owner, int(index), rating or None)
        return True

    @user_errors()
    def delete_chat(chat_id: str, owner: str) -> bool:
        """Delete a chat for good; only the owner token that started it may.

        Args:
            chat_id: the chat to delete.
            owner: the owner token given to /new_chat when the chat was made.
        Returns:
            True once the chat is deleted.
        """
        library.delete(chat_id, owner)
        return True

    @user_errors()
    def remove_chat(chat_id: str, owner: str) -> bool:
        """Take a chat off an owner's list; the chat itself stays (all a guest may do).

        Args:
            chat_id: the chat to remove from the list.
            owner: the owner token whose list holds it.
        Returns:
            True once it is off the list.
        """
        library.remove_from_list(chat_id, owner)
        return True

    for endpoint in (list_chats, search_chats, keep_chat, rate_answer, delete_chat, remove_chat):
        gr.api(endpoint, api_name=endpoint.__name__, **READS)


def add_run_code(runner: CodeRunner | None) -> None:
    """/run_code, in the sandbox's concurrency group: as many runs at once as it has workers."""

    @user_errors()
    def run_code(code: str) -> dict[str, Any]:
        """Run Python code in the sandbox (no network, no files of the host, limits on time, memory, output).

        Args:
            code: a Python program (text, at most CHMOCODER_MAX_CODE_CHARS characters, 50,000 by default).
        Returns:
            {"stdout", "stderr", "exit_code" (0 for success, 1 for an uncaught exception, null if
            the run was stopped), "status" ("ok", "error", "timeout", "memory", "output" or
            "unavailable"), "duration_s", "message" (what the sandbox says about a limit it hit)}.
        """
        if runner is None:
            raise Unavailable(NO_SANDBOX)
        return runner.run(code).as_dict()

    workers = runner.workers if runner is not None else 1
    gr.api(run_code, api_name="run_code", concurrency_id=SANDBOX_QUEUE, concurrency_limit=workers)
