"""How a refusal looks on each HTTP surface: one route class per surface translates every error.

- REST (`/api`, the downloads): `{"detail": "..."}` with the error's own status; a body that does not
  validate gets 422 with FastAPI's list of what is wrong.
- `/v1`: always OpenAI's `{"error": {"message", "type", "code"}}`, validation errors included (400),
  and unknown `/v1` paths too (404).

Both catch errors in the route itself (a custom `APIRoute`), so each router's policy lives in one
place and handlers are plain code that raises. FastAPI's own answer to an invalid body echoes the
input, and two inputs Python's JSON parser accepts could not be echoed: `NaN`/`Infinity` and a lone
UTF-16 surrogate ("\\ud800"); they are made printable first, so a malformed request never gets a 500.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from .errors import ChatError, InvalidInput

SHOWN_ERRORS = 3
Handler = Callable[[Request], Awaitable[Response]]


def json_safe(value: Any) -> Any:
    """`value` with every float and string JSON can carry: NaN → "nan", a lone surrogate → "\\ud800"."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {json_safe(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return json_safe(jsonable_encoder(exc.errors()))  # jsonable first: it turns exceptions in `ctx` to text


def summary(errors: list[dict[str, Any]]) -> str:
    """Where and what, for a person: "temperature: Input should be less than or equal to 2; …"."""
    parts = []
    for error in errors[:SHOWN_ERRORS]:
        where = ".".join(str(p) for p in error.get("loc", ())[1:]) or "the body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    more = len(errors) - SHOWN_ERRORS
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def openai_status(exc: ChatError) -> int:
    return 400 if isinstance(exc, InvalidInput) else exc.status


def retry_after(exc: ChatError) -> dict[str, str] | None:
    seconds = getattr(exc, "retry_after_s", None)
    return {"Retry-After": str(seconds)} if seconds else None


def openai_error(exc: ChatError, status: int | None = None) -> JSONResponse:
    status = status or openai_status(exc)
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": str(exc), "type": kind, "code": status}}
    return JSONResponse(body, status_code=status, headers=retry_after(exc))


def rest_error(exc: ChatError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=retry_after(exc))


class TranslatingRoute(APIRoute):
    """A route that answers refusals and invalid bodies itself, in its surface's shape."""

    def refused(self, exc: ChatError) -> Response:
        raise NotImplementedError

    def invalid(self, exc: RequestValidationError) -> Response:
        raise NotImplementedError

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def translated(request: Request) -> Response:
            try:
                return await handler(request)
            except ChatError as exc:
                return self.refused(exc)
            except RequestValidationError as exc:
                return self.invalid(exc)

        return translated


class RestRoute(TranslatingRoute):
    """REST's error policy, for every route of a router built with `route_class=RestRoute`."""

    def refused(self, exc: ChatError) -> Response:
        return rest_error(exc)

    def invalid(self, exc: RequestValidationError) -> Response:
        return JSONResponse({"detail": validation_errors(exc)}, status_code=422)


class OpenAIRoute(TranslatingRoute):
    """/v1's error policy: OpenAI's shape for every refusal, a body that does not validate included."""

    def refused(self, exc: ChatError) -> Response:
        return openai_error(exc)

    def invalid(self, exc: RequestValidationError) -> Response:
        return openai_error(InvalidInput(summary(validation_errors(exc))))
