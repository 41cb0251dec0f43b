"""OpenAI-compatible /v1/chat/completions and /v1/models, for editors, scripts and the `openai` package.

Without a chat id the request is stateless: the client sends the whole conversation. With one
(header X-ChMOCoder-Chat or body field chat_id) only the newest user message is taken, answered
with the stored history, and saved, so a chat can move between the page, gradio_client and /v1;
the id "new" starts a stored chat, whose id comes back in the X-ChMOCoder-Chat response header.
Generation takes the same engine lock as the page, so the model never runs two at once; a client
that disconnects mid-stream closes the stream, which stops the model at the next token.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from .admission import ModelAdmission
from .api import OptionalOwner
from .chat import ChatService, Reply, TurnOptions, newest_question
from .errors import Busy, ChatError, NotFound
from .finish_turn import answer_unless_gone
from .http_errors import OpenAIRoute

CHAT_HEADER = "X-ChMOCoder-Chat"


class TextPart(BaseModel):
    type: Literal["text"] = "text"
    text: str


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    """The OpenAI request body; fields ChMOCoder does not use are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    # Their ranges are checked by the chat service, as for every surface (400 naming the field).
    temperature: float | None = Field(None, description="0 to 2.")
    top_p: float | None = Field(None, description="Greater than 0, at most 1.")
    max_tokens: int | None = Field(None, description="1 to the server's CHMOCODER_MAX_NEW_TOKENS_LIMIT.")
    max_completion_tokens: int | None = Field(None, description="The same as max_tokens; it wins if both are given.")
    stop: str | list[str] | None = None
    n: int | None = Field(1, ge=1, le=1, description="Only one choice is supported.")
    chat_id: str | None = Field(None, description="Attach the request to a stored ChMOCoder chat.")
    files: list[dict[str, Any]] | None = Field(
        None,
        description='ChMOCoder: text files attached to the newest user message, [{"name": "app.py", "text": "..."}] '
        "(kept with it in a stored chat; CHMOCODER_MAX_ATTACHMENTS files of CHMOCODER_MAX_ATTACHMENT_BYTES each).",
    )

    def options(self) -> TurnOptions:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return TurnOptions(
            temperature=self.temperature,
            top_p=self.top_p,
            max_new_tokens=self.max_completion_tokens or self.max_tokens,
            stop=tuple(stops),
        )


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    code: int


class OpenAIError(BaseModel):
    error: OpenAIErrorDetail


OPENAI_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": OpenAIError, "description": why}
    for code, why in (
        (400, "Invalid request, e.g. an empty or oversized message"),
        (401, "API key missing or wrong (when CHMOCODER_API_KEY is set)"),
        (404, "Unknown or expired chat id"),
        (429, "Too many requests waiting for the model"),
        (503, "Chat storage unreachable"),
    )
}


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "chmocoder"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def build_openai_router(service: ChatService, model_id: str, admission: ModelAdmission) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute)
    created = int(time.time())

    @router.get("/models", response_model=ModelList)
    def list_models() -> ModelList:
        """The one model this server runs."""
        return ModelList(data=[ModelCard(id=model_id, created=created)])

    @router.post(
        "/chat/completions",
        response_model=None,
        responses={
            200: {
                "description": "A chat.completion, or chat.completion.chunk events when streaming",
                "content": {"application/json": {}, "text/event-stream": {}},
            },
            **OPENAI_ERRORS,
        },
    )
    async def chat_completions(
        request: Request,
        body: ChatCompletionRequest,
        chat_header: Annotated[str | None, Header(alias=CHAT_HEADER)] = None,
        owner: OptionalOwner = None,
    ) -> Any:
        """Create a chat completion, streamed (server-sent events) or not. With `X-ChMOCoder-Chat: new`
        and an owner token, the new chat goes into that owner's list (as /api/chats makes it)."""
        chat_id = body.chat_id or chat_header
        party = f"address:{request.client.host}" if request.client else "address:unknown"
        if not admission.enter():  # before anything is created: a refused request leaves nothing behind
            raise Busy("the server is busy: too many requests wait for the model; try again shortly")
        try:  # tokenizing and Redis, off the event loop: a long conversation must not stall other requests
            chat_id, replies = await anyio.to_thread.run_sync(start_turn, service, body, chat_id, owner, party)
        except ChatError:  # bad input, an unknown chat: refused before any 200 goes out
            admission.leave()
            raise
        completion_id = f"chatcmpl-{secrets.token_hex(12)}"
        headers = {CHAT_HEADER: chat_id} if chat_id else {}
        if body.stream:
            return StreamingResponse(
                sse(replies, completion_id, model_id, admission), media_type="text/event-stream", headers=headers
            )
        try:
            final = await answer_unless_gone(request, replies)
        finally:
            admission.leave()
        return JSONResponse(completion(final, completion_id, model_id), headers=headers)

    @router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def unknown(path: str) -> None:
        """Any other /v1 path: OpenAI's error shape, not the page's 404 (Gradio is mounted at /)."""
        raise NotFound(f"/v1/{path} is not an endpoint here; there are /v1/models and /v1/chat/completions")

    return router


def start_turn(
    service: ChatService, body: ChatCompletionRequest, chat_id: str | None, owner: str | None, party: str
) -> tuple[str | None, Iterator[Reply]]:
    """Check and fit the request and start its turn (a stored chat's, or one that stores nothing).
    A chat's owner is who asks; without one, the client's address is (chmocoder.turn.Turn.party)."""
    messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in body.messages]
    options = replace(body.options(), party=party)
    if chat_id:
        question = newest_question(messages)
        if chat_id == "new":
            chat_id = service.new_chat(owner=owner)
        return chat_id, service.send(chat_id, question, options, files=body.files)
    return None, service.complete(messages, options, files=body.files)


def usage(stats: dict[str, Any]) -> dict[str, int]:
    prompt, answer = int(stats.get("prompt_tokens") or 0), int(stats.get("completion_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": answer, "total_tokens": prompt + answer}


def completion(reply: Reply, completion_id: str, model_id: str) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_id,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text},
                "finish_reason": reply.stats.get("finish_reason") or "stop",
            }
        ],
        "usage": usage(reply.stats),
        **checked(reply),
    }


def checked(reply: Reply) -> dict[str, Any]:
    """ChMOCoder's extension field: the verdict on the answer's Python code (absent when it has none)."""
    return {"chmocoder": {"verdict": reply.verdict, "attempts": len(reply.attempts)}} if reply.verdict else {}


REPLACED = "\n\n---\n*{summary}: the corrected answer follows.*\n\n"


def continuation(sent: str, reply: Reply) -> tuple[str, str]:
    """What to send for this reply after `sent`, and what has then been sent. A stream cannot take
    text back: when a repair replaces the draft, the corrected answer follows a separator instead."""
    if reply.text.startswith(sent):
        return reply.text[len(sent) :], reply.text
    summary = (reply.attempts[-1].get("verdict") or {}).get("summary", "the checks failed") if reply.attempts else ""
    return REPLACED.format(summary=summary or "a check failed") + reply.text, reply.text


def chunk(completion_id: str, model_id: str, delta: dict[str, str], finish: str | None = None, **extra: Any) -> str:
    body = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model_id,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


async def sse(
    replies: Iterator[Reply], completion_id: str, model_id: str, admission: ModelAdmission
) -> AsyncIterator[str]:
    """Server-sent events from the chat service's replies. Cancellation (a client that went away)
    lands here between tokens; closing `replies` then stops the model and frees it."""
    sent = ""
    try:
        yield chunk(completion_id, model_id, {"role": "assistant", "content": ""})
        while (reply := await anyio.to_thread.run_sync(next, replies, None)) is not None:
            new, sent = continuation(sent, reply)
            if new:
                yield chunk(completion_id, model_id, {"content": new})
            if reply.done:
                finish = reply.stats.get("finish_reason") or "stop"
                yield chunk(completion_id, model_id, {}, finish, usage=usage(reply.stats), **checked(reply))
        yield "data: [DONE]\n\n"
    except ChatError as exc:
        yield f"data: {json.dumps({'error': {'message': str(exc), 'type': 'server_error'}})}\n\n"
    finally:
        await anyio.to_thread.run_sync(replies.close)
        admission.leave()
