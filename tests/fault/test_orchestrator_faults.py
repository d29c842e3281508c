"""Gateway faults against the orchestrator: a gateway that stalls, one that says "retry in 30 s".

The orchestrator must answer within its own deadline (X-Request-Timeout or runs.timeout_s) with the
envelope, tell each gateway how long it may take, pass its gateway key, and still answer afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import structlog
from aiohttp import web

from orchestrator.app import create_app
from orchestrator.config import OrchestratorConfig, load_orchestrator_config
from tests.orchestrator.answers import PRODUCT
from tests.orchestrator.inprocess import REPO_ROOT, serve_app

RUNS = "/api/v1/flows/p0-product-detail/runs"
LLM_KEY = "llm-key-for-the-orchestrator-31b7"
HARNESS_MARGIN = 10.0


@dataclass
class FakeGateway:
    """An aiohttp.web gateway that records each request's headers and stalls or refuses as told."""

    behaviour: str = "stall"
    seen: list[dict[str, str]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    # When set, `/readyz` answers only once this gate opens (an in-flight request to hold).
    readyz_gate: asyncio.Event | None = None
    readyz_waiting: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path in ("/healthz", "/readyz"):
            if request.path == "/readyz" and self.readyz_gate is not None:
                self.readyz_waiting.set()
                await self.readyz_gate.wait()
            return web.json_response({"status": "ok"})
        self.seen.append({k.lower(): v for k, v in request.headers.items()})
        self.arrived.set()
        if self.behaviour == "stall":
            await asyncio.Event().wait()
        envelope: dict[str, Any] = {
            "error": {"code": "provider_unavailable", "message": "busy", "details": {}, "request_id": None}
        }
        return web.json_response(envelope, status=503, headers={"retry-after": "30"})


@contextlib.asynccontextmanager
async def fake_gateway(behaviour: str) -> AsyncIterator[tuple[str, FakeGateway]]:
    fake = FakeGateway(behaviour)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", fake
    finally:
        await runner.cleanup()


def _config(llm_url: str, media_url: str, runs: Path, **env: str) -> OrchestratorConfig:
    environ = {"LLM_GATEWAY_URL": llm_url, "MEDIA_GATEWAY_URL": media_url, "ORCHESTRATOR_RUNS_DIR": str(runs),
               "LLM_GATEWAY_API_KEY": LLM_KEY, **env}
    return load_orchestrator_config(REPO_ROOT / "config" / "orchestrator.yaml", environ)


async def _call(method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.request(method, url, **kwargs) as resp:
        return resp.status, msgspec.json.decode(await resp.read())


async def test_a_stalling_gateway_gets_a_504_envelope_within_the_callers_deadline(tmp_path: Path) -> None:
    async with fake_gateway("stall") as (url, fake), serve_app(
        create_app(_config(url, url, tmp_path / "runs"))
    ) as orchestrator:
        with structlog.testing.capture_logs() as logs:
            async with asyncio.timeout(1.0 + HARNESS_MARGIN):
                status, payload = await _call(
                    "POST", orchestrator + RUNS, json={"product": PRODUCT}, headers={"x-request-timeout": "1"}
                )
        assert status == 504, payload
        error = payload["error"]
        assert error["code"] == "upstream_timeout" and error["request_id"]
        run_id = error["details"]["run_id"]
        # The gateway was told how long it may take (no more than the caller gave) and got the key.
        [headers] = fake.seen
        assert 0 < float(headers["x-request-timeout"]) <= 1.0
        assert headers["authorization"] == f"Bearer {LLM_KEY}"
        assert LLM_KEY not in repr(logs)
        # The run is recorded as failed at the step that was cut off; the service still answers.
        status, doc = await _call("GET", f"{orchestrator}/api/v1/runs/{run_id}")
        assert status == 200 and doc["status"] == "failed"
        assert doc["error"]["code"] == "upstream_timeout" and doc["failed_step"] == "brand"
        assert doc["steps"]["brand"]["status"] == "failed" and doc["steps"]["reviewer"]["status"] == "skipped"
        status, _ = await _call("GET", f"{orchestrator}/healthz")
        assert status == 200


async def test_the_configured_run_timeout_bounds_a_run_without_the_header(tmp_path: Path) -> None:
    async with fake_gateway("stall") as (url, fake):
        config = _config(url, url, tmp_path / "runs")
        short = msgspec.structs.replace(config, runs=msgspec.structs.replace(config.runs, timeout_s=0.5))
        async with serve_app(create_app(short)) as orchestrator:
            async with asyncio.timeout(0.5 + HARNESS_MARGIN):
                status, payload = await _call("POST", orchestrator + RUNS, json={"product": PRODUCT})
            assert status == 504 and payload["error"]["code"] == "upstream_timeout"
            assert float(fake.seen[-1]["x-request-timeout"]) <= 0.5
            status, _ = await _call("GET", f"{orchestrator}/healthz")
            assert status == 200


async def test_a_retry_after_longer_than_the_deadline_is_not_waited_for(tmp_path: Path) -> None:
    async with fake_gateway("busy") as (url, fake), serve_app(
        create_app(_config(url, url, tmp_path / "runs"))
    ) as orchestrator, asyncio.timeout(2.0 + HARNESS_MARGIN):
        status, doc = await _call(
            "POST", orchestrator + RUNS, json={"product": PRODUCT}, headers={"x-request-timeout": "2"}
        )
    # The gateway's own answer ends the step at once: no retry that would outlive the caller.
    assert status == 200 and doc["status"] == "failed"
    assert doc["error"]["code"] == "provider_unavailable"
    assert len(fake.seen) == 1


async def test_an_invalid_request_timeout_is_400_before_any_gateway_call(tmp_path: Path) -> None:
    async with fake_gateway("stall") as (url, fake), serve_app(
        create_app(_config(url, url, tmp_path / "runs"))
    ) as orchestrator:
        status, payload = await _call(
            "POST", orchestrator + RUNS, json={"product": PRODUCT}, headers={"x-request-timeout": "soon"}
        )
        assert status == 400 and payload["error"]["code"] == "invalid_request"
        assert fake.seen == []
