"""Mock and live responses have identical keys and types, for plain text and structured output."""

from __future__ import annotations

from typing import Any

import pytest

from llm_gateway.app import create_app
from tests.fakes.asgi import AsgiClient
from tests.fakes.ollama import FakeOllama

from ._support import make_config

ROLES = ["brand", "brief", "strategist", "copywriter", "vision", "reviewer"]
SCHEMA = {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}


def shape(value: Any) -> Any:
    """Keys and JSON types, recursively; the `json` answer counts as one object."""
    if isinstance(value, dict):
        return {k: ("object" if k == "json" and v is not None else shape(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return "number" if isinstance(value, int | float) and not isinstance(value, bool) else type(value).__name__


@pytest.mark.parametrize("schema", [None, SCHEMA])
async def test_mock_and_live_have_the_same_shape(schema: dict[str, Any] | None) -> None:
    request: dict[str, Any] = {"role": "copywriter", "task": "pdp", "messages": [{"role": "user", "content": "Go."}]}
    if schema is not None:
        request["response_schema"] = schema
    async with FakeOllama() as fake:
        answers = {}
        for mode in ("mock", "live"):
            async with AsgiClient(create_app(make_config(fake.base_url, mode=mode))) as app:
                reply = await app.post("/api/v1/llm/generate", json=request)
            assert reply.status == 200, reply.json()
            answers[mode] = reply.json()
    assert shape(answers["mock"]) == shape(answers["live"])
    assert answers["mock"]["mode"] == "mock" and answers["live"]["mode"] == "live"
    assert set(answers["live"]) == {"id", "role", "task", "mode", "provider", "model", "text", "json",
                                    "finish_reason", "usage", "latency_ms", "attempts", "tool_calls", "logprobs"}


@pytest.mark.parametrize("role", ROLES)
async def test_mock_answers_every_role_with_schema_valid_json(role: str, repo_root: Any) -> None:
    from pathlib import Path

    import jsonschema

    from llm_gateway.config import load_gateway_config

    config = load_gateway_config(Path(repo_root) / "config" / "llm_gateway.yaml", environ={"GENERATOR_MODE": "mock"})
    schema = {"type": "object", "properties": {"title": {"type": "string", "maxLength": 50},
                                               "points": {"type": "array", "items": {"type": "string"}, "minItems": 2,
                                                          "maxItems": 4},
                                               "confidence": {"type": "number", "minimum": 0, "maximum": 1}},
              "required": ["title", "points", "confidence"], "additionalProperties": False}
    request = {"role": role, "task": "draft", "messages": [{"role": "user", "content": "Go."}],
               "payload": {"product_name": "Nimbus Kettle"}, "response_schema": schema}
    async with AsgiClient(create_app(config)) as app:
        reply = await app.post("/api/v1/llm/generate", json=request)
    answer = reply.json()
    assert reply.status == 200 and answer["mode"] == "mock"
    jsonschema.validate(answer["json"], schema)
