"""Moving a role to a cloud model takes only YAML and an env key (the seed's `future_rules` idea)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from aioresponses import aioresponses

from llm_gateway.app import build_gateway, create_app
from llm_gateway.config import load_gateway_config
from service_common.config import ConfigError
from shared_contracts.llm import GenerateResponse
from tests.fakes.asgi import AsgiClient

from ._support import KEY, fixture, sent, uncomment

YAML = """
mode: ${GENERATOR_MODE:-live}
providers:
  mock:
    class: llm_gateway.providers.mock:MockProvider
  ollama:
    class: llm_gateway.providers.ollama:OllamaProvider
    base_url: http://127.0.0.1:9
  anthropic:
    class: llm_gateway.providers.anthropic:AnthropicProvider
    api_key: ${ANTHROPIC_API_KEY}
    max_tokens: 2048
llm_routing:
  rules:
    - name: strategist-final
      role: strategist
      quality: final
      provider: anthropic
      model: claude-test-model
      fallbacks:
        - provider: ollama
          model: local-model
    - name: planning
      role: [strategist, copywriter]
      provider: ollama
      model: local-model
  default:
    provider: ollama
    model: local-model
"""
ANTHROPIC = "https://api.anthropic.com/v1/messages"
OLLAMA = "http://127.0.0.1:9/api/chat"
REQUEST: dict[str, Any] = {
    "role": "strategist",
    "task": "positioning",
    "quality": "final",
    "messages": [
        {"role": "system", "content": "You are the brand strategist."},
        {"role": "user", "content": "Position the Aurora kettle."},
    ],
}


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "llm_gateway.yaml"
    path.write_text(YAML, encoding="utf-8")
    return path


async def generate(tmp_path: Path, environ: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
    config = load_gateway_config(config_file(tmp_path), environ=environ)
    async with AsgiClient(create_app(config)) as client:
        reply = await client.post("/api/v1/llm/generate", json=body)
    return reply.status, reply.json()


async def test_strategist_final_goes_to_anthropic(tmp_path: Path, upstream: aioresponses) -> None:
    upstream.post(ANTHROPIC, body=fixture("anthropic", "message.json"))
    status, answer = await generate(tmp_path, {"ANTHROPIC_API_KEY": KEY}, REQUEST)
    assert status == 200, answer
    assert (answer["provider"], answer["model"], answer["mode"]) == ("anthropic", "claude-test-model", "live")
    assert answer["text"].startswith("Position the Aurora kettle")
    assert answer["usage"] == {"input_tokens": 42, "output_tokens": 21}
    assert [a["outcome"] for a in answer["attempts"]] == ["ok"]
    body, headers = sent(upstream, "POST", ANTHROPIC)
    assert headers["x-api-key"] == KEY
    assert (body["model"], body["system"], body["max_tokens"]) == (
        "claude-test-model",
        "You are the brand strategist.",
        2048,
    )


async def test_other_qualities_stay_on_ollama(tmp_path: Path, upstream: aioresponses) -> None:
    upstream.post(OLLAMA, body=fixture("ollama", "chat.json"))
    status, answer = await generate(tmp_path, {"ANTHROPIC_API_KEY": KEY}, {**REQUEST, "quality": "draft"})
    assert status == 200, answer
    assert (answer["provider"], answer["model"]) == ("ollama", "local-model")
    assert ("POST", ANTHROPIC) not in {(m, str(u)) for m, u in upstream.requests}


async def test_overloaded_anthropic_falls_back_to_ollama(tmp_path: Path, upstream: aioresponses) -> None:
    upstream.post(ANTHROPIC, status=529, body=fixture("anthropic", "error_529_overloaded.json"))
    upstream.post(OLLAMA, body=fixture("ollama", "chat.json"))
    status, answer = await generate(tmp_path, {"ANTHROPIC_API_KEY": KEY}, REQUEST)
    assert status == 200, answer
    assert [(a["provider"], a["outcome"]) for a in answer["attempts"]] == [
        ("anthropic", "upstream_error"),
        ("ollama", "ok"),
    ]
    assert answer["provider"] == "ollama"


async def test_cloud_answer_has_the_mock_answers_shape(tmp_path: Path, upstream: aioresponses) -> None:
    upstream.post(ANTHROPIC, body=fixture("anthropic", "message.json"))
    _, live = await generate(tmp_path, {"ANTHROPIC_API_KEY": KEY}, REQUEST)
    _, mock = await generate(tmp_path, {"ANTHROPIC_API_KEY": KEY, "GENERATOR_MODE": "mock"}, REQUEST)
    assert mock["mode"] == "mock" and live["mode"] == "live"
    for answer in (live, mock):
        msgspec.convert(answer, GenerateResponse)  # every field present with its type
    assert live.keys() == mock.keys()
    assert {k: type(v) for k, v in live.items()} == {k: type(v) for k, v in mock.items()}


def test_without_the_key_the_gateway_refuses_to_start(tmp_path: Path) -> None:
    config = load_gateway_config(config_file(tmp_path), environ={})
    expected = "providers.anthropic.api_key: empty; set the environment variable ANTHROPIC_API_KEY"
    with pytest.raises(ConfigError, match=expected):
        create_app(config)


def test_the_shipped_commented_example_works_once_uncommented(tmp_path: Path) -> None:
    shipped = (Path(__file__).resolve().parents[2] / "config" / "llm_gateway.yaml").read_text(encoding="utf-8")
    text = uncomment(uncomment(shipped, "anthropic:", 4), "- name: strategist-final", 9)
    path = tmp_path / "llm_gateway.yaml"
    path.write_text(text, encoding="utf-8")
    (tmp_path / "mock" / "llm").mkdir(parents=True)
    config = load_gateway_config(path, environ={"ANTHROPIC_API_KEY": KEY, "GENERATOR_MODE": "live"})
    router = build_gateway(config).router
    final = router.resolve("strategist", "positioning", "final")
    assert [t.provider for t in final.targets] == ["anthropic", "ollama"]
    assert router.resolve("strategist", "positioning", None).targets[0].provider == "ollama"
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        build_gateway(load_gateway_config(path, environ={"GENERATOR_MODE": "live"}))
