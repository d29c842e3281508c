"""The fake Ollama itself: its protocol and every fault knob, seen through the real provider over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import msgspec
import pytest

from llm_gateway.providers.base import Delta
from llm_gateway.providers.ollama import OllamaProvider, OllamaSettings
from shared_contracts.errors import RateLimited, UpstreamError, UpstreamRejected, UpstreamTimeout
from shared_contracts.llm import GenerateOptions
from tests.fakes.ollama import FakeOllama, Fault

from ._support import call, in_seconds


@pytest.fixture
async def pair() -> AsyncIterator[tuple[FakeOllama, OllamaProvider]]:
    async with FakeOllama(models=["qwen2.5:7b"], reply="one two three four five six") as fake:
        provider = OllamaProvider("ollama", OllamaSettings(base_url=fake.base_url))
        await provider.start()
        yield fake, provider
        await provider.close()


async def test_version_tags_and_recorded_requests(pair: tuple[FakeOllama, OllamaProvider]) -> None:
    fake, _ = pair
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{fake.base_url}/api/tags") as r:
            tags = await r.json()
        async with session.get(f"{fake.base_url}/api/version") as r:
            version = await r.json()
    assert [m["name"] for m in tags["models"]] == ["qwen2.5:7b"] and version == {"version": fake.version}
    assert [r.path for r in fake.requests] == ["/api/tags", "/api/version"]


async def test_stream_lines_carry_ollamas_fields(pair: tuple[FakeOllama, OllamaProvider]) -> None:
    fake, _ = pair
    async with aiohttp.ClientSession() as session:
        body = {"model": "qwen2.5:7b", "messages": [{"role": "user", "content": "hi"}]}
        async with session.post(f"{fake.base_url}/api/chat", json=body) as r:
            assert r.headers["content-type"] == "application/x-ndjson"
            lines = [line async for line in r.content]
    chunks = [msgspec.json.decode(line) for line in lines]
    assert all(not c["done"] and set(c) == {"model", "created_at", "message", "done"} for c in chunks[:-1])
    assert {"done_reason", "total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration",
            "eval_count", "eval_duration"} <= set(chunks[-1]) and chunks[-1]["done"] is True


async def test_num_predict_cuts_the_answer_with_done_reason_length(pair: tuple[FakeOllama, OllamaProvider]) -> None:
    _, provider = pair
    result = await provider.generate(call(options=GenerateOptions(max_tokens=2)), deadline=in_seconds(5))
    assert (result.text, result.finish_reason, result.output_tokens) == ("one two ", "length", 2)


async def test_unknown_model_404(pair: tuple[FakeOllama, OllamaProvider]) -> None:
    _, provider = pair
    with pytest.raises(UpstreamRejected, match='model "nope:1b" not found, try pulling it first'):
        await provider.generate(call(model="nope:1b"), deadline=in_seconds(5))


@pytest.mark.parametrize(
    ("fault", "error", "needle"),
    [
        (Fault(malformed_after=1), UpstreamError, "malformed"),
        (Fault(cut_after=2), UpstreamError, "final line"),
        (Fault(error_after=0, error="boom"), UpstreamError, "boom"),
        (Fault(status=429, retry_after="2"), RateLimited, "429"),
    ],
)
async def test_stream_faults(pair: tuple[FakeOllama, OllamaProvider], fault: Fault, error: type, needle: str) -> None:
    fake, provider = pair
    fake.fault = fault
    with pytest.raises(error, match=needle):
        async for item in provider.stream(call(), deadline=in_seconds(5)):
            assert isinstance(item, Delta)


async def test_delay_past_the_deadline_times_out(pair: tuple[FakeOllama, OllamaProvider]) -> None:
    fake, provider = pair
    fake.fault = Fault(delay=5)
    with pytest.raises(UpstreamTimeout):
        await provider.generate(call(), deadline=in_seconds(0.2))


async def test_fault_times_and_raw_body(pair: tuple[FakeOllama, OllamaProvider]) -> None:
    fake, provider = pair
    fake.fault = Fault(status=500, times=1)
    with pytest.raises(UpstreamError):
        await provider.generate(call(), deadline=in_seconds(5))
    assert (await provider.generate(call(), deadline=in_seconds(5))).text == "one two three four five six"
    fake.faults["qwen2.5:7b"] = Fault(raw=b"not json")
    with pytest.raises(UpstreamError, match="malformed"):
        await provider.generate(call(), deadline=in_seconds(5))
