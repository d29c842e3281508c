"""Fixtures for the orchestrator's tests: clients pointed at fake base URLs, with a recording sleep."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aioresponses import aioresponses

from orchestrator.clients import LLMGatewayClient, MediaGatewayClient
from orchestrator.config import GatewayClientConfig
from tests.fakes.aioresponses_compat import patched_aioresponses
from tests.orchestrator.answers import LLM_URL, MEDIA_URL
from tests.orchestrator.inprocess import mock_gateway_apps, serve_app


class RecordingSleep:
    """Stands in for asyncio.sleep: records each requested delay and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def client_config(base_url: str, **overrides: Any) -> GatewayClientConfig:
    """A client config with small, test-friendly numbers."""
    values: dict[str, Any] = {"base_url": base_url, "timeout_s": 5.0, "timeout_margin_s": 1.0, "max_retries": 2}
    values.update(overrides)
    return GatewayClientConfig(**values)


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[aioresponses]:
    """aioresponses (patched for aiohttp 3.14, as the cloud provider tests do) intercepting the gateways."""
    with patched_aioresponses(monkeypatch, passthrough=["http://127.0.0.1"]) as mocked:
        yield mocked


@pytest.fixture
async def llm(sleep: RecordingSleep) -> AsyncIterator[LLMGatewayClient]:
    async with LLMGatewayClient(client_config(LLM_URL), sleep=sleep) as client:
        yield client


@pytest.fixture
async def media(sleep: RecordingSleep) -> AsyncIterator[MediaGatewayClient]:
    async with MediaGatewayClient(client_config(MEDIA_URL), sleep=sleep) as client:
        yield client


@pytest.fixture
async def real_gateways(tmp_path: Path) -> AsyncIterator[tuple[LLMGatewayClient, MediaGatewayClient]]:
    """Clients of the real gateway apps in mock mode, served on loopback in this process."""
    llm_app, media_app = mock_gateway_apps(tmp_path / "media")
    async with (
        serve_app(llm_app) as llm_url,
        serve_app(media_app) as media_url,
        LLMGatewayClient.from_config(client_config(llm_url)) as llm,
        MediaGatewayClient.from_config(client_config(media_url)) as media,
    ):
        yield llm, media
