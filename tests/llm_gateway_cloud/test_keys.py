"""Keys: read only from YAML's `${VAR}`, required for an active provider, never shown."""

from __future__ import annotations

import logging
from pathlib import Path

import msgspec
import pytest
from aioresponses import aioresponses

from llm_gateway.providers.anthropic import AnthropicProvider, AnthropicSettings
from llm_gateway.providers.gemini import GeminiProvider, GeminiSettings
from llm_gateway.providers.openai import OpenAIProvider, OpenAISettings
from service_common.config import ConfigError, convert_section, read_yaml
from shared_contracts.errors import UpstreamError

from ._support import KEY, in_seconds, make_call

YAML = """
providers:
  claude:
    api_key: ${ANTHROPIC_API_KEY}
    max_tokens: 2048
"""


@pytest.mark.parametrize(
    ("cls", "settings_cls", "env"),
    [
        (OpenAIProvider, OpenAISettings, "OPENAI_API_KEY"),
        (AnthropicProvider, AnthropicSettings, "ANTHROPIC_API_KEY"),
        (GeminiProvider, GeminiSettings, "GEMINI_API_KEY"),
    ],
)
def test_active_provider_without_key_refuses_to_start(cls: type, settings_cls: type, env: str) -> None:
    with pytest.raises(ConfigError) as caught:
        cls("cloud", settings_cls(api_key=""))
    assert str(caught.value) == f"providers.cloud.api_key: empty; set the environment variable {env}"
    with pytest.raises(ConfigError, match=env):
        cls("cloud", settings_cls())


def test_key_comes_from_the_environment_named_in_yaml(tmp_path: Path) -> None:
    path = tmp_path / "llm.yaml"
    path.write_text(YAML, encoding="utf-8")
    raw = read_yaml(path, {"ANTHROPIC_API_KEY": KEY})["providers"]["claude"]
    settings = convert_section(raw, AnthropicSettings, path="providers.claude")
    assert settings.api_key == KEY and settings.max_tokens == 2048
    AnthropicProvider("claude", settings)

    unset = convert_section(read_yaml(path, {})["providers"]["claude"], AnthropicSettings, path="providers.claude")
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        AnthropicProvider("claude", unset)


def test_env_variable_name_is_configurable() -> None:
    with pytest.raises(ConfigError, match="set the environment variable MY_PROXY_KEY"):
        OpenAIProvider("proxy", OpenAISettings(api_key="", api_key_env="MY_PROXY_KEY"))


def test_unknown_yaml_key_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"providers\.openai"):
        convert_section({"api_key": KEY, "temprature": 1}, OpenAISettings, path="providers.openai")


def test_settings_repr_masks_the_key() -> None:
    settings = OpenAISettings(api_key=KEY)
    for text in (repr(settings), str(settings), f"{settings}", repr(OpenAISettings())):
        assert KEY not in text
    assert "api_key='***'" in repr(settings)
    assert "api_key=''" in repr(OpenAISettings())
    # The wire form is untouched: masking is for display only.
    assert msgspec.to_builtins(settings)["api_key"] == KEY


async def test_key_never_appears_in_errors_or_logs(upstream: aioresponses, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    provider = OpenAIProvider("openai", OpenAISettings(api_key=KEY))
    await provider.start()
    try:
        echo = b'{"error": {"message": "bad request for key ' + KEY.encode() + b'", "type": "server_error"}}'
        upstream.post("https://api.openai.com/v1/chat/completions", status=500, body=echo)
        with pytest.raises(UpstreamError) as caught:
            await provider.generate(make_call(), deadline=in_seconds(5))
    finally:
        await provider.close()
    assert KEY not in str(caught.value) and KEY not in repr(caught.value.details)
    assert "***" in caught.value.message
    assert KEY not in caplog.text
