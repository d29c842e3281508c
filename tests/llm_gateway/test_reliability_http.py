"""Reliability and security at the HTTP surface, in-process: caps, deadline header, API keys, CORS, OpenAPI, logs."""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any

import pytest
import structlog
from starlette.routing import Route

from llm_gateway.app import create_app
from llm_gateway.config import GatewayConfig, parse_gateway_config
from tests.fakes.asgi import AsgiClient, AsgiResponse

GENERATE = "/api/v1/llm/generate"
KEY = "k-3f9a-very-secret-key"
PROMPT = "SECRET-PROMPT-7781 describe the lamp"


def config(**top: Any) -> GatewayConfig:
    raw: dict[str, Any] = {"mode": "mock", "llm_routing": {"default": {"provider": "mock", "model": "m"}}}
    return parse_gateway_config(raw | top)


def body(**fields: Any) -> dict[str, Any]:
    return {"role": "brand", "task": "profile", "messages": [{"role": "user", "content": PROMPT}]} | fields


def error_of(reply: AsgiResponse) -> dict[str, Any]:
    doc = reply.json()
    assert set(doc) == {"error"} and {"code", "message", "details", "request_id"} == set(doc["error"]), doc
    return dict(doc["error"])


def openai_error_of(reply: AsgiResponse) -> dict[str, Any]:
    """Under /v1 the error is OpenAI's object (issue 15)."""
    doc = reply.json()
    assert set(doc) == {"error"} and {"message", "type", "param", "code"} == set(doc["error"]), doc
    assert reply.headers["x-request-id"]
    return dict(doc["error"])


async def test_too_many_messages_and_characters_are_413_on_both_endpoints() -> None:
    async with AsgiClient(create_app(config(limits={"max_messages": 2, "max_chars": 50}))) as client:
        many = body(messages=[{"role": "user", "content": "hi"}] * 3)
        reply = await client.post(GENERATE, json=many)
        assert reply.status == 413
        assert error_of(reply)["details"] == {"field": "messages", "limit": 2, "actual": 3}
        chat = {"model": "role:brand", "messages": [{"role": "user", "content": "x" * 51}]}
        reply = await client.post("/v1/chat/completions", json=chat)
        assert reply.status == 413 and openai_error_of(reply)["code"] == "payload_too_large"
        assert openai_error_of(reply)["param"] == "messages[].content"


@pytest.mark.parametrize("path", [GENERATE, "/api/v1/llm/generate/stream", "/v1/chat/completions"])
async def test_an_invalid_request_timeout_is_400_on_every_generate_endpoint(path: str) -> None:
    async with AsgiClient(create_app(config())) as client:
        reply = await client.post(path, json=body(), headers={"x-request-timeout": "soon"})
        assert reply.status == 400
        if path.startswith("/v1/"):
            assert "X-Request-Timeout" in openai_error_of(reply)["message"]
        else:
            assert error_of(reply)["details"]["header"] == "x-request-timeout"


async def test_request_timeout_shortens_the_deadline() -> None:
    slow = {"mock": {"class": "llm_gateway.providers.mock:MockProvider", "delay_ms": 60_000}}
    async with AsgiClient(create_app(config(timeouts={"mock": 60}, providers=slow))) as client:
        async with asyncio.timeout(10):  # the 60 s mode deadline would fail this; the header's 0.2 s must win
            reply = await client.post(GENERATE, json=body(), headers={"x-request-timeout": "0.2"})
    assert reply.status == 504
    error = error_of(reply)
    assert error["code"] == "upstream_timeout" and error["details"]["timeout_s"] == 0.2


def _keyed(**auth: Any) -> GatewayConfig:
    return config(auth=auth)


@pytest.mark.parametrize(
    "auth",
    [{"api_key_sha256": [hashlib.sha256(KEY.encode()).hexdigest()]}, {"api_keys": f"other-key,{KEY}"}],
    ids=["hash", "plain-from-env"],
)
async def test_api_keys_guard_every_endpoint_but_health(auth: dict[str, Any]) -> None:
    async with AsgiClient(create_app(_keyed(**auth))) as client:
        for headers in (
            {},
            {"authorization": "Bearer wrong"},
            {"authorization": KEY},
            {"authorization": "Basic " + KEY},
        ):
            reply = await client.post(GENERATE, json=body(), headers={"x-request-id": "auth-1", **headers})
            assert reply.status == 401
            assert reply.headers["www-authenticate"].startswith("Bearer")
            error = error_of(reply)
            assert error["code"] == "unauthorized" and error["request_id"] == "auth-1"
        assert (await client.get("/api/v1/llm/routes")).status == 401
        ok = await client.post(GENERATE, json=body(), headers={"authorization": f"Bearer {KEY}"})
        assert ok.status == 200, ok.body
        assert (await client.get("/api/v1/llm/routes", headers={"authorization": f"bearer {KEY}"})).status == 200
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
            assert (await client.get(path)).status == 200, path
        metrics = (await client.get("/metrics")).body.decode()
        assert 'outcome="unauthorized"' in metrics


async def test_without_keys_no_auth_middleware_is_installed() -> None:
    app = create_app(config())
    assert "ApiKeyMiddleware" not in repr(app.user_middleware)
    keyed = create_app(_keyed(api_keys=KEY))
    assert "ApiKeyMiddleware" in repr(keyed.user_middleware)


async def test_keys_and_prompts_never_reach_info_logs() -> None:
    async with AsgiClient(create_app(_keyed(api_keys=KEY))) as client:
        with structlog.testing.capture_logs() as logs:
            await client.post(GENERATE, json=body(), headers={"authorization": f"Bearer {KEY}"})
            await client.post(GENERATE, json=body(), headers={"authorization": "Bearer wrong-key-123"})
            await client.post("/v1/chat/completions", json={"model": "role:brand", "messages": [
                {"role": "user", "content": PROMPT}]}, headers={"authorization": f"Bearer {KEY}"})
    assert logs, "the requests were logged"
    text = repr(logs)
    for secret in (KEY, "wrong-key-123", "SECRET-PROMPT-7781"):
        assert secret not in text


async def test_cors_is_off_by_default() -> None:
    async with AsgiClient(create_app(config())) as client:
        origin = {"origin": "https://evil.example", "access-control-request-method": "POST"}
        preflight = await client.request("OPTIONS", GENERATE, headers=origin)
        assert preflight.status == 405
        reply = await client.post(GENERATE, json=body(), headers={"origin": "https://evil.example"})
        assert reply.status == 200
        for response in (preflight, reply):
            assert not any(name.startswith("access-control-") for name in response.headers)


async def test_openapi_describes_every_route_and_schema() -> None:
    app = create_app(config())
    async with AsgiClient(app) as client:
        doc = (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    served = {(m.lower(), re.sub(r":\w+}", "}", r.path)) for r in app.routes if isinstance(r, Route)
              for m in (r.methods or ()) if m != "HEAD"}
    documented = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert served == documented
    schemas = doc["components"]["schemas"]
    assert {"GenerateRequest", "GenerateResponse", "ErrorEnvelope", "RoutingTable", "Readiness"} <= set(schemas)
    generate = doc["paths"][GENERATE]["post"]
    assert generate["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/GenerateRequest"
    }
    for status in ("400", "413", "429", "502", "503", "504"):
        assert generate["responses"][status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorEnvelope"}
    assert "securitySchemes" not in doc["components"]


async def test_openapi_marks_secured_operations_when_keys_are_configured() -> None:
    async with AsgiClient(create_app(_keyed(api_keys=KEY))) as client:
        doc = (await client.get("/openapi.json")).json()
    assert doc["paths"][GENERATE]["post"]["security"] == [{"bearer": []}]
    assert "401" in doc["paths"][GENERATE]["post"]["responses"]
    assert doc["paths"]["/healthz"]["get"]["security"] == []


async def test_readyz_shows_breaker_and_backpressure_of_guarded_providers() -> None:
    cfg = config(resilience={"providers": {"mock": {"backpressure": {"max_in_flight": 2}}}})
    async with AsgiClient(create_app(cfg)) as client:
        ready = (await client.get("/readyz")).json()
    assert ready["status"] == "ready"
    assert ready["providers"]["mock"]["breaker"]["state"] == "closed"
    assert ready["providers"]["mock"]["backpressure"]["max_in_flight"] == 2


def test_request_urls_come_only_from_config() -> None:
    # No SSRF: no client-facing type has a field that could carry a URL or host to call.
    from llm_gateway.openai_compat import ChatCompletionRequest
    from shared_contracts.llm import GenerateOptions, GenerateRequest, Message

    for struct in (GenerateRequest, GenerateOptions, Message, ChatCompletionRequest):
        for name in struct.__struct_fields__:
            assert not any(word in name.lower() for word in ("url", "host", "base", "endpoint")), (struct, name)
