"""Routing reload on SIGHUP: a valid file replaces the routes, a bad one keeps them and the log says why."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import aiohttp
import pytest
import structlog

from llm_gateway.app import build_gateway
from llm_gateway.config import load_gateway_config
from llm_gateway.reload import RoutingReloader
from tests.fakes.child import Child

ROUTES_V1 = """
mode: mock
llm_routing:
  rules:
    - {role: brand, provider: mock, model: model-one}
  default: {provider: mock, model: model-default}
"""
ROUTES_V2 = ROUTES_V1.replace("model-one", "model-two")


def _reloader(tmp_path: Path, text: str = ROUTES_V1) -> tuple[RoutingReloader, Path]:
    path = tmp_path / "llm_gateway.yaml"
    path.write_text(text)
    config = load_gateway_config(path, environ={})
    return RoutingReloader(build_gateway(config), config, path=path, environ={}), path


def _brand_model(reloader: RoutingReloader) -> str:
    return reloader.gateway.router.resolve("brand", "any").targets[0].model


def test_a_valid_file_replaces_the_routes(tmp_path: Path) -> None:
    reloader, path = _reloader(tmp_path)
    path.write_text(ROUTES_V2)
    with structlog.testing.capture_logs() as logs:
        assert reloader.reload() is True
    assert _brand_model(reloader) == "model-two"
    assert [entry["event"] for entry in logs] == ["routing_reloaded"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("llm_routing: {default: {provider: olama, model: x}}\n", "llm_routing.default.provider: unknown provider"),
        ("llm_routing: {rules: [{role: brand, model: x}]}\n", "llm_routing.rules[0]"),
        ("llm_routing: [\n", "invalid YAML"),
        (
            "providers: {other: {class: 'llm_gateway.providers.mock:MockProvider'}}\n"
            "llm_routing: {default: {provider: other, model: x}}\n",
            "providers this process does not run: other",
        ),
    ],
)
def test_a_bad_file_keeps_the_old_routes_and_says_why(tmp_path: Path, text: str, reason: str) -> None:
    reloader, path = _reloader(tmp_path)
    path.write_text(text)
    with structlog.testing.capture_logs() as logs:
        assert reloader.reload() is False
    assert _brand_model(reloader) == "model-one"
    (entry,) = logs
    assert entry["event"] == "routing_reload_rejected" and entry["log_level"] == "error"
    assert reason in entry["reason"]


def test_provider_changes_are_reported_as_waiting_for_a_restart(tmp_path: Path) -> None:
    reloader, path = _reloader(tmp_path)
    path.write_text(ROUTES_V2 + "providers: {ollama: {class: 'llm_gateway.providers.ollama:OllamaProvider'}}\n")
    with structlog.testing.capture_logs() as logs:
        assert reloader.reload() is True
    assert [entry["event"] for entry in logs] == ["routing_reload_partial", "routing_reloaded"]
    assert _brand_model(reloader) == "model-two"


async def test_sighup_triggers_the_reload(tmp_path: Path) -> None:
    reloader, path = _reloader(tmp_path)
    reloaded = asyncio.Event()
    original = reloader.reload

    def reload_and_tell() -> bool:
        result = original()
        reloaded.set()
        return result

    reloader.reload = reload_and_tell  # type: ignore[method-assign]
    reloader.install()
    try:
        path.write_text(ROUTES_V2)
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.wait_for(reloaded.wait(), 5)
    finally:
        reloader.uninstall()
    assert _brand_model(reloader) == "model-two"


@pytest.mark.slow
async def test_the_running_gateway_reloads_on_sighup(tmp_path: Path) -> None:
    path = tmp_path / "llm_gateway.yaml"
    path.write_text(ROUTES_V1)
    async with Child("llm_gateway", path, {}, unset=["GENERATOR_MODE", "LLM_GATEWAY_CONFIG"]) as child:
        assert child.proc is not None
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            assert await _brand_model_of(session, child.url) == "model-one"
            path.write_text(ROUTES_V2)
            child.proc.send_signal(signal.SIGHUP)
            # The child logs the swap after making it, so once the line is read the new routes are served.
            await child.logged(b'"routing_reloaded"')
            assert await _brand_model_of(session, child.url) == "model-two"
            path.write_text("llm_routing: {default: {provider: olama, model: x}}\n")
            child.proc.send_signal(signal.SIGHUP)
            await child.logged(b'"routing_reload_rejected"')
            assert await _brand_model_of(session, child.url) == "model-two"


async def _brand_model_of(session: aiohttp.ClientSession, base: str) -> str:
    async with session.get(f"{base}/api/v1/llm/routes") as response:
        table = await response.json()
    return str(table["rules"][0]["model"])
