"""One error policy per surface: each refusal carries its status, and REST, /v1 and Gradio each say it
in their own shape, from one place each."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from chmocoder.errors import Busy, ChatError, Forbidden, InvalidInput, ModelFailed, Unavailable, UnknownChat
from chmocoder.http_errors import OpenAIRoute, RestRoute

from .live_server import LiveServer

REFUSALS = [
    (InvalidInput("the message is empty"), 422, 400),
    (Forbidden("only the chat's creator can delete it"), 403, 403),
    (UnknownChat("unknown chat id (it may have expired)"), 404, 404),
    (Busy("the server is busy"), 429, 429),
    (ModelFailed("the model failed: llama_decode returned -3"), 500, 500),
    (Unavailable("chat storage (Redis) is unreachable right now"), 503, 503),
]


class Body(BaseModel):
    temperature: float


def surfaces(exc: ChatError) -> TestClient:
    """The two route classes, each on a route that refuses with `exc` and one that validates a body."""
    app = FastAPI()
    for prefix, route_class in (("/api", RestRoute), ("/v1", OpenAIRoute)):
        router = APIRouter(prefix=prefix, route_class=route_class)

        @router.get("/refuse")
        def refuse() -> None:
            raise exc

        @router.post("/validate")
        def validate(body: Body) -> float:
            return body.temperature

        app.include_router(router)
    return TestClient(app)


@pytest.mark.parametrize(("exc", "rest", "openai"), REFUSALS, ids=[type(r[0]).__name__ for r in REFUSALS])
def test_each_refusal_has_its_status_and_its_surfaces_shape(exc: ChatError, rest: int, openai: int) -> None:
    client = surfaces(exc)
    answer = client.get("/api/refuse")
    assert (answer.status_code, answer.json()) == (rest, {"detail": str(exc)})
    answer = client.get("/v1/refuse")
    error = answer.json()["error"]
    assert answer.status_code == openai and error["message"] == str(exc) and error["code"] == openai
    assert error["type"] == ("server_error" if openai >= 500 else "invalid_request_error")
    if isinstance(exc, Busy):
        assert answer.headers["retry-after"] == "5", "a busy server says when to come back"


def test_a_model_failure_is_not_reported_as_storage_trouble() -> None:
    answer = surfaces(ModelFailed("the model failed: out of memory")).get("/v1/refuse")
    assert answer.status_code == 500 and "storage" not in answer.text and "Redis" not in answer.text


def test_a_body_that_does_not_validate_is_refused_in_each_surfaces_shape() -> None:
    client = surfaces(InvalidInput("unused"))
    rest = client.post("/api/validate", json={"temperature": "warm"})
    assert rest.status_code == 422 and rest.json()["detail"][0]["loc"] == ["body", "temperature"]
    v1 = client.post("/v1/validate", content=b"{not json")
    assert v1.status_code == 400 and v1.json()["error"]["type"] == "invalid_request_error"


def test_an_unknown_v1_path_is_answered_in_openais_shape(live: LiveServer) -> None:
    answer = httpx.post(live.url + "v1/completions", json={"prompt": "hi"})
    assert answer.status_code == 404
    assert "/v1/chat/completions" in answer.json()["error"]["message"], "and says where to go instead"
    assert httpx.get(live.url + "v1/models").status_code == 200
