"""Embeddings (issue 15 item 5): native `POST /api/v1/llm/embed` and `/v1/embeddings`, routed by role/task."""

from __future__ import annotations

import base64
import math
import struct
from pathlib import Path
from typing import Any

import pytest

from llm_gateway.app import create_app
from llm_gateway.config import load_gateway_config, parse_gateway_config
from service_common.config import ConfigError
from tests.fakes.asgi import AsgiClient
from tests.fakes.ollama import FakeOllama

CONFIG = Path(__file__).resolve().parents[2] / "config" / "llm_gateway.yaml"
EMBED = "/api/v1/llm/embed"


def shipped_mock() -> Any:
    return create_app(load_gateway_config(CONFIG, environ={"GENERATOR_MODE": "mock"}))


async def test_mock_vectors_are_deterministic_unit_vectors_of_the_configured_size() -> None:
    async with AsgiClient(shipped_mock()) as client:
        one = (await client.post(EMBED, json={"role": "search", "input": ["a lamp", "a kettle"]})).json()
        again = (await client.post(EMBED, json={"role": "search", "input": "a lamp"})).json()
        short = (await client.post(EMBED, json={"role": "search", "input": "a lamp", "dimensions": 16})).json()
    assert one["mode"] == "mock" and one["provider"] == "mock" and one["model"] == "nomic-embed-text"
    assert one["dimensions"] == 768 and len(one["embeddings"]) == 2
    assert all(math.isclose(sum(v * v for v in vector), 1.0, rel_tol=1e-9) for vector in one["embeddings"])
    assert again["embeddings"][0] == one["embeddings"][0] != one["embeddings"][1]
    assert short["dimensions"] == 16 and len(short["embeddings"][0]) == 16
    assert one["usage"]["input_tokens"] > 0 and one["attempts"][0]["outcome"] == "ok"


async def test_v1_embeddings_as_floats_and_as_base64() -> None:
    async with AsgiClient(shipped_mock()) as client:
        floats = (await client.post("/v1/embeddings", json={"model": "role:search", "input": ["a lamp"]})).json()
        packed = await client.post("/v1/embeddings", json={"model": "role:search", "input": "a lamp",
                                                           "encoding_format": "base64", "dimensions": 8})
        native = (await client.post(EMBED, json={"role": "search", "input": "a lamp", "dimensions": 8})).json()
    assert floats["object"] == "list" and floats["model"] == "role:search"
    assert floats["data"][0]["object"] == "embedding" and len(floats["data"][0]["embedding"]) == 768
    raw = base64.b64decode(packed.json()["data"][0]["embedding"])
    assert list(struct.unpack("<8f", raw)) == pytest.approx(native["embeddings"][0], rel=1e-6)
    assert packed.headers["x-gateway-model"] == "nomic-embed-text"


@pytest.mark.parametrize("body", [{"model": "role:search", "input": [[1, 2, 3]]}, {"model": "role:search",
                                                                                  "input": []}])
async def test_token_arrays_and_empty_input_are_refused_naming_input(body: dict[str, Any]) -> None:
    async with AsgiClient(shipped_mock()) as client:
        reply = await client.post("/v1/embeddings", json=body)
    assert reply.status == 400 and reply.json()["error"]["param"] == "input"


async def test_live_embeddings_through_the_fake_ollama() -> None:
    async with FakeOllama(models=["embed-model"]) as fake:
        config = parse_gateway_config({
            "mode": "live",
            "providers": {"ollama": {"class": "llm_gateway.providers.ollama:OllamaProvider",
                                     "base_url": fake.base_url}},
            "llm_routing": {"default": {"provider": "ollama", "model": "embed-model"}},
            "embedding_routing": {"default": {"provider": "ollama", "model": "embed-model"}},
        })
        async with AsgiClient(create_app(config)) as client:
            reply = (await client.post(EMBED, json={"role": "search", "input": ["one two", "three"]})).json()
    assert reply["mode"] == "live" and reply["provider"] == "ollama" and reply["dimensions"] == 8
    assert reply["usage"]["input_tokens"] == 3
    assert fake.requests[-1].path == "/api/embed" and fake.requests[-1].body["input"] == ["one two", "three"]


def test_a_provider_without_embeddings_in_embedding_routing_fails_start_up() -> None:
    config = parse_gateway_config({
        "mode": "mock",
        "providers": {"claude": {"class": "llm_gateway.providers.anthropic:AnthropicProvider", "api_key": "k"}},
        "llm_routing": {"default": {"provider": "mock", "model": "m"}},
        "embedding_routing": {"default": {"provider": "claude", "model": "c"}},
    })
    with pytest.raises(ConfigError, match="embedding_routing.default.provider: 'claude' does not make embeddings"):
        create_app(config)


async def test_without_embedding_routing_embeddings_are_404_no_route() -> None:
    config = parse_gateway_config({"mode": "mock", "llm_routing": {"default": {"provider": "mock", "model": "m"}}})
    async with AsgiClient(create_app(config)) as client:
        native = await client.post(EMBED, json={"role": "search", "input": "x"})
        ours = await client.post("/v1/embeddings", json={"model": "role:search", "input": "x"})
    assert native.status == ours.status == 404
    assert native.json()["error"]["code"] == "no_route" and ours.json()["error"]["code"] == "model_not_found"
