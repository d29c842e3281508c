"""Helpers of the real-upstream suite: gateway configs in front of llama-server, served on loopback."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from llm_gateway.app import create_app
from llm_gateway.config import GatewayConfig, parse_gateway_config
from tests.fakes.serving import serve_app

__all__ = [
    "GENERATE",
    "MODEL",
    "ROLES",
    "SAMPLES",
    "STREAM",
    "live_config",
    "llama_section",
    "post",
    "serve_gateway",
    "stream_events",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
GENERATE = "/api/v1/llm/generate"
STREAM = "/api/v1/llm/generate/stream"
# llama-server serves whatever --model it was given under any name; this is the one the routes send.
MODEL = "tiny-llama"
ROLES = ("brand", "brief", "strategist", "copywriter", "vision", "reviewer")
SAMPLES = tuple(sorted(p.stem for p in (REPO_ROOT / "orchestrator" / "samples").glob("*.json")))


def llama_section(base_url: str, **more: Any) -> dict[str, Any]:
    """An OpenAI-compatible provider section pointing at a llama-server (no key), as the README shows it."""
    return {"class": "llm_gateway.providers.openai:OpenAIProvider", "base_url": base_url, "key_required": False,
            **more}


def live_config(
    providers: Mapping[str, Mapping[str, Any]],
    *,
    primary: str = "llama",
    fallbacks: tuple[str, ...] = (),
    timeout: float = 60,
    route: Mapping[str, Any] | None = None,
    **top: Any,
) -> GatewayConfig:
    """Live mode; one default route on `primary` (then `fallbacks`), every role answered by it."""
    default: dict[str, Any] = {
        "provider": primary, "model": MODEL, "options": {"max_tokens": 1500},
        "fallbacks": [{"provider": name, "model": MODEL} for name in fallbacks], **(route or {}),
    }
    return parse_gateway_config({
        "mode": "live", "timeouts": {"live": timeout}, "providers": dict(providers),
        "llm_routing": {"default": default}, **top,
    })


@contextlib.asynccontextmanager
async def serve_gateway(config: GatewayConfig) -> AsyncIterator[str]:
    """The LLM Gateway for `config` under uvicorn on loopback; yields its base URL."""
    async with serve_app(create_app(config)) as url:
        yield url


async def post(url: str, path: str, body: Mapping[str, Any], **headers: str) -> tuple[int, Any]:
    """POST JSON on a fresh session; (status, decoded body)."""
    async with aiohttp.ClientSession() as session, session.post(url + path, json=body, headers=headers) as resp:
        return resp.status, msgspec.json.decode(await resp.read())


async def stream_events(url: str, body: Mapping[str, Any], **headers: str) -> list[tuple[str, Any]]:
    """The native stream's events as (name, decoded data), in order."""
    async with aiohttp.ClientSession() as session, session.post(url + STREAM, json=body, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        raw = (await resp.read()).decode()
    events = []
    for frame in raw.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], msgspec.json.decode(lines["data"])))
    return events
