"""The errors a user is told about in one sentence, shared by every service and surface.

Each carries the HTTP status it is answered with, so every surface translates it the same way: REST
and /v1 in one place each (chmocoder.http_errors), the Gradio page and gradio_client in one decorator
(chmocoder.gradio_errors). /v1 answers bad input with 400 as OpenAI's protocol does; REST with 422,
like FastAPI's own validation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .store import ChatNotFound, StoreError


class ChatError(RuntimeError):
    """Anything a user should be told in one sentence instead of a stack trace."""

    status = 500


class InvalidInput(ChatError):
    status = 422


class Forbidden(ChatError):
    status = 403


class NotFound(ChatError):
    status = 404


class UnknownChat(NotFound):
    """A malformed, unknown, expired or deleted chat id (or share token)."""


class Busy(ChatError):
    """Too many requests already wait for the model."""

    status = 429
    retry_after_s = 5


class ModelFailed(ChatError):
    """The model failed mid-answer: not the user's fault, and not the storage's."""

    status = 500


class Unavailable(ChatError):
    """Chat storage is unreachable, the server is restarting, or a part (the sandbox) is off."""

    status = 503


@contextmanager
def storage_errors() -> Iterator[None]:
    """Translate store errors into the services' user-facing errors."""
    try:
        yield
    except ChatNotFound as exc:
        raise UnknownChat(str(exc)) from exc
    except StoreError as exc:
        raise Unavailable(str(exc)) from exc
