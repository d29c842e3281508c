"""X-Generator-Mode: the native and the OpenAI-compatible endpoints read it alike (`service_common/modes.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from llm_gateway.app import create_app
from service_common.modes import requested_mode
from shared_contracts.errors import InvalidRequest
from tests.fakes.asgi import AsgiClient
from tests.fakes.ollama import FakeOllama

from ._support import make_config

MESSAGES = [{"role": "user", "content": "Write a headline for the Aurora desk lamp."}]
NATIVE = {"role": "copywriter", "task": "headline", "messages": MESSAGES}
CHAT = {"model": "role:copywriter/task:headline", "messages": MESSAGES}
ENDPOINTS: dict[str, tuple[str, dict[str, Any]]] = {
    "native": ("/api/v1/llm/generate", NATIVE),
    "native-stream": ("/api/v1/llm/generate/stream", NATIVE),
    "openai": ("/v1/chat/completions", CHAT),
    "openai-stream": ("/v1/chat/completions", {**CHAT, "stream": True}),
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeOllama]:
    async with FakeOllama(models=["qwen2.5:7b", "qwen2.5:14b"]) as server:
        yield server


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    ("mode", "allowed", "header", "live_calls"),
    [
        pytest.param("mock", False, "live", 0, id="mock-ignores-live"),
        pytest.param("mock", True, "live", 1, id="mock-switched-to-live"),
        pytest.param("live", True, " Mock ", 0, id="live-switched-to-mock"),
        pytest.param("live", False, "mock", 1, id="live-ignores-mock"),
    ],
)
async def test_the_header_switches_the_mode_only_when_allowed(
    fake: FakeOllama, endpoint: str, mode: str, allowed: bool, header: str, live_calls: int
) -> None:
    path, body = ENDPOINTS[endpoint]
    config = make_config(fake.base_url, mode=mode, allow_mode_header=allowed)
    async with AsgiClient(create_app(config)) as app:
        reply = await app.post(path, json=body, headers={"x-generator-mode": header})
    assert reply.status == 200
    assert len(fake.chat_requests) == live_calls


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_an_unknown_mode_is_a_400_only_when_the_header_is_allowed(fake: FakeOllama, endpoint: str) -> None:
    path, body = ENDPOINTS[endpoint]
    async with AsgiClient(create_app(make_config(fake.base_url, mode="mock", allow_mode_header=True))) as app:
        refused = await app.post(path, json=body, headers={"x-generator-mode": "turbo"})
    async with AsgiClient(create_app(make_config(fake.base_url, mode="mock"))) as app:
        ignored = await app.post(path, json=body, headers={"x-generator-mode": "turbo"})
    assert refused.status == 400
    assert refused.json()["error"]["code"] == "invalid_request"
    if path.startswith("/v1/"):  # OpenAI's error object (issue 15): the header is no body field
        assert refused.json()["error"]["type"] == "invalid_request_error" and refused.json()["error"]["param"] is None
        assert "x-generator-mode" in refused.json()["error"]["message"].lower()
    else:
        assert refused.json()["error"]["details"] == {"header": "x-generator-mode"}
    assert ignored.status == 200


def test_requested_mode() -> None:
    assert requested_mode({}, allowed=True) is None
    assert requested_mode({"x-generator-mode": " LIVE "}, allowed=True) == "live"
    assert requested_mode({"x-generator-mode": "live"}, allowed=False) is None
    with pytest.raises(InvalidRequest):
        requested_mode({"x-generator-mode": ""}, allowed=True)
