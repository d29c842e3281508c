"""Routing reload on SIGHUP: a valid file replaces the routes, a bad one keeps them and the log says why."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
import structlog

from llm_gateway.app import build_gateway
from llm_gateway.config import load_gateway_config
from llm_gateway.reload import RoutingReloader

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
async def test_the_running_gateway_reloads_on_sighup(tmp_path: Path, free_port: int) -> None:
    path = tmp_path / "llm_gateway.yaml"
    path.write_text(ROUTES_V1)
    log = (tmp_path / "gateway.log").open("wb")
    env = {k: v for k, v in os.environ.items() if k not in ("GENERATOR_MODE", "LLM_GATEWAY_CONFIG")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "llm_gateway", "--port", str(free_port), "--config", str(path)],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{free_port}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            assert await _poll_brand_model(session, base, until="model-one")
            path.write_text(ROUTES_V2)
            proc.send_signal(signal.SIGHUP)
            assert await _poll_brand_model(session, base, until="model-two")
            path.write_text("llm_routing: {default: {provider: olama, model: x}}\n")
            proc.send_signal(signal.SIGHUP)
            assert await _poll_log(tmp_path / "gateway.log", "routing_reload_rejected")
            assert await _poll_brand_model(session, base, until="model-two")
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 10)
        log.close()


async def _poll_brand_model(session: aiohttp.ClientSession, base: str, *, until: str) -> bool:
    # Another process applies the signal: polling its routes table is the only way to observe it.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            async with session.get(f"{base}/api/v1/llm/routes") as response:
                table = await response.json()
            if table["rules"][0]["model"] == until:
                return True
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(0.05)
    return False


async def _poll_log(path: Path, needle: str) -> bool:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if needle in path.read_text(errors="replace"):
            return True
        await asyncio.sleep(0.05)
    return False
