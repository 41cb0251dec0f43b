"""How a refusal reaches a person through Gradio: one decorator for the page's events and the
named gradio_client endpoints.

A `ChatError` becomes, for an endpoint (no fallback), a `gr.Error` with its sentence, which
gradio_client raises and the API page documents; for a page event (a fallback), a warning toast,
while the event returns (or, for a streaming event, yields) the fallback, typically "change nothing".
Any other exception is left to Gradio, which shows a generic error and logs the traceback.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import gradio as gr

from .errors import ChatError

F = TypeVar("F", bound=Callable[..., Any])
RAISE = object()


def warn(exc: ChatError) -> None:
    """The toast a page shows for a refusal (for handlers that also restore what they had changed)."""
    gr.Warning(str(exc))


def _refuse(exc: ChatError, fallback: Any) -> Any:
    if fallback is RAISE:
        raise gr.Error(str(exc)) from None
    warn(exc)
    return fallback


def user_errors(fallback: Any = RAISE) -> Callable[[F], F]:
    """Report `ChatError`s to the person: raise them as `gr.Error` (no fallback: endpoints), or warn
    and return `fallback` (page events). Generators stay generators, so streaming still streams, and
    the signature and docstring are kept for Gradio's API page."""

    def decorate(fn: F) -> F:
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def streaming(*args: Any, **kwargs: Any) -> Iterator[Any]:
                try:
                    yield from fn(*args, **kwargs)
                except ChatError as exc:
                    refused = _refuse(exc, fallback)
                    if refused is not None:
                        yield refused

            return streaming  # type: ignore[return-value]

        @functools.wraps(fn)
        def plain(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except ChatError as exc:
                return _refuse(exc, fallback)

        return plain  # type: ignore[return-value]

    return decorate
