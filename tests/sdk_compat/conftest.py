"""The gateway under real OpenAI client libraries, in mock mode and live in front of each provider's fake.

`gateway` is parametrized over `mock` (the shipped YAML in mock mode) and one live gateway per provider
protocol (Ollama, OpenAI-compatible, Anthropic, Gemini), each in front of its protocol-faithful fake on
127.0.0.1; the gateway itself is served by uvicorn on loopback, so the SDKs speak real HTTP to it.
`role:copywriter` is the alias every test uses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from llm_gateway.app import create_app
from llm_gateway.config import load_gateway_config, parse_gateway_config
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.gemini import FakeGemini
from tests.fakes.ollama import FakeOllama
from tests.fakes.openai_compat import FakeOpenAI
from tests.fakes.serving import serve_app

CONFIG = Path(__file__).resolve().parents[2] / "config" / "llm_gateway.yaml"
KINDS = ["mock", "ollama", "openai", "anthropic", "gemini"]
ALIAS = "role:copywriter"


@dataclass(frozen=True)
class Gateway:
    """A served gateway: its base URL and which upstream answers it."""

    url: str
    kind: str

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"


def _live(section: dict[str, Any], model: str, *, embeds: bool = True) -> Any:
    return parse_gateway_config({
        "mode": "live",
        "providers": {"up": section},
        "retry": {"attempts": 1},
        "llm_routing": {"rules": [{"role": ["copywriter"], "provider": "up", "model": model}],
                        "default": {"provider": "up", "model": model}},
        # Anthropic makes no embeddings: its gateway has no embedding route (404 model_not_found).
        "embedding_routing": {"default": {"provider": "up", "model": model}} if embeds else {},
    })


async def _config(kind: str, stack: AsyncExitStack) -> Any:
    if kind == "mock":
        return load_gateway_config(CONFIG, environ={"GENERATOR_MODE": "mock"})
    if kind == "ollama":
        ollama = await stack.enter_async_context(FakeOllama(models=["qwen2.5:7b"]))
        return _live({"class": "llm_gateway.providers.ollama:OllamaProvider", "base_url": ollama.base_url},
                     "qwen2.5:7b")
    if kind == "openai":
        fake = await stack.enter_async_context(FakeOpenAI(models=["local-model"]))
        return _live({"class": "llm_gateway.providers.openai:OpenAIProvider", "base_url": fake.base_url,
                      "key_required": False}, "local-model")
    if kind == "anthropic":
        claude = await stack.enter_async_context(FakeAnthropic())
        return _live({"class": "llm_gateway.providers.anthropic:AnthropicProvider", "base_url": claude.base_url,
                      "api_key": "sk-ant-test"}, "claude-test", embeds=False)
    gemini = await stack.enter_async_context(FakeGemini())
    return _live({"class": "llm_gateway.providers.gemini:GeminiProvider", "base_url": gemini.base_url,
                  "api_key": "gemini-test-key"}, "gemini-test")


@pytest.fixture(params=KINDS)
async def gateway(request: pytest.FixtureRequest) -> AsyncIterator[Gateway]:
    async with AsyncExitStack() as stack:
        config = await _config(request.param, stack)
        url = await stack.enter_async_context(serve_app(create_app(config)))
        yield Gateway(url, request.param)
