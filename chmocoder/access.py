"""One access policy for every surface: with CHMOCODER_API_KEY set, nothing that reads or writes a chat
is served without the key.

Before, the key guarded /api and /v1 only, while the page's own routes (/gradio_api/call/*, the
downloads) served the same transcripts to anyone. Now one ASGI middleware in front of the whole app
asks every request for the key (`Authorization: Bearer <key>` or `X-API-Key`) or for a browser
session cookie, which the login page (/login) gives for the key. A browser opening the page without
one is sent to the login page; any other client gets 401 (in OpenAI's error shape under /v1).
The probes (/healthz, /readyz) and the login page are always open; the settings' `open_paths`
(by default /metrics) too. The session cookie is the key's HMAC over its expiry: changing the key
ends every session.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import secrets
import time
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

SESSION_COOKIE = "chmocoder_session"
ALWAYS_OPEN = ("/healthz", "/readyz", "/login")
DENIED = "a valid API key is required"


def session_token(key: str, expires: int) -> str:
    return f"{expires}.{hmac.new(key.encode(), f'session:{expires}'.encode(), hashlib.sha256).hexdigest()}"


def valid_session(key: str, token: str, now: float | None = None) -> bool:
    expires, _, _ = token.partition(".")
    if not expires.isdigit() or int(expires) < (now or time.time()):
        return False
    return hmac.compare_digest(token, session_token(key, int(expires)))


def given_key(headers: dict[str, str]) -> str:
    authorization = headers.get("authorization", "")
    return headers.get("x-api-key") or authorization.removeprefix("Bearer ").strip()


def key_matches(key: str, given: str) -> bool:
    return bool(given) and secrets.compare_digest(given.encode(), key.encode())


def safe_next(target: str) -> str:
    """Only a path on this site (no scheme, no host, no //): a login must not redirect elsewhere."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


class AccessPolicy:
    def __init__(self, app: ASGIApp, api_key: str, root_path: str = "", open_paths: tuple[str, ...] = ()) -> None:
        self.app = app
        self.key = api_key
        self.root_path = root_path
        self.open = ALWAYS_OPEN + open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.key or scope["type"] not in ("http", "websocket") or self.allowed(scope):
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", "")).removeprefix(self.root_path)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401})
            return
        headers = _headers(scope)
        if scope.get("method") == "GET" and "text/html" in headers.get("accept", ""):
            query = scope.get("query_string", b"").decode("latin-1")
            wanted = path + (f"?{query}" if query else "")
            await _respond(send, 303, b"", [(b"location", f"{self.root_path}/login?next={quote(wanted)}".encode())])
            return
        if path.startswith("/v1"):
            error = {"message": DENIED, "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}
            body = {"error": error}
        else:
            body = {"detail": DENIED}
        extra = [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]
        await _respond(send, 401, json.dumps(body).encode(), extra)

    def allowed(self, scope: Scope) -> bool:
        path = str(scope.get("path", "")).removeprefix(self.root_path) or "/"
        if any(path == p or path.startswith(p + "/") for p in self.open):
            return True
        headers = _headers(scope)
        if key_matches(self.key, given_key(headers)):
            return True
        cookie = SimpleCookie(headers.get("cookie", "")).get(SESSION_COOKIE)
        return cookie is not None and valid_session(self.key, cookie.value)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>ChMOCoder: sign in</title>
<style>body{{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem}}
input,button{{font:inherit;padding:.5rem;width:100%;box-sizing:border-box;margin:.3rem 0}}
.error{{color:#b00020}}</style></head>
<body><h1>ChMOCoder</h1><p>This server asks for its access key.</p>{error}
<form method="post" action="{action}"><input type="hidden" name="next" value="{next}">
<label for="key">Access key</label><input id="key" name="key" type="password" autocomplete="current-password"
autofocus required><button type="submit">Sign in</button></form></body></html>"""


def login_router(api_key: str, root_path: str, session_s: int) -> APIRouter:
    """/login: a form that asks for the key and, for the right one, sets the session cookie."""
    router = APIRouter(include_in_schema=False)

    def page(next_path: str, error: str = "", status: int = 200) -> HTMLResponse:
        note = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
        body = LOGIN_PAGE.format(error=note, action=f"{root_path}/login", next=html.escape(safe_next(next_path)))
        return HTMLResponse(body, status_code=status)

    @router.get("/login")
    def login_form(request: Request) -> HTMLResponse:
        return page(parse_qs(request.url.query).get("next", ["/"])[0])

    @router.post("/login", response_model=None)
    def login(request: Request, key: str = Form(""), next: str = Form("/")) -> HTMLResponse | RedirectResponse:  # noqa: A002
        if not api_key or not key_matches(api_key, key):
            return page(next, "That is not the access key.", status=401)
        response = RedirectResponse(root_path + safe_next(next), status_code=303)
        expires = int(time.time()) + session_s
        response.set_cookie(
            SESSION_COOKIE, session_token(api_key, expires), max_age=session_s, path=(root_path or "") + "/",
            httponly=True, samesite="lax", secure=request.url.scheme == "https",
        )  # fmt: skip
        return response

    return router
