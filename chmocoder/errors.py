"""The errors a user is told about in one sentence, shared by every service and surface."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .store import ChatNotFound, StoreError


class ChatError(RuntimeError):
    """Anything a user should be told in one sentence instead of a stack trace."""


class InvalidInput(ChatError):
    pass


class UnknownChat(ChatError):
    pass


class Unavailable(ChatError):
    pass


class Forbidden(ChatError):
    pass


@contextmanager
def storage_errors() -> Iterator[None]:
    """Translate store errors into the services' user-facing errors."""
    try:
        yield
    except ChatNotFound as exc:
        raise UnknownChat(str(exc)) from exc
    except StoreError as exc:
        raise Unavailable(str(exc)) from exc
