"""Tool calling, one contract for every provider (issue 15 item 4), from recorded upstream payloads.

Each provider's tools, choice and tool turns go out in its own protocol, and its calls come back as the same
ToolCalls (whole or streamed), with `finish_reason: tool_calls`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest
from aioresponses import aioresponses

from llm_gateway.providers.anthropic import AnthropicProvider, AnthropicSettings
from llm_gateway.providers.base import Delta, Provider, ProviderResult
from llm_gateway.providers.gemini import GeminiProvider, GeminiSettings
from llm_gateway.providers.ollama import OllamaProvider, OllamaSettings
from llm_gateway.providers.openai import OpenAIProvider, OpenAISettings
from shared_contracts.llm import Message
from shared_contracts.tools import NamedToolChoice, Tool, ToolCall

from ._support import KEY, fixture, in_seconds, make_call, sent_bodies

GEMINI = "https://generativelanguage.googleapis.com/v1beta/models/test-model"
WEATHER = Tool(name="get_weather", description="The weather in a city.", parameters={
    "type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
    "required": ["city", "unit"]})
TIME = Tool(name="get_time", parameters={"type": "object", "properties": {"zone": {"type": "string"}}})
EXPECTED = [("get_weather", {"city": "Seoul", "unit": "c"}), ("get_time", {"zone": "Asia/Seoul"})]
CALL = ToolCall(id="call_abc", name="get_weather", arguments={"city": "Seoul", "unit": "c"})
ROUND_TRIP = [Message(role="user", content="Weather in Seoul?"),
              Message(role="assistant", content="", tool_calls=[CALL]),
              Message(role="tool", content="21 C, clear", tool_call_id="call_abc")]


@dataclass(frozen=True)
class Case:
    build: Callable[[], Provider]
    url: str
    stream_url: str
    vendor: str
    body: str
    stream: str
    tools_sent: Callable[[dict[str, Any]], Any]
    forced_sent: Callable[[dict[str, Any]], Any]
    turns_sent: Callable[[dict[str, Any]], Any]
    stream_type: str = "text/event-stream"


CASES = {
    "openai": Case(
        lambda: OpenAIProvider("openai", OpenAISettings(api_key=KEY)),
        "https://api.openai.com/v1/chat/completions", "https://api.openai.com/v1/chat/completions", "openai",
        "chat_completion_tool_calls.json", "chat_stream_tool_calls.txt",
        lambda b: [t["function"]["name"] for t in b["tools"]],
        lambda b: b["tool_choice"],
        lambda b: (b["messages"][1]["tool_calls"][0]["function"]["arguments"], b["messages"][2]["tool_call_id"]),
    ),
    "anthropic": Case(
        lambda: AnthropicProvider("anthropic", AnthropicSettings(api_key=KEY)),
        "https://api.anthropic.com/v1/messages", "https://api.anthropic.com/v1/messages", "anthropic",
        "message_tool_calls.json", "stream_tool_calls.txt",
        lambda b: [t["name"] for t in b["tools"]],
        lambda b: b["tool_choice"],
        lambda b: (b["messages"][1]["content"][0]["input"], b["messages"][2]["content"][0]["tool_use_id"]),
    ),
    "gemini": Case(
        lambda: GeminiProvider("gemini", GeminiSettings(api_key=KEY)),
        f"{GEMINI}:generateContent", f"{GEMINI}:streamGenerateContent?alt=sse", "gemini",
        "generate_content_tool_calls.json", "stream_tool_calls.txt",
        lambda b: [f["name"] for f in b["tools"][0]["functionDeclarations"]],
        lambda b: b["toolConfig"]["functionCallingConfig"],
        lambda b: (b["contents"][1]["parts"][0]["functionCall"]["args"],
                   b["contents"][2]["parts"][0]["functionResponse"]["name"]),
    ),
    "ollama": Case(
        lambda: OllamaProvider("ollama", OllamaSettings(base_url="http://ollama.test:11434")),
        "http://ollama.test:11434/api/chat", "http://ollama.test:11434/api/chat", "ollama",
        "chat_tool_calls.json", "chat_stream_tool_calls.ndjson",
        lambda b: [t["function"]["name"] for t in b["tools"]],
        lambda b: (b.get("tools"), b["format"]),
        lambda b: (b["messages"][1]["tool_calls"][0]["function"]["arguments"], b["messages"][2]["tool_name"]),
        "application/x-ndjson",
    ),
}
FORCED = {
    "openai": {"type": "function", "function": {"name": "get_weather"}},
    "anthropic": {"type": "tool", "name": "get_weather"},
    "gemini": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
    # Ollama has no tool_choice: the forced tool's schema goes in `format`, and the answer is the call.
    "ollama": (None, WEATHER.parameters),
}
TURNS = {
    "openai": ('{"city":"Seoul","unit":"c"}', "call_abc"),
    "anthropic": ({"city": "Seoul", "unit": "c"}, "call_abc"),
    "gemini": ({"city": "Seoul", "unit": "c"}, "get_weather"),
    "ollama": ({"city": "Seoul", "unit": "c"}, "get_weather"),
}


@pytest.fixture(params=sorted(CASES))
async def case(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, Case, Provider]]:
    spec = CASES[request.param]
    provider = spec.build()
    await provider.start()
    yield request.param, spec, provider
    await provider.close()


def calls_of(result: ProviderResult) -> list[tuple[str, dict[str, Any]]]:
    assert result.finish_reason == "tool_calls"
    assert all(c.id for c in result.tool_calls) and len({c.id for c in result.tool_calls}) == len(result.tool_calls)
    return [(c.name, c.arguments) for c in result.tool_calls]


async def test_tools_go_out_and_calls_come_back(case: tuple[str, Case, Provider], upstream: aioresponses) -> None:
    _, spec, provider = case
    upstream.post(spec.url, body=fixture(spec.vendor, spec.body))
    result = await provider.generate(make_call(tools=[WEATHER, TIME]), deadline=in_seconds(5))
    assert calls_of(result) == EXPECTED
    [body] = sent_bodies(upstream, "POST", spec.url)
    assert spec.tools_sent(body) == ["get_weather", "get_time"]


async def test_streamed_calls_are_the_same_calls(case: tuple[str, Case, Provider], upstream: aioresponses) -> None:
    _, spec, provider = case
    upstream.post(spec.stream_url, body=fixture(spec.vendor, spec.stream), content_type=spec.stream_type)
    items = [item async for item in provider.stream(make_call(tools=[WEATHER, TIME]), deadline=in_seconds(5))]
    *deltas, last = items
    assert isinstance(last, ProviderResult) and calls_of(last) == EXPECTED
    # Only text is streamed as deltas (Anthropic's preamble here); a call's arguments never are.
    assert "".join(d.text for d in deltas if isinstance(d, Delta)) == last.text
    assert "Seoul" not in last.text


async def test_a_forced_choice_is_sent_as_the_provider_forces_it(
    case: tuple[str, Case, Provider], upstream: aioresponses
) -> None:
    name, spec, provider = case
    upstream.post(spec.url, body=fixture(spec.vendor, spec.body))
    call = make_call(tools=[WEATHER, TIME], tool_choice=NamedToolChoice(name="get_weather"))
    try:
        await provider.generate(call, deadline=in_seconds(5))
    except Exception:  # the recorded answer is not the forced one for Ollama; the request is what matters here
        pass
    [body] = sent_bodies(upstream, "POST", spec.url)
    assert spec.forced_sent(body) == FORCED[name]


async def test_tool_turns_go_out_in_the_providers_terms(
    case: tuple[str, Case, Provider], upstream: aioresponses
) -> None:
    name, spec, provider = case
    upstream.post(spec.url, body=fixture(spec.vendor, spec.body))
    await provider.generate(make_call(messages=ROUND_TRIP, tools=[WEATHER]), deadline=in_seconds(5))
    [body] = sent_bodies(upstream, "POST", spec.url)
    assert spec.turns_sent(body) == TURNS[name]


async def test_ollama_answers_a_forced_choice_through_format(upstream: aioresponses) -> None:
    provider = OllamaProvider("ollama", OllamaSettings(base_url="http://ollama.test:11434"))
    await provider.start()
    answer = {"model": "m", "message": {"role": "assistant", "content": '{"city": "Busan", "unit": "f"}'},
              "done": True, "done_reason": "stop", "prompt_eval_count": 9, "eval_count": 7}
    upstream.post("http://ollama.test:11434/api/chat", body=msgspec.json.encode(answer))
    try:
        result = await provider.generate(make_call(tools=[WEATHER], tool_choice="required"), deadline=in_seconds(5))
    finally:
        await provider.close()
    assert calls_of(result) == [("get_weather", {"city": "Busan", "unit": "f"})] and result.text == ""
