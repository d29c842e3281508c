"""Tool calling on the native API (issue 15 item 4): the one contract, the mock's calls, routing by capability."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from llm_gateway.app import create_app
from llm_gateway.config import parse_gateway_config
from tests.fakes.asgi import AsgiClient

GENERATE = "/api/v1/llm/generate"
WEATHER: dict[str, Any] = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "minLength": 2}, "unit": {"enum": ["c", "f"]},
                       "days": {"type": "integer", "minimum": 1, "maximum": 7}},
        "required": ["city", "unit", "days"],
        "additionalProperties": False,
    },
}
CLOCK: dict[str, Any] = {
    "name": "get_time",
    "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
}
ASK = [{"role": "user", "content": "What is the time in Seoul?"}]


def mock_app(**extra: Any) -> Any:
    return create_app(parse_gateway_config({"mode": "mock", "llm_routing": {"default": {"provider": "mock",
                                                                                          "model": "m"}}, **extra}))


def body(**more: Any) -> dict[str, Any]:
    return {"role": "brand", "task": "chat", "messages": ASK, "tools": [WEATHER, CLOCK], **more}


async def test_auto_calls_the_tool_the_user_names_with_schema_valid_arguments() -> None:
    async with AsgiClient(mock_app()) as client:
        reply = await client.post(GENERATE, json=body(messages=[{"role": "user", "content": "get_weather please"}]))
    answer = reply.json()
    assert reply.status == 200 and answer["finish_reason"] == "tool_calls" and answer["text"] == ""
    [call] = answer["tool_calls"]
    assert call["name"] == "get_weather" and call["id"].startswith("call_")
    jsonschema.validate(call["arguments"], WEATHER["parameters"])


@pytest.mark.parametrize("choice", [{"name": "get_weather"}, "required"])
async def test_a_forced_choice_always_gets_a_schema_valid_call(choice: Any) -> None:
    async with AsgiClient(mock_app()) as client:
        replies = [await client.post(GENERATE, json=body(tools=[WEATHER], tool_choice=choice, options={"seed": s}))
                   for s in range(5)]
    for reply in replies:
        [call] = reply.json()["tool_calls"]
        assert call["name"] == "get_weather"
        jsonschema.validate(call["arguments"], WEATHER["parameters"])


async def test_a_round_trip_ends_in_text_once_the_tool_answered() -> None:
    async with AsgiClient(mock_app()) as client:
        first = (await client.post(GENERATE, json=body())).json()
        [call] = first["tool_calls"]
        messages = [*ASK, {"role": "assistant", "tool_calls": [call]},
                    {"role": "tool", "tool_call_id": call["id"], "content": "09:41"}]
        second = (await client.post(GENERATE, json=body(messages=messages))).json()
        again = (await client.post(GENERATE, json=body())).json()
    assert second["tool_calls"] == [] and second["text"] and second["finish_reason"] in ("stop", "length")
    assert again["tool_calls"] == first["tool_calls"]  # deterministic, as every mock answer


async def test_none_answers_in_text() -> None:
    async with AsgiClient(mock_app()) as client:
        answer = (await client.post(GENERATE, json=body(tool_choice="none"))).json()
    assert answer["tool_calls"] == [] and answer["text"]


async def test_a_streamed_tool_call_is_in_the_done_event() -> None:
    async with AsgiClient(mock_app()) as client:
        reply = await client.post(GENERATE + "/stream", json=body(tool_choice={"name": "get_time"}))
    assert reply.status == 200
    events = reply.body.decode().split("\n\n")
    assert not [e for e in events if e.startswith("event: delta")]
    done = next(e for e in events if e.startswith("event: done"))
    assert '"name":"get_time"' in done and '"finish_reason":"tool_calls"' in done


@pytest.mark.parametrize(
    ("more", "path"),
    [
        ({"tool_choice": {"name": "nope"}}, "$.tool_choice.name"),
        ({"tools": [WEATHER, WEATHER]}, "$.tools[1].name"),
        ({"tools": [{"name": "x", "parameters": {"type": "string"}}]}, "$.tools[0].parameters"),
        ({"tools": None, "tool_choice": "required"}, "$.tool_choice"),
        ({"messages": [*ASK, {"role": "tool", "content": "x"}]}, "$.messages[1].tool_call_id"),
        ({"tools": [{"name": "bad name!"}]}, "$.tools[0].name"),
    ],
)
async def test_inconsistent_tool_use_is_a_400_naming_the_field(more: dict[str, Any], path: str) -> None:
    async with AsgiClient(mock_app()) as client:
        reply = await client.post(GENERATE, json=body(**more))
    assert reply.status == 400, reply.json()
    assert reply.json()["error"]["details"]["path"] == path


def live_app(*, fallback: bool) -> Any:
    route: dict[str, Any] = {"provider": "plain", "model": "p"}
    if fallback:
        route["fallbacks"] = [{"provider": "mock", "model": "m"}]
    return create_app(parse_gateway_config({
        "mode": "live",
        "providers": {"plain": {"class": "tests.llm_gateway._support:ReplyProvider", "replies": ["text only"]},
                      "mock": {"class": "llm_gateway.providers.mock:MockProvider"}},
        "llm_routing": {"default": route},
    }))


async def test_a_target_that_cannot_call_tools_is_skipped_for_one_that_can() -> None:
    app = live_app(fallback=True)
    async with AsgiClient(app) as client:
        answer = (await client.post(GENERATE, json=body(tool_choice="required"))).json()
        plain = (await client.post(GENERATE, json=body(tools=None))).json()
    assert answer["provider"] == "mock" and answer["tool_calls"]
    assert [a["provider"] for a in answer["attempts"]] == ["mock"]  # never sent to a provider without tools
    assert plain["provider"] == "plain"


@pytest.mark.parametrize(
    ("more", "path"),
    [({}, "$.tools"), ({"tools": None, "options": {"logprobs": True}}, "$.options.logprobs"),
     ({"tools": None, "options": {"logit_bias": {"50256": -100}}}, "$.options.logit_bias")],
)
async def test_a_route_without_a_capable_provider_refuses_naming_the_field(more: dict[str, Any], path: str) -> None:
    async with AsgiClient(live_app(fallback=False)) as client:
        reply = await client.post(GENERATE, json=body(**more))
    assert reply.status == 400
    error = reply.json()["error"]
    assert error["details"]["path"] == path and error["details"]["providers"] == ["plain"]
    assert path.removeprefix("$.") in error["message"]


async def test_mock_logprobs_cover_the_text() -> None:
    async with AsgiClient(mock_app()) as client:
        reply = await client.post(GENERATE, json=body(tools=None, options={"logprobs": True, "top_logprobs": 3}))
    answer = reply.json()
    assert "".join(t["token"] for t in answer["logprobs"]) == answer["text"]
    assert all(len(t["top_logprobs"]) == 3 and t["logprob"] <= 0 for t in answer["logprobs"])
