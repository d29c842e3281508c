"""Harness of the LLM fault suite: fake upstreams of either protocol, gateway configs, bounded requests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from llm_gateway.app import create_app
from llm_gateway.config import GatewayConfig, parse_gateway_config
from tests.fakes.asgi import AsgiClient, AsgiResponse, sse_events
from tests.fakes.ollama import FakeOllama, Fault
from tests.fakes.openai_compat import FakeOpenAI

Kind = Literal["ollama", "openai"]
KINDS: tuple[Kind, ...] = ("ollama", "openai")
MODEL = "fault-model"
GENERATE = "/api/v1/llm/generate"
STREAM = "/api/v1/llm/generate/stream"
REPLY = "one two three four five six"
# Every request in the suite runs under this much more than its own deadline; a hang fails the test.
HARNESS_MARGIN = 5.0


class ManualClock:
    """A clock the test moves by hand, for circuit breakers."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Upstream:
    """One fake upstream of either protocol, serving MODEL."""

    kind: Kind
    fake: FakeOllama | FakeOpenAI

    def section(self) -> dict[str, Any]:
        """The provider's YAML section pointing at this fake."""
        if self.kind == "ollama":
            return {"class": "llm_gateway.providers.ollama:OllamaProvider", "base_url": self.fake.base_url}
        return {"class": "llm_gateway.providers.openai:OpenAIProvider", "base_url": self.fake.base_url,
                "key_required": False}

    def set_fault(self, fault: Fault | None) -> None:
        self.fake.fault = fault

    @property
    def calls(self) -> int:
        return len(self.fake.chat_requests)


@contextlib.asynccontextmanager
async def upstream(kind: Kind) -> AsyncIterator[Upstream]:
    """A running fake of `kind` that answers REPLY for MODEL."""
    fake: FakeOllama | FakeOpenAI = (
        FakeOllama(models=[MODEL], reply=REPLY) if kind == "ollama" else FakeOpenAI(models=[MODEL], reply=REPLY)
    )
    async with fake:
        yield Upstream(kind, fake)


def section_for(kind: Kind, base_url: str) -> dict[str, Any]:
    """A provider section of `kind` at `base_url` (e.g. a port where nothing listens)."""
    return Upstream(kind, FakeOllama()).section() | {"base_url": base_url}


def live_config(
    providers: dict[str, dict[str, Any]],
    *,
    fallbacks: tuple[str, ...] = (),
    retry: dict[str, Any] | None = None,
    resilience: dict[str, Any] | None = None,
    timeout: float = 10.0,
    **top: Any,
) -> GatewayConfig:
    """Live mode; the default route calls `primary` (the first provider), then each fallback provider."""
    primary = next(iter(providers))
    raw: dict[str, Any] = {
        "mode": "live",
        "timeouts": {"mock": 5, "live": timeout},
        "providers": providers,
        "retry": retry or {"attempts": 1},
        "llm_routing": {"default": {"provider": primary, "model": MODEL,
                                    "fallbacks": [{"provider": f, "model": MODEL} for f in fallbacks]}},
        **top,
    }
    if resilience is not None:
        raw["resilience"] = resilience
    return parse_gateway_config(raw)


@contextlib.asynccontextmanager
async def gateway(config: GatewayConfig, *, clock: ManualClock | None = None) -> AsyncIterator[AsgiClient]:
    """The LLM Gateway app in-process, lifespan running."""
    async with AsgiClient(create_app(config, clock=clock)) as client:
        yield client


def body(text: str = "Describe the lamp.") -> dict[str, Any]:
    return {"role": "brand", "task": "profile", "messages": [{"role": "user", "content": text}]}


async def post(
    client: AsgiClient, path: str = GENERATE, *, timeout: float | None = None, **fields: Any
) -> AsgiResponse:
    """POST a generate body; with `timeout`, sent as X-Request-Timeout and the harness allows only a margin more."""
    headers = {} if timeout is None else {"x-request-timeout": str(timeout)}
    async with asyncio.timeout((timeout or 10.0) + HARNESS_MARGIN):
        return await client.post(path, json=body() | fields, headers=headers)


def error_of(reply: AsgiResponse) -> dict[str, Any]:
    """The envelope's inner object; fails when the body is not the envelope."""
    doc = reply.json()
    assert set(doc) == {"error"}, doc
    assert {"code", "message", "details", "request_id"} <= set(doc["error"]), doc
    return dict(doc["error"])


def stream_events(reply: AsgiResponse) -> list[tuple[str, Any]]:
    assert reply.status == 200, reply.body
    return sse_events(reply.body)


def outcomes(attempts: list[dict[str, Any]]) -> list[str]:
    return [a["outcome"] for a in attempts]


async def still_answers(client: AsgiClient, up: Upstream) -> None:
    """After a fault: with the upstream healthy again the same gateway answers 200."""
    up.set_fault(None)
    reply = await post(client)
    assert reply.status == 200, reply.body
    assert reply.json()["text"].split() == REPLY.split()
