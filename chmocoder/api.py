"""REST routes under /api: read and export chats without the Gradio protocol."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from . import export
from .chat import ChatError, ChatService, Forbidden, InvalidInput, UnknownChat

Format = Literal["markdown", "json"]


def http_error(exc: ChatError) -> HTTPException:
    status = 404 if isinstance(exc, UnknownChat) else 403 if isinstance(exc, Forbidden) else (
        422 if isinstance(exc, InvalidInput) else 503
    )
    return HTTPException(status_code=status, detail=str(exc))


def download(meta: dict[str, str], messages: list[dict], fmt: Format) -> Response:
    body = export.render(meta, messages, fmt)
    name = export.filename(meta, fmt)
    return Response(
        body,
        media_type=export.FORMATS[fmt][1],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def service_of(request: Request) -> ChatService:
    return request.app.state.service


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["chats"])

    @router.get("/chats/{chat_id}/export")
    def export_chat(request: Request, chat_id: str, format: Format = Query("markdown")) -> Response:  # noqa: A002
        """Download a chat as Markdown or JSON."""
        service = service_of(request)
        try:
            return download(service.info(chat_id), service.history(chat_id), format)
        except ChatError as exc:
            raise http_error(exc) from None

    @router.get("/shared/{token}/export")
    def export_shared(request: Request, token: str, format: Format = Query("markdown")) -> Response:  # noqa: A002
        """Download a shared (read-only) chat as Markdown or JSON."""
        try:
            meta, messages = service_of(request).shared(token)
            return download(meta, messages, format)
        except ChatError as exc:
            raise http_error(exc) from None

    return router
