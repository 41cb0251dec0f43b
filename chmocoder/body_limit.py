"""A limit on the size of HTTP request bodies: a client sending 20 MB was read to the end, into memory.

A body announced larger than the limit (Content-Length) is refused at once with a 413 in the shape of
the surface it was sent to: OpenAI's `{"error": …}` on /v1, `{"detail": …}` elsewhere. One sent in
chunks without a length stops being read as soon as it passes the limit; FastAPI's routes then answer
400 (their body parser turns any error into "There was an error parsing the body").
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class TooLarge(Exception):
    pass


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, root_path: str = "") -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.root_path = root_path.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        announced = dict(scope["headers"]).get(b"content-length", b"")
        if announced.isdigit() and int(announced) > self.max_bytes:
            await self.refuse(scope, send)
            return
        received, started = 0, False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise TooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except TooLarge:
            if not started:
                await self.refuse(scope, send)

    async def refuse(self, scope: Scope, send: Send) -> None:
        text = f"the request body is larger than {self.max_bytes:,} bytes"
        path = scope["path"].removeprefix(self.root_path)
        body = (
            {"error": {"message": text, "type": "invalid_request_error", "code": 413}}
            if path.startswith("/v1/")
            else {"detail": text}
        )
        payload = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
