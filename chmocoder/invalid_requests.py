"""The answer to a request body that does not validate, on the HTTP surfaces (REST and /v1).

FastAPI's own answer echoes the offending input, and two inputs that Python's JSON parser accepts could
not be echoed: `NaN` or `Infinity` (JSON has no such numbers) and a lone UTF-16 surrogate ("\\ud800"),
so a malformed request got a 500 instead of its 4xx. Here the input is made printable first. /v1
clients get OpenAI's `{"error": …}` shape with status 400, as for every other refusal there.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from .errors import InvalidInput
from .openai_api import openai_error

SHOWN_ERRORS = 3


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


def summary(errors: list[dict[str, Any]]) -> str:
    """Where and what, for a person: "temperature: Input should be less than or equal to 2; …"."""
    parts = []
    for error in errors[:SHOWN_ERRORS]:
        where = ".".join(str(p) for p in error.get("loc", ())[1:]) or "the body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    more = len(errors) - SHOWN_ERRORS
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = json_safe(jsonable_encoder(exc.errors()))  # jsonable first: it turns exceptions in `ctx` to text
    route = getattr(request.scope.get("route"), "path", "")
    if route.startswith("/v1"):
        return openai_error(InvalidInput(summary(errors)))
    return JSONResponse({"detail": errors}, status_code=422)
