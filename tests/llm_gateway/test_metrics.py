"""The LLM Gateway's `/metrics`: breaker state per guarded provider, and a generate counted by its route."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from llm_gateway.app import create_app
from llm_gateway.metrics import LLMMetrics
from tests.fakes.asgi import AsgiClient

from ._support import make_config


def _samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


async def test_breaker_state_of_each_live_provider_is_exported() -> None:
    async with AsgiClient(create_app(make_config())) as client:
        samples = _samples((await client.get("/metrics")).body)
    assert samples[("pdp_breaker_state", (("provider", "ollama"), ("state", "closed")))] == 1
    assert samples[("pdp_breaker_state", (("provider", "ollama"), ("state", "open")))] == 0


async def test_a_mock_generate_is_counted_with_its_route_and_tokens() -> None:
    metrics = LLMMetrics()
    app = create_app(make_config(mode="mock"), metrics=metrics)
    async with AsgiClient(app) as client:
        reply = await client.post("/api/v1/llm/generate", json={
            "role": "strategist", "task": "outline", "messages": [{"role": "user", "content": "Plan the page."}]})
        assert reply.status == 200
    samples = _samples(metrics.render())
    key = (("endpoint", "/api/v1/llm/generate"), ("method", "POST"), ("model", "qwen2.5:14b"),
           ("outcome", "ok"), ("provider", "mock"), ("role", "strategist"), ("task", "outline"))
    assert samples[("pdp_requests_total", key)] == 1
    assert samples[("pdp_llm_tokens_total", (("direction", "out"), ("model", "qwen2.5:14b"), ("provider", "mock")))] > 0


async def test_unreported_usage_is_counted_as_unreported_not_as_zero_tokens() -> None:
    metrics = LLMMetrics()
    config = make_config(
        providers={"quiet": {"class": "tests.llm_gateway._support:ReplyProvider", "report_usage": False}},
        llm_routing={"default": {"provider": "quiet", "model": "m"}},
    )
    async with AsgiClient(create_app(config, metrics=metrics)) as client:
        reply = await client.post("/api/v1/llm/generate", json={
            "role": "brand", "task": "profile", "messages": [{"role": "user", "content": "Hi."}]})
        assert reply.status == 200 and reply.json()["usage"] == {"input_tokens": None, "output_tokens": None}
    samples = _samples(metrics.render())
    for direction in ("in", "out"):
        labels = (("direction", direction), ("model", "m"), ("provider", "quiet"))
        assert samples[("pdp_llm_usage_unreported_total", labels)] == 1
        assert ("pdp_llm_tokens_total", labels) not in samples
