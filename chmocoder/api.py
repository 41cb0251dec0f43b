"""REST under /api: chats as JSON for scripts and services, on the same chat service as the page.

Unknown chats are 404, another browser's chat 403, malformed requests 422, storage trouble 503;
every error body is JSON ({"detail": "..."}), written by one route class (chmocoder.http_errors).
The page's own download links live under /download (not /api) so that the page keeps working when
an API key is required.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, Field

from . import export
from .admission import ModelAdmission
from .chat import MAX_INSTRUCTIONS_CHARS, ChatService, TurnOptions
from .errors import Busy, ChatError
from .finish_turn import answer_unless_gone
from .http_errors import RestRoute
from .library import ChatLibrary
from .prompts import DEFAULT_LEVEL, DEFAULT_TASK, Level, TaskChoice
from .records import ChatMeta, StoredMessage

Format = Literal["markdown", "json"]
OWNER_HEADER = "X-ChMOCoder-Owner"
OWNER_TOKEN = Header(
    alias=OWNER_HEADER,
    min_length=32,
    max_length=64,
    pattern=r"^[A-Za-z0-9_-]+$",
    description="Your owner token: any 32-64 random URL-safe characters you keep; it names your list of chats.",
)
Owner = Annotated[str, OWNER_TOKEN]
OptionalOwner = Annotated[str | None, OWNER_TOKEN]


class ErrorBody(BaseModel):
    detail: str


class CheckRow(BaseModel):
    label: str = Field(description="What was checked, e.g. `print(f(3))  → 5` or `f(3) == 5`.")
    origin: Literal["answer", "user", "generated"] = Field(
        "answer", description="Whose claim: the answer's own, the user's example, or a test written for the answer."
    )
    passed: bool
    detail: str | None = Field(None, description="For a failed check: expected vs actual, or the error.")


class Verdict(BaseModel):
    """What running an answer's Python code in the sandbox showed. "verified" only when every check ran
    and passed; never for code that was not run."""

    status: Literal["verified", "failed", "not_checked"]
    summary: str = Field(description='e.g. "verified: 4/4 checks passed", "1 of 4 checks still fails after 2 repairs"')
    passed: int = 0
    total: int = 0
    repairs: int = Field(0, description="Repairs the model made before this verdict.")
    reason: str = Field("", description="Why nothing was run (not_checked).")
    failing: dict[str, str] | None = Field(None, description="The first failing check: {check, detail}.")
    checks: list[CheckRow] = []


class Attempt(BaseModel):
    content: str
    verdict: Verdict | None = None
    stopped: bool = False


class File(BaseModel):
    name: str
    text: str


class Message(BaseModel):
    role: Literal["user", "assistant"]
    content: str
    stopped: bool = False
    interrupted: bool = Field(False, description="A question the server stopped before answering (resend it).")
    at: float | None = None
    verdict: Verdict | None = Field(None, description="Answers with Python code: what checking it showed.")
    attempts: list[Attempt] = Field([], description="Earlier drafts that a repair replaced, oldest first.")
    feedback: Literal["up", "down"] | None = Field(None, description="Answers: the reader's thumbs up or down.")
    files: list[File] = Field([], description="Questions: the text files attached to them, read after the text.")


class NewMessage(BaseModel):
    content: str = Field("", description="The question; it may be empty when files are attached.")
    files: list[File] = Field(
        [],
        description="Text files attached to the question (CHMOCODER_MAX_ATTACHMENTS files of at most "
        "CHMOCODER_MAX_ATTACHMENT_BYTES each; binary files are refused).",
    )
    task: TaskChoice | None = Field(None, description="This answer's task; default: the chat's.")
    level: Level | None = Field(None, description="This answer's level; default: the chat's.")
    temperature: float | None = None
    max_tokens: int | None = Field(None, description="Longest answer in tokens; default from the server.")
    instructions: str | None = Field(
        None, description="Standing instructions for this answer; default: the owner's (PUT /api/instructions)."
    )

    def options(self, owner: str | None, party: str) -> TurnOptions:
        return TurnOptions(
            task=self.task,
            level=self.level,
            temperature=self.temperature,
            max_new_tokens=self.max_tokens,
            instructions=self.instructions,
            owner=owner,
            party=owner or party,
        )


class ChatSummary(BaseModel):
    id: str
    title: str = ""
    task: str
    level: str
    created: float
    updated: float
    expires_at: float | None = Field(None, description="In a list of chats: when it expires unless used (epoch s).")
    keep_s: int | None = Field(None, description="In a list of chats: how long after its last use it is kept.")


class Keep(BaseModel):
    seconds: int = Field(description="How long after its last use the chat is kept (CHMOCODER_CHAT_TTL_SECONDS "
                         "up to CHMOCODER_CHAT_TTL_MAX_SECONDS).")  # fmt: skip


class Rating(BaseModel):
    rating: Literal["up", "down"] | None = Field(
        description='Thumbs up ("up"), down ("down"), or null to take it back.'
    )


class Transcript(BaseModel):
    id: str | None = Field(None, description="Absent for a shared chat, whose id stays private.")
    title: str = ""
    task: str
    level: str
    created: float
    updated: float
    messages: list[Message]


class Instructions(BaseModel):
    text: str = Field(
        "",
        max_length=MAX_INSTRUCTIONS_CHARS,
        description='Standing instructions for every new answer (e.g. "Python 3.12, type hints, pytest"); "" = none.',
    )


class NewChat(BaseModel):
    task: TaskChoice = DEFAULT_TASK
    level: Level = DEFAULT_LEVEL


ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorBody, "description": "A body that is not JSON"},
    401: {"model": ErrorBody, "description": "API key missing or wrong (when CHMOCODER_API_KEY is set)"},
    404: {"model": ErrorBody, "description": "Unknown or expired chat"},
    422: {"model": ErrorBody, "description": "Malformed request"},
    429: {"model": ErrorBody, "description": "Too many requests from this client (see Retry-After)"},
    503: {"model": ErrorBody, "description": "Chat storage unreachable"},
}
BUSY: dict[int | str, dict[str, object]] = {
    429: {"model": ErrorBody, "description": "Beyond the rate limit, or too many requests already wait for the model"}
}


def service_of(request: Request) -> ChatService:
    return request.app.state.service


def admission_of(request: Request) -> ModelAdmission:
    return request.app.state.admission


def library_of(request: Request) -> ChatLibrary:
    return request.app.state.library


def chat_fields(meta: dict[str, Any]) -> dict[str, Any]:
    """What a summary and a transcript both say about a chat, from its stored metadata."""
    return {
        "title": meta.get("title") or "",
        "task": meta.get("task", DEFAULT_TASK),
        "level": meta.get("level", DEFAULT_LEVEL),
        "created": float(meta.get("created") or 0),
        "updated": float(meta.get("updated") or 0),
    }


MESSAGE_FIELDS = ("role", "content", "stopped", "interrupted", "at", "verdict", "attempts", "feedback", "files")


def transcript(meta: ChatMeta, messages: list[StoredMessage], chat_id: str | None) -> Transcript:
    return Transcript(
        id=chat_id,
        messages=[Message(**{k: m[k] for k in MESSAGE_FIELDS if k in m}) for m in messages],
        **chat_fields(meta),
    )


def download(meta: ChatMeta, messages: list[StoredMessage], fmt: Format) -> Response:
    return Response(
        export.render(meta, messages, fmt),
        media_type=export.FORMATS[fmt][1],
        headers={"Content-Disposition": f'attachment; filename="{export.filename(meta, fmt)}"'},
    )


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["chats"], responses=ERRORS, route_class=RestRoute)

    @router.post("/chats", status_code=201, response_model=ChatSummary)
    def create_chat(request: Request, body: NewChat, owner: OptionalOwner = None) -> ChatSummary:
        """Start a chat; with an owner token it also goes into that owner's list."""
        service = service_of(request)
        chat_id = service.new_chat(body.task, body.level, owner=owner)
        return summary(chat_id, service.info(chat_id))

    @router.get("/chats", response_model=list[ChatSummary])
    def list_chats(request: Request, owner: Owner) -> list[ChatSummary]:
        """The owner's chats, most recently used first."""
        return [
            ChatSummary(id=c["id"], **chat_fields(c), expires_at=c["expires_at"], keep_s=c["keep_s"])
            for c in library_of(request).list_chats(owner)
        ]

    @router.put("/chats/{chat_id}/keep", status_code=204, responses={403: {"model": ErrorBody}})
    def keep_chat(request: Request, chat_id: str, body: Keep, owner: Owner) -> Response:
        """Keep a chat longer (or as long as by default) after its last use; only its creator may."""
        library_of(request).keep(chat_id, owner, body.seconds)
        return Response(status_code=204)

    @router.put("/chats/{chat_id}/messages/{index}/feedback", status_code=204, responses={403: {"model": ErrorBody}})
    def rate_answer(request: Request, chat_id: str, index: int, body: Rating, owner: Owner) -> Response:
        """Rate the answer at `index` (its position in `messages`) of a chat in the owner's list."""
        library_of(request).rate(chat_id, owner, index, body.rating)
        return Response(status_code=204)

    @router.post("/chats/{chat_id}/messages", response_model=Message, responses=BUSY)
    async def send_message(request: Request, chat_id: str, body: NewMessage, owner: OptionalOwner = None) -> Message:
        """Ask in the chat and wait for the whole answer, saved with the chat as the page saves it (to
        stream it, use /v1/chat/completions with this chat id). Returns the answer as stored."""
        service, admission = service_of(request), admission_of(request)
        party = f"address:{request.client.host}" if request.client else "address:unknown"
        files = [f.model_dump() for f in body.files]
        if not admission.enter():
            raise Busy("the server is busy: too many requests wait for the model; try again shortly")
        try:  # tokenizing and Redis, off the event loop
            replies = await anyio.to_thread.run_sync(
                lambda: service.send(chat_id, body.content, body.options(owner, party), files=files)
            )
        except ChatError:
            admission.leave()
            raise
        try:
            await answer_unless_gone(request, replies)
        finally:
            admission.leave()
        history = await anyio.to_thread.run_sync(service.history, chat_id)
        return Message(**{k: history[-1][k] for k in MESSAGE_FIELDS if k in history[-1]})

    @router.get("/chats/{chat_id}", response_model=Transcript)
    def get_chat(request: Request, chat_id: str) -> Transcript:
        """A chat's transcript, oldest message first."""
        service = service_of(request)
        return transcript(*service.chat(chat_id), chat_id)

    @router.delete("/chats/{chat_id}", status_code=204, responses={403: {"model": ErrorBody}})
    def delete_chat(request: Request, chat_id: str, owner: Owner) -> Response:
        """Delete a chat for good: only the owner token that started it may (others get 403)."""
        library_of(request).delete(chat_id, owner)
        return Response(status_code=204)

    @router.post("/chats/{chat_id}/remove-from-list", status_code=204, responses={403: {"model": ErrorBody}})
    def remove_from_list(request: Request, chat_id: str, owner: Owner) -> Response:
        """Take a chat off the owner's list; the chat itself stays (all a guest may do)."""
        library_of(request).remove_from_list(chat_id, owner)
        return Response(status_code=204)

    @router.get("/chats/{chat_id}/export", response_class=Response)
    def export_chat(request: Request, chat_id: str, format: Format = Query("markdown")) -> Response:  # noqa: A002
        """Download a chat as Markdown or JSON."""
        return chat_download(request, chat_id, format)

    @router.get("/instructions", response_model=Instructions)
    def get_instructions(request: Request, owner: Owner) -> Instructions:
        """The owner's standing instructions, applied after the task and level rules to every answer."""
        return Instructions(text=library_of(request).instructions(owner))

    @router.put("/instructions", response_model=Instructions)
    def put_instructions(request: Request, body: Instructions, owner: Owner) -> Instructions:
        """Keep standing instructions for the owner's new answers (in the page: the same browser's)."""
        return Instructions(text=library_of(request).set_instructions(owner, body.text))

    @router.delete("/instructions", status_code=204)
    def delete_instructions(request: Request, owner: Owner) -> Response:
        library_of(request).set_instructions(owner, "")
        return Response(status_code=204)

    @router.get("/shared/{token}", response_model=Transcript)
    def get_shared(request: Request, token: str) -> Transcript:
        """A chat shared read-only, by its share token."""
        return transcript(*shared_chat(request, token), None)

    return router


def summary(chat_id: str, meta: dict[str, Any]) -> ChatSummary:
    return ChatSummary(id=chat_id, **chat_fields(meta))


def shared_chat(request: Request, token: str) -> tuple[ChatMeta, list[StoredMessage]]:
    return library_of(request).shared(token)


def chat_download(request: Request, chat_id: str, fmt: Format) -> Response:
    service = service_of(request)
    return download(*service.chat(chat_id), fmt)


def build_download_router() -> APIRouter:
    """The page's download links: a chat id or share token is the key, as it is in the page itself."""
    router = APIRouter(prefix="/download", tags=["page"], include_in_schema=False, route_class=RestRoute)

    @router.get("/chats/{chat_id}")
    def download_chat(request: Request, chat_id: str, format: Format = Query("markdown")) -> Response:  # noqa: A002
        return chat_download(request, chat_id, format)

    @router.get("/shared/{token}")
    def download_shared(request: Request, token: str, format: Format = Query("markdown")) -> Response:  # noqa: A002
        return download(*shared_chat(request, token), format)

    return router
