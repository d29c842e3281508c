"""The gateway clients: request shape, typed output, retries on 429/503 only, timeouts, typed errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web
from aioresponses import aioresponses
from yarl import URL

from orchestrator.agents import BrandProfile, PagePlan
from orchestrator.clients import LLMGatewayClient, MediaGatewayClient, response_schema
from service_common.logging import bound_log_context
from service_common.retry import parse_retry_after
from shared_contracts.errors import (
    GatewayError,
    InvalidOutput,
    InvalidRequest,
    InvalidWorkflow,
    ProviderUnavailable,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)
from shared_contracts.llm import Message
from tests.orchestrator.answers import LLM_URL, MEDIA_URL, PRODUCT, envelope, llm_answer, media_job, output_of
from tests.orchestrator.conftest import RecordingSleep, client_config

GENERATE = f"{LLM_URL}/api/v1/llm/generate"
IMAGE = f"{MEDIA_URL}/api/v1/media/image/generate"
MESSAGES = [Message(role="user", content="Write the brand profile.")]


def sent_bodies(upstream: aioresponses, url: str) -> list[dict[str, Any]]:
    calls = upstream.requests.get(("POST", URL(url)), [])
    return [msgspec.json.decode(call.kwargs["data"]) for call in calls]


def sent_headers(upstream: aioresponses, url: str) -> list[dict[str, str]]:
    return [dict(call.kwargs["headers"]) for call in upstream.requests.get(("POST", URL(url)), [])]


async def generate_brand(llm: LLMGatewayClient, **kwargs: Any) -> Any:
    return await llm.generate(
        role="brand", task="brand_profile", messages=MESSAGES, payload={"product": PRODUCT}, output=BrandProfile,
        **kwargs,
    )


async def test_generate_returns_typed_output_and_the_gateway_meta(
    llm: LLMGatewayClient, upstream: aioresponses
) -> None:
    upstream.post(GENERATE, payload=llm_answer("brand"), headers={"x-request-id": "abc"})
    result = await generate_brand(llm)
    assert isinstance(result.output, BrandProfile)
    assert result.output.tagline == output_of("brand")["tagline"]
    assert (result.response.provider, result.response.mode) == ("mock", "mock")
    assert result.request_id == "abc"
    [body] = sent_bodies(upstream, GENERATE)
    assert body["role"] == "brand" and body["task"] == "brand_profile"
    assert body["payload"] == {"product": PRODUCT}
    assert body["response_schema"] == response_schema(BrandProfile)
    assert body["messages"] == [{"role": "user", "content": "Write the brand profile."}]


async def test_generate_passes_the_request_id_through(llm: LLMGatewayClient, upstream: aioresponses) -> None:
    upstream.post(GENERATE, payload=llm_answer("brand"))
    await generate_brand(llm, request_id="run-42")
    assert sent_headers(upstream, GENERATE)[0]["x-request-id"] == "run-42"


async def test_generate_accepts_a_raw_json_schema(llm: LLMGatewayClient, upstream: aioresponses) -> None:
    schema = {"type": "object", "properties": {"tagline": {"type": "string"}}, "required": ["tagline"]}
    upstream.post(GENERATE, payload=llm_answer("brand"))
    result = await llm.generate(role="brand", task="t", messages=MESSAGES, output=schema)
    assert result.output["tagline"] == output_of("brand")["tagline"]
    assert sent_bodies(upstream, GENERATE)[0]["response_schema"] == schema


def test_response_schema_inlines_the_root_and_keeps_nested_defs() -> None:
    schema = response_schema(PagePlan)
    assert schema["type"] == "object" and "$ref" not in schema
    assert set(schema["$defs"]) == {"SectionPlan"}
    assert schema["properties"]["sections"]["maxItems"] == 8


async def test_output_that_does_not_fit_the_type_is_invalid_output(
    llm: LLMGatewayClient, upstream: aioresponses
) -> None:
    broken = {**output_of("brand"), "personality": []}
    upstream.post(GENERATE, payload=llm_answer("brand", json_output=broken))
    with pytest.raises(InvalidOutput) as caught:
        await generate_brand(llm)
    assert caught.value.details["role"] == "brand"


async def test_answer_without_json_is_invalid_output(llm: LLMGatewayClient, upstream: aioresponses) -> None:
    body = llm_answer("brand")
    body["json"] = None
    upstream.post(GENERATE, payload=body)
    with pytest.raises(InvalidOutput):
        await generate_brand(llm)


@pytest.mark.parametrize("status,code", [(429, "rate_limited"), (503, "provider_unavailable")])
async def test_429_and_503_are_retried_honouring_retry_after(
    llm: LLMGatewayClient, upstream: aioresponses, sleep: RecordingSleep, status: int, code: str
) -> None:
    upstream.post(GENERATE, status=status, payload=envelope(code), headers={"Retry-After": "2"})
    upstream.post(GENERATE, payload=llm_answer("brand"))
    result = await generate_brand(llm)
    assert isinstance(result.output, BrandProfile)
    assert sleep.delays == [2.0]
    assert len(sent_bodies(upstream, GENERATE)) == 2


async def test_retries_without_retry_after_back_off_exponentially(
    llm: LLMGatewayClient, upstream: aioresponses, sleep: RecordingSleep
) -> None:
    upstream.post(GENERATE, status=503, payload=envelope("provider_unavailable"), repeat=2)
    upstream.post(GENERATE, payload=llm_answer("brand"))
    await generate_brand(llm)
    assert sleep.delays == [0.5, 1.0]


async def test_retries_are_bounded_and_the_last_error_is_typed(
    llm: LLMGatewayClient, upstream: aioresponses, sleep: RecordingSleep
) -> None:
    limited = envelope("rate_limited", "slow down")
    upstream.post(GENERATE, status=429, payload=limited, headers={"Retry-After": "1"}, repeat=True)
    with pytest.raises(RateLimited) as caught:
        await generate_brand(llm)
    assert len(sent_bodies(upstream, GENERATE)) == 3  # the first try and max_retries=2 more
    assert sleep.delays == [1.0, 1.0]
    assert caught.value.retry_after == 1.0
    assert caught.value.envelope is not None and caught.value.envelope.message == "slow down"


async def test_a_long_retry_after_is_capped(upstream: aioresponses, sleep: RecordingSleep) -> None:
    client = LLMGatewayClient(client_config(LLM_URL, max_retry_after_s=3), sleep=sleep)
    await client.start()
    try:
        upstream.post(GENERATE, status=429, payload=envelope("rate_limited"), headers={"Retry-After": "3600"})
        upstream.post(GENERATE, payload=llm_answer("brand"))
        await generate_brand(client)
    finally:
        await client.close()
    assert sleep.delays == [3.0]


@pytest.mark.parametrize(
    "status,code,error",
    [
        (400, "invalid_request", InvalidRequest),
        (502, "upstream_error", UpstreamError),
        (422, "invalid_output", InvalidOutput),
    ],
)
async def test_other_errors_are_not_retried_and_keep_the_envelope(
    llm: LLMGatewayClient,
    upstream: aioresponses,
    sleep: RecordingSleep,
    status: int,
    code: str,
    error: type[GatewayError],
) -> None:
    upstream.post(GENERATE, status=status, payload=envelope(code, "nope", path="$.messages"))
    with pytest.raises(error) as caught:
        await generate_brand(llm)
    assert type(caught.value) is error
    assert caught.value.details == {"path": "$.messages"}
    assert caught.value.envelope is not None and caught.value.envelope.request_id == "req-1"
    assert sleep.delays == []
    assert len(sent_bodies(upstream, GENERATE)) == 1


async def test_a_body_that_is_not_an_envelope_is_upstream_error(llm: LLMGatewayClient, upstream: aioresponses) -> None:
    upstream.post(GENERATE, status=500, body=b"<html>bad gateway</html>")
    with pytest.raises(UpstreamError) as caught:
        await generate_brand(llm)
    assert caught.value.details["status"] == 500
    assert "bad gateway" in caught.value.details["body"]


async def test_unreachable_gateway_is_provider_unavailable(llm: LLMGatewayClient, upstream: aioresponses) -> None:
    upstream.post(GENERATE, exception=aiohttp.ClientConnectionError("refused"))
    with pytest.raises(ProviderUnavailable) as caught:
        await generate_brand(llm)
    assert caught.value.details["gateway"] == "llm"


@pytest.fixture
async def silent_gateway() -> AsyncIterator[str]:
    """A loopback server that accepts the request and never answers until the test ends."""
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/api/v1/llm/generate", hang)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    release.set()
    await runner.cleanup()


async def test_a_gateway_that_does_not_answer_times_out_after_its_timeout_plus_margin(silent_gateway: str) -> None:
    config = client_config(silent_gateway, timeout_s=0.2, timeout_margin_s=0.1)
    async with LLMGatewayClient(config) as client:
        assert client.timeout_s == pytest.approx(0.3)
        with pytest.raises(UpstreamTimeout) as caught:
            await generate_brand(client)
    assert caught.value.details["timeout_s"] == pytest.approx(0.3)


def test_parse_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-4") == 0.0


async def test_generate_image_sends_a_waited_vision_request_and_returns_the_job(
    media: MediaGatewayClient, upstream: aioresponses
) -> None:
    upstream.post(IMAGE, payload=media_job())
    job = await media.generate_image(
        role="vision", task="product_image", prompt="a tumbler", negative_prompt="text", width=832, height=1216,
        request_id="run-1",
    )
    assert job.status == "succeeded" and job.images[0].url.startswith("http://media.test/")
    [call] = upstream.requests[("POST", URL(IMAGE))]
    body = msgspec.json.decode(call.kwargs["data"])
    assert body == {
        "role": "vision", "task": "product_image", "prompt": "a tumbler", "negative_prompt": "text",
        "width": 832, "height": 1216,
    }  # wait defaults to true, so omit_defaults leaves it out
    assert call.kwargs["headers"]["x-request-id"] == "run-1"


async def test_a_failed_job_raises_its_own_error_typed(media: MediaGatewayClient, upstream: aioresponses) -> None:
    error = {"code": "invalid_workflow", "message": "node 4: ckpt_name not found", "details": {"node": "4"}}
    upstream.post(IMAGE, payload=media_job(status="failed", error=error))
    with pytest.raises(InvalidWorkflow) as caught:
        await media.generate_image(role="vision", task="product_image", prompt="x")
    assert caught.value.details == {"node": "4"}


async def test_media_503_is_retried(media: MediaGatewayClient, upstream: aioresponses, sleep: RecordingSleep) -> None:
    upstream.post(IMAGE, status=503, payload=envelope("not_ready"), headers={"Retry-After": "1"})
    upstream.post(IMAGE, payload=media_job())
    job = await media.generate_image(role="vision", task="product_image", prompt="x")
    assert job.status == "succeeded" and sleep.delays == [1.0]


async def test_the_current_trace_context_is_passed_on(llm: LLMGatewayClient, upstream: aioresponses) -> None:
    upstream.post(GENERATE, payload=llm_answer("brand"))
    trace = {"request_id": "outer-1", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"}
    with bound_log_context(**trace):
        await generate_brand(llm)
    headers = sent_headers(upstream, GENERATE)[0]
    assert headers["x-request-id"] == "outer-1"
    assert headers["traceparent"] == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
