"""A fallback to another provider keeps the tool contract: the OpenAI-compatible primary fails, the
Anthropic fallback answers the same tool call in the same shape (issue 15 item 4)."""

from __future__ import annotations

import json

import openai

from llm_gateway.app import create_app
from llm_gateway.config import parse_gateway_config
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.openai_compat import FakeOpenAI
from tests.fakes.server import Fault
from tests.fakes.serving import serve_app

TOOLS = [{"type": "function", "function": {"name": "get_stock", "parameters": {
    "type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]}}}]


async def test_a_tool_call_survives_a_fallback_across_providers() -> None:
    async with FakeOpenAI(models=["local-model"]) as primary, FakeAnthropic() as backup:
        primary.fault = Fault(status=503, error="overloaded")
        config = parse_gateway_config({
            "mode": "live",
            "retry": {"attempts": 1},
            "providers": {
                "local": {"class": "llm_gateway.providers.openai:OpenAIProvider", "base_url": primary.base_url,
                          "key_required": False},
                "claude": {"class": "llm_gateway.providers.anthropic:AnthropicProvider",
                           "base_url": backup.base_url, "api_key": "sk-ant-test"},
            },
            "llm_routing": {"default": {"provider": "local", "model": "local-model",
                                        "fallbacks": [{"provider": "claude", "model": "claude-test"}]}},
        })
        async with serve_app(create_app(config)) as url:
            client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
            try:
                raw = await client.chat.completions.with_raw_response.create(
                    model="role:brand", messages=[{"role": "user", "content": "Stock of SKU-1?"}], tools=TOOLS,
                    tool_choice={"type": "function", "function": {"name": "get_stock"}})
            finally:
                await client.close()
    completion = raw.parse()
    [call] = completion.choices[0].message.tool_calls or []
    assert call.function.name == "get_stock" and isinstance(json.loads(call.function.arguments)["sku"], str)
    assert completion.choices[0].finish_reason == "tool_calls"
    assert raw.headers["x-gateway-provider"] == "claude"
    assert backup.requests[-1].body["tool_choice"] == {"type": "tool", "name": "get_stock"}
