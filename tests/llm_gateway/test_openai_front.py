"""The /v1 front as a drop-in (issue 15): OpenAI's error objects, honest stream status, the fields SDKs send."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import openai
import pytest

from llm_gateway.app import create_app
from llm_gateway.config import parse_gateway_config
from llm_gateway.openai_errors import OPENAI_ERRORS, openai_error
from shared_contracts.errors import ERROR_CODES, ErrorBody, ErrorEnvelope
from tests.fakes.asgi import AsgiClient

CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "Describe the lamp."}]
SDK_CLASSES = {400: openai.BadRequestError, 401: openai.AuthenticationError, 404: openai.NotFoundError,
               409: openai.ConflictError, 422: openai.UnprocessableEntityError, 429: openai.RateLimitError}


def mock_app(**extra: Any) -> Any:
    return create_app(parse_gateway_config({"mode": "mock", "llm_routing": {"default": {"provider": "mock",
                                                                                          "model": "m"}}, **extra}))


def hanging_app() -> Any:
    """Live mode, one provider that stalls before its first piece: the call ends at the deadline."""
    return create_app(parse_gateway_config({
        "mode": "live",
        "timeouts": {"mock": 5, "live": 0.3},
        "providers": {"slow": {"class": "tests.llm_gateway._support:ReplyProvider", "replies": ["x y"],
                               "hang_after": 0}},
        "llm_routing": {"default": {"provider": "slow", "model": "m"}},
    }))


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_every_gateway_error_code_has_an_openai_type_and_the_sdk_class_of_its_status(code: str) -> None:
    cls = ERROR_CODES[code]
    kind, openai_code = OPENAI_ERRORS[code]
    assert kind in {"invalid_request_error", "authentication_error", "permission_error", "not_found_error",
                    "rate_limit_error", "server_error", "api_error", "timeout"}
    error = openai_error(ErrorBody(code=code, message="m", details={"path": "$.options.temperature"}))
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == openai_code
    response = openai._exceptions  # the SDK picks its class by status alone
    expected = SDK_CLASSES.get(cls.status, openai.InternalServerError if cls.status >= 500 else openai.APIStatusError)
    assert issubclass(expected, response.APIStatusError)
    if kind in ("invalid_request_error", "not_found_error"):
        assert error["param"] == "temperature"


@pytest.mark.parametrize(
    ("path", "status", "kind", "code"),
    [
        ("/v1/nope", 404, "not_found_error", "not_found"),
        ("/v1/models/no-such-model", 404, "not_found_error", "model_not_found"),
    ],
)
async def test_paths_and_models_that_do_not_exist_are_openai_errors(
    path: str, status: int, kind: str, code: str
) -> None:
    async with AsgiClient(mock_app()) as client:
        reply = await client.get(path)
    assert reply.status == status and reply.headers["x-request-id"]
    assert reply.json()["error"]["type"] == kind and reply.json()["error"]["code"] == code


async def test_a_wrong_key_is_an_openai_authentication_error_and_native_keeps_its_envelope() -> None:
    app = mock_app(auth={"api_keys": "secret-key"})
    async with AsgiClient(app) as client:
        ours = await client.post(CHAT, json={"model": "role:brand", "messages": MESSAGES})
        native = await client.post("/api/v1/llm/generate", json={"role": "brand", "task": "chat",
                                                                  "messages": MESSAGES})
    assert ours.status == native.status == 401
    assert ours.json()["error"]["type"] == "authentication_error"
    assert set(native.json()["error"]) == {"code", "message", "details", "request_id"}


@pytest.mark.parametrize(
    ("more", "param"),
    [
        ({"temperature": 5}, "temperature"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"web_search_options": {}}, "web_search_options"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
         "messages[0].content[0]"),
        ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0].type"),
        ({"tool_choice": {"type": "function", "function": {"name": "nope"}},
          "tools": [{"type": "function", "function": {"name": "f"}}]}, "tool_choice.function.name"),
        ({"no_such_field": 1}, None),
    ],
)
async def test_what_cannot_be_honoured_is_a_400_naming_the_field(more: dict[str, Any], param: str | None) -> None:
    async with AsgiClient(mock_app()) as client:
        reply = await client.post(CHAT, json={"model": "role:brand", "messages": MESSAGES, **more})
    assert reply.status == 400, reply.json()
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param or (param is None and "no_such_field" in error["message"])


async def test_fields_sdks_send_are_accepted_and_those_without_meaning_here_change_nothing() -> None:
    ignored = {"store": True, "service_tier": "auto", "prompt_cache_key": "k", "safety_identifier": "u1",
               "metadata": {"run": "1"}, "user": "u", "reasoning_effort": "low", "verbosity": "low",
               "prompt_cache_retention": "24h", "frequency_penalty": 0.1, "presence_penalty": 0.1,
               "prediction": {"type": "content", "content": "x"}, "parallel_tool_calls": True}
    async with AsgiClient(mock_app()) as client:
        plain = await client.post(CHAT, json={"model": "role:brand", "messages": MESSAGES})
        extra = await client.post(CHAT, json={"model": "role:brand", "messages": MESSAGES, **ignored,
                                              "stream_options": {"include_obfuscation": False}})
    assert plain.status == extra.status == 200, extra.json()
    assert extra.json()["choices"] == plain.json()["choices"]


async def test_every_chunk_names_the_model_asked_for_and_the_header_the_one_that_answered() -> None:
    async with AsgiClient(mock_app()) as client:
        reply = await client.post(CHAT, json={"model": "role:brand", "messages": MESSAGES, "stream": True})
    frames = [json.loads(f[6:]) for f in reply.body.decode().split("\n\n") if f.startswith("data: {")]
    assert {f["model"] for f in frames} == {"role:brand"}
    assert {f["system_fingerprint"] for f in frames} == {"fp_mock"}
    assert reply.headers["x-gateway-model"] == "m" and reply.headers["x-gateway-provider"] == "mock"


@pytest.mark.parametrize("path", [CHAT, "/api/v1/llm/generate/stream"])
async def test_a_stream_that_fails_before_its_first_piece_is_an_http_error_not_a_200(path: str) -> None:
    body = ({"model": "role:brand", "messages": MESSAGES, "stream": True} if path == CHAT
            else {"role": "brand", "task": "chat", "messages": MESSAGES})
    async with AsgiClient(hanging_app()) as client:
        reply = await client.post(path, json=body)
    assert reply.status == 504
    assert reply.headers["content-type"].startswith("application/json")
    error = reply.json()["error"]
    assert error["code"] == "upstream_timeout"
    if path == CHAT:
        assert error["type"] == "timeout" and reply.headers["x-should-retry"] == "true"


async def test_models_retrieve_answers_every_listed_id_and_any_alias_that_routes() -> None:
    async with AsgiClient(mock_app()) as client:
        listed = [m["id"] for m in (await client.get("/v1/models")).json()["data"]]
        found = [(await client.get(f"/v1/models/{name}")).json() for name in [*listed, "role:any/task:x"]]
    assert "m" in listed
    assert [m["id"] for m in found] == [*listed, "role:any/task:x"]
    assert all(m["object"] == "model" for m in found)


async def test_tools_on_v1_round_trip_streamed_and_not() -> None:
    tools = [{"type": "function", "function": {"name": "get_time", "parameters": {
        "type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}}}]
    async with AsgiClient(mock_app()) as client:
        first = (await client.post(CHAT, json={"model": "role:brand", "messages": MESSAGES, "tools": tools,
                                                "tool_choice": "required"})).json()
        [call] = first["choices"][0]["message"]["tool_calls"]
        streamed = await client.post(CHAT, json={"model": "role:brand", "messages": MESSAGES, "tools": tools,
                                                 "tool_choice": "required", "stream": True})
        after = [*MESSAGES, first["choices"][0]["message"], {"role": "tool", "tool_call_id": call["id"],
                                                              "content": "09:41"}]
        second = (await client.post(CHAT, json={"model": "role:brand", "messages": after, "tools": tools})).json()
    assert first["choices"][0]["finish_reason"] == "tool_calls"
    assert first["choices"][0]["message"]["content"] is None
    assert "zone" in msgspec.json.decode(call["function"]["arguments"])
    frames = [json.loads(f[6:]) for f in streamed.body.decode().split("\n\n") if f.startswith("data: {")]
    deltas = [c["choices"][0]["delta"] for c in frames if c["choices"]]
    assert [d["tool_calls"][0]["function"]["name"] for d in deltas if "tool_calls" in d] == ["get_time"]
    assert second["choices"][0]["message"]["content"] and second["choices"][0]["finish_reason"] == "stop"


async def test_legacy_functions_get_a_function_call() -> None:
    functions = [{"name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}}]
    async with AsgiClient(mock_app()) as client:
        reply = await client.post(CHAT, json={"model": "role:brand", "messages": MESSAGES, "functions": functions,
                                              "function_call": {"name": "get_time"}})
    choice = reply.json()["choices"][0]
    assert choice["finish_reason"] == "function_call" and choice["message"]["function_call"]["name"] == "get_time"


async def test_n_gives_n_choices_and_usage_counts_the_prompt_once() -> None:
    async with AsgiClient(mock_app()) as client:
        reply = (await client.post(CHAT, json={"model": "role:brand", "messages": MESSAGES, "n": 3})).json()
        one = (await client.post(CHAT, json={"model": "role:brand", "messages": MESSAGES})).json()
    assert [c["index"] for c in reply["choices"]] == [0, 1, 2]
    assert all(c["message"]["content"] for c in reply["choices"])
    assert reply["usage"]["prompt_tokens"] == one["usage"]["prompt_tokens"]


async def test_logprobs_come_in_openai_shape_where_the_provider_has_them() -> None:
    async with AsgiClient(mock_app()) as client:
        reply = (await client.post(CHAT, json={"model": "role:brand", "messages": MESSAGES, "logprobs": True,
                                               "top_logprobs": 2})).json()
    content = reply["choices"][0]["logprobs"]["content"]
    assert "".join(t["token"] for t in content) == reply["choices"][0]["message"]["content"]
    assert all(len(t["top_logprobs"]) == 2 and t["bytes"] == list(t["token"].encode()) for t in content)


def test_error_envelopes_outside_v1_are_untouched() -> None:
    raw = msgspec.json.encode(ErrorEnvelope(error=ErrorBody(code="no_route", message="x")))
    assert msgspec.json.decode(raw)["error"]["code"] == "no_route"
