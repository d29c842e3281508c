"""The HTTP surface in-process: bodies and their error codes, headers, modes, SSE, routes, health, logs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from llm_gateway.app import create_app
from llm_gateway.config import GatewayConfig, load_gateway_config
from tests.fakes.asgi import AsgiClient, AsgiResponse, sse_events
from tests.fakes.ollama import FakeOllama, Fault

from ._support import make_config

GENERATE = "/api/v1/llm/generate"
STREAM = "/api/v1/llm/generate/stream"
SCHEMA = {"type": "object", "properties": {"headline": {"type": "string", "minLength": 5}}, "required": ["headline"]}


def body(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"role": "copywriter", "task": "headline",
                              "messages": [{"role": "user", "content": "SECRET-PROMPT write a headline"}],
                              "payload": {"product_name": "Aurora Desk Lamp"}}
    fields.update(overrides)
    return fields


@pytest.fixture
async def fake() -> AsyncIterator[FakeOllama]:
    async with FakeOllama(models=["qwen2.5:7b", "qwen2.5:14b"]) as server:
        yield server


def client(config: GatewayConfig, **kw: Any) -> AsgiClient:
    return AsgiClient(create_app(config, **kw))


def error_of(reply: AsgiResponse) -> dict[str, Any]:
    envelope = reply.json()
    assert set(envelope) == {"error"} and set(envelope["error"]) == {"code", "message", "details", "request_id"}
    assert envelope["error"]["request_id"] == reply.headers["x-request-id"]
    error: dict[str, Any] = envelope["error"]
    return error


@pytest.mark.parametrize(
    ("raw", "status", "code", "needle"),
    [
        (b"{not json", 400, "invalid_request", "not valid JSON"),
        (b"", 400, "invalid_request", "empty"),
        (b"[1, 2]", 400, "invalid_request", "Expected `object`"),
        (b'{"role": 5, "task": "t", "messages": [{"role": "user", "content": "x"}]}', 400, "invalid_request",
         "$.role"),
        (b'{"role": "r", "task": "t", "messages": [{"role": "user", "content": "x"}], "temperature": 1}', 400,
         "invalid_request", "unknown field `temperature`"),
        (b'{"role": "r", "task": "t", "messages": []}', 400, "invalid_request", "$.messages"),
        (b'{"task": "t", "messages": [{"role": "user", "content": "x"}]}', 400, "invalid_request",
         "missing required field `role`"),
        (b'{"role": "r", "task": "t", "messages": [{"role": "robot", "content": "x"}]}', 400, "invalid_request",
         "$.messages[0].role"),
        (b'{"role": "r", "task": "t", "messages": [{"role": "user", "content": "x"}], "options": {"max_tokens": 0}}',
         400, "invalid_request", "$.options.max_tokens"),
        (b'{"role": "r", "task": "t", "messages": [{"role": "user", "content": "x"}], "response_schema": '
         b'{"type": "array"}}', 400, "invalid_request", "JSON object"),
    ],
)
@pytest.mark.parametrize("path", [GENERATE, STREAM])
async def test_bad_bodies_get_their_code_and_status(raw: bytes, status: int, code: str, needle: str, path: str) -> None:
    async with client(make_config(mode="mock")) as app:
        reply = await app.post(path, body=raw)
    assert reply.status == status and reply.headers["content-type"] == "application/json"
    error = error_of(reply)
    assert error["code"] == code
    assert needle in error["message"] + str(error["details"])


async def test_oversized_body_is_413() -> None:
    async with client(make_config(mode="mock", max_body_bytes=2048)) as app:
        reply = await app.post(GENERATE, json=body(payload={"blob": "x" * 5000}))
    assert reply.status == 413 and error_of(reply)["code"] == "payload_too_large"


async def test_no_route_is_404() -> None:
    async with client(make_config(mode="mock")) as app:
        reply = await app.post(GENERATE, json=body(role="janitor"))
    assert reply.status == 404 and error_of(reply)["code"] == "no_route"


async def test_wrong_method_and_unknown_path() -> None:
    async with client(make_config(mode="mock")) as app:
        wrong = await app.get(GENERATE)
        missing = await app.get("/api/v1/llm/nothing")
    assert wrong.status == 405 and error_of(wrong)["code"] == "method_not_allowed"
    assert missing.status == 404 and error_of(missing)["code"] == "not_found"


async def test_request_id_is_echoed_or_made() -> None:
    async with client(make_config(mode="mock")) as app:
        given = await app.post(GENERATE, json=body(), headers={"x-request-id": "qa-run-42"})
        made = await app.post(GENERATE, json=body())
    assert given.status == 200 and given.headers["x-request-id"] == "qa-run-42"
    assert len(made.headers["x-request-id"]) >= 16


async def test_mock_mode_answers_schema_valid_json() -> None:
    async with client(make_config(mode="mock")) as app:
        reply = await app.post(GENERATE, json=body(response_schema=SCHEMA))
    answer = reply.json()
    assert reply.status == 200 and answer["mode"] == "mock" and answer["provider"] == "mock"
    assert answer["model"] == "qwen2.5:14b" and "Aurora Desk Lamp" in answer["json"]["headline"]


async def test_live_mode_calls_ollama_with_the_schema_in_format(fake: FakeOllama) -> None:
    async with client(make_config(fake.base_url, mode="live")) as app:
        reply = await app.post(GENERATE, json=body(response_schema=SCHEMA, options={"max_tokens": 500}))
    answer = reply.json()
    assert reply.status == 200, answer
    sent = fake.chat_requests[-1].body
    assert sent["format"] == SCHEMA and sent["model"] == "qwen2.5:14b" and sent["stream"] is False
    assert sent["options"] == {"num_predict": 500}
    assert answer["provider"] == "ollama" and answer["mode"] == "live" and len(answer["json"]["headline"]) >= 5
    assert answer["usage"]["output_tokens"] == sent_tokens(answer["text"])


def sent_tokens(text: str) -> int:
    # The fake counts one token per whitespace-separated piece, as its eval_count.
    return len(text.split())


async def test_live_fallback_on_upstream_500_is_listed_in_attempts(fake: FakeOllama) -> None:
    fake.faults["qwen2.5:14b"] = Fault(status=500, error="llama runner process has terminated")
    async with client(make_config(fake.base_url)) as app:
        reply = await app.post(GENERATE, json=body())
    answer = reply.json()
    assert reply.status == 200 and answer["model"] == "qwen2.5:7b"
    assert [(a["model"], a["outcome"]) for a in answer["attempts"]] == [("qwen2.5:14b", "upstream_error"),
                                                                         ("qwen2.5:7b", "ok")]


async def test_live_unknown_model_is_502_upstream_rejected(fake: FakeOllama) -> None:
    fake.models = ["qwen2.5:14b"]
    async with client(make_config(fake.base_url)) as app:
        reply = await app.post(GENERATE, json=body(role="brand"))
    error = error_of(reply)
    assert reply.status == 502 and error["code"] == "upstream_rejected"
    assert 'model "qwen2.5:7b" not found' in error["message"]
    assert error["details"]["attempts"][0]["outcome"] == "upstream_rejected"


async def test_live_ollama_down_is_503(refused_port: int) -> None:
    async with client(make_config(f"http://127.0.0.1:{refused_port}")) as app:
        reply = await app.post(GENERATE, json=body(role="brand"))
        ready = await app.get("/readyz")
    assert reply.status == 503 and error_of(reply)["code"] == "provider_unavailable"
    assert ready.status == 503 and error_of(ready)["code"] == "not_ready"
    assert "ollama" in error_of(ready)["details"]["providers"]


async def test_mode_header_is_ignored_unless_allowed(fake: FakeOllama) -> None:
    async with client(make_config(fake.base_url, mode="mock")) as app:
        ignored = await app.post(GENERATE, json=body(), headers={"x-generator-mode": "live"})
    async with client(make_config(fake.base_url, mode="mock", allow_mode_header=True)) as app:
        honoured = await app.post(GENERATE, json=body(), headers={"x-generator-mode": "live"})
        invalid = await app.post(GENERATE, json=body(), headers={"x-generator-mode": "turbo"})
    assert ignored.json()["mode"] == "mock"
    assert honoured.json()["mode"] == "live" and honoured.json()["provider"] == "ollama"
    assert invalid.status == 400 and error_of(invalid)["details"] == {"header": "x-generator-mode"}


async def test_generator_mode_in_the_environment_sets_the_mode(fake: FakeOllama, repo_root: Path) -> None:
    environ = {"GENERATOR_MODE": "live", "OLLAMA_BASE_URL": fake.base_url}
    async with client(load_gateway_config(repo_root / "config" / "llm_gateway.yaml", environ)) as app:
        reply = await app.post(GENERATE, json=body())
    assert reply.json()["mode"] == "live"


async def test_sse_deltas_then_done(fake: FakeOllama) -> None:
    async with client(make_config(fake.base_url)) as app:
        reply = await app.post(STREAM, json=body())
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/event-stream")
    events = sse_events(reply.body)
    names = [name for name, _ in events]
    assert names[-1] == "done" and set(names[:-1]) == {"delta"} and len(names) > 2
    done = events[-1][1]
    assert "".join(data["text"] for name, data in events[:-1]) == done["text"]
    assert done["text"].startswith("Fake Ollama (qwen2.5:14b) answers:") and fake.chat_requests[-1].body["stream"]


async def test_sse_error_event_after_an_error_line_mid_stream(fake: FakeOllama) -> None:
    fake.fault = Fault(error_after=2, error="an error was encountered while running the model")
    async with client(make_config(fake.base_url)) as app:
        reply = await app.post(STREAM, json=body())
    events = sse_events(reply.body)
    assert [name for name, _ in events] == ["delta", "delta", "error"]
    error = events[-1][1]["error"]
    assert error["code"] == "upstream_error" and "running the model" in error["message"]
    assert error["request_id"] == reply.headers["x-request-id"]


async def test_sse_in_mock_mode() -> None:
    async with client(make_config(mode="mock")) as app:
        reply = await app.post(STREAM, json=body(response_schema=SCHEMA))
    events = sse_events(reply.body)
    assert events[-1][0] == "done" and events[-1][1]["json"]["headline"]


async def test_routes_listing_has_no_secrets() -> None:
    config = make_config(providers={"ollama": {"class": "llm_gateway.providers.ollama:OllamaProvider",
                                               "base_url": "http://127.0.0.1:9",
                                               "headers": {"authorization": "Bearer sekrit"}}})
    async with client(config) as app:
        reply = await app.get("/api/v1/llm/routes")
    table = reply.json()
    assert reply.status == 200 and table["mode"] == "live" and table["providers"] == {"ollama": "live", "mock": "mock"}
    assert [r["model"] for r in table["rules"]] == ["qwen2.5:14b", "qwen2.5:7b"]
    assert table["rules"][0]["fallbacks"] == [{"provider": "ollama", "model": "qwen2.5:7b"}]
    assert table["rules"][0]["timeout_s"] == {"mock": 5.0, "live": 180.0}
    assert b"sekrit" not in reply.body


async def test_health_and_readiness(fake: FakeOllama) -> None:
    async with client(make_config(mode="mock")) as app:
        health = await app.get("/healthz")
        mock_ready = await app.get("/readyz")
    async with client(make_config(fake.base_url)) as app:
        live_ready = await app.get("/readyz")
    assert health.status == 200 and health.json() == {"status": "ok"}
    assert mock_ready.status == 200 and mock_ready.json()["mode"] == "mock"
    assert live_ready.status == 200 and any(r.path == "/api/version" for r in fake.requests)


async def test_one_log_line_per_request_without_prompt_text(fake: FakeOllama) -> None:
    async with client(make_config(fake.base_url)) as app:
        with structlog.testing.capture_logs() as logs:
            await app.post(GENERATE, json=body(), headers={"x-request-id": "log-check"})
            await app.post(GENERATE, json=body(role="janitor"))
    lines = [line for line in logs if line["event"] == "llm_request"]
    assert len(lines) == 2
    ok, failed = lines
    assert {k: ok[k] for k in ("role", "task", "provider", "model", "mode", "outcome")} == {
        "role": "copywriter", "task": "headline", "provider": "ollama", "model": "qwen2.5:14b", "mode": "live",
        "outcome": "ok"}
    assert ok["latency_ms"] >= 0 and failed["outcome"] == "no_route"
    assert "SECRET-PROMPT" not in repr(logs)
