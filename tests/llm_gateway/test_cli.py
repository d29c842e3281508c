"""`llm-gateway --host --port --config`: defaults, LLM_GATEWAY_CONFIG, and what reaches uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llm_gateway import __main__ as cli


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What `main` would hand to uvicorn, instead of serving; logging is left as the tests set it."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(cli, "serve", lambda app, **kwargs: calls.append({"app": app, **kwargs}))
    monkeypatch.setattr(cli, "configure_logging", lambda **kwargs: None)
    monkeypatch.delenv("GENERATOR_MODE", raising=False)
    return calls


def test_defaults_are_loopback_8100_and_the_repository_yaml(
    served: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, repo_root: Path
) -> None:
    monkeypatch.delenv("LLM_GATEWAY_CONFIG", raising=False)
    monkeypatch.chdir(repo_root)
    cli.main([])
    (call,) = served
    assert (call["host"], call["port"]) == ("127.0.0.1", 8100)
    assert call["app"].state.gateway.router.resolve("strategist", "plan").targets[0].model == "qwen2.5:14b"


def test_config_path_from_the_environment_and_flags_win(
    served: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "llm.yaml"
    config.write_text("llm_routing: {default: {provider: mock, model: from-env-config}}\n")
    monkeypatch.setenv("LLM_GATEWAY_CONFIG", str(config))
    cli.main(["--host", "0.0.0.0", "--port", "9123"])
    (call,) = served
    assert (call["host"], call["port"]) == ("0.0.0.0", 9123)
    assert call["app"].state.gateway.router.resolve("brand", "x").targets[0].model == "from-env-config"
