"""Helpers of the LLM Gateway tests: configs built from dicts, provider calls, deadlines, recorded payloads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec

from llm_gateway.config import GatewayConfig, parse_gateway_config
from llm_gateway.providers.base import Delta, Provider, ProviderCall, ProviderResult, ProviderSettings
from shared_contracts.errors import GatewayError, UpstreamTimeout
from shared_contracts.llm import GenerateOptions, Message

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ollama"
OLLAMA = "ollama"


def make_config(base_url: str = "http://127.0.0.1:9", **overrides: Any) -> GatewayConfig:
    """A gateway config with one Ollama provider and the six roles routed, as the seed YAML does."""
    raw: dict[str, Any] = {
        "mode": "live",
        "providers": {
            "ollama": {"class": "llm_gateway.providers.ollama:OllamaProvider", "base_url": base_url},
        },
        "llm_routing": {
            "rules": [
                {"role": ["strategist", "copywriter"], "provider": "ollama", "model": "qwen2.5:14b",
                 "fallbacks": [{"provider": "ollama", "model": "qwen2.5:7b"}]},
                {"role": ["brand", "brief", "vision", "reviewer"], "provider": "ollama", "model": "qwen2.5:7b"},
            ],
        },
    }
    raw.update(overrides)
    return parse_gateway_config(raw)


def call(**overrides: Any) -> ProviderCall:
    """A provider call with sensible defaults."""
    fields: dict[str, Any] = {
        "model": "qwen2.5:7b",
        "messages": [Message(role="user", content="Describe the lamp.")],
        "options": GenerateOptions(),
    }
    fields.update(overrides)
    return ProviderCall(**fields)


def in_seconds(seconds: float) -> float:
    """An absolute deadline `seconds` from now on the running loop's clock."""
    return asyncio.get_running_loop().time() + seconds


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()



class Hang:
    """A scripted step that never answers (until the caller's deadline cancels it)."""


Step = ProviderResult | GatewayError | Hang | list[str | GatewayError]


class ScriptedProvider(Provider):
    """A provider answering from a script of results, errors and hangs; it records every call."""

    def __init__(self, name: str, script: list[Step]) -> None:
        super().__init__(name, ProviderSettings())
        self.script = list(script)
        self.calls: list[ProviderCall] = []

    def _next(self, call: ProviderCall) -> Step:
        self.calls.append(call)
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    async def generate(self, call: ProviderCall, *, deadline: float) -> ProviderResult:
        step = self._next(call)
        if isinstance(step, Hang):
            await asyncio.Event().wait()
        if isinstance(step, GatewayError):
            raise step
        if isinstance(step, list):
            return result("".join(p for p in step if isinstance(p, str)))
        assert isinstance(step, ProviderResult)
        return step

    async def stream(self, call: ProviderCall, *, deadline: float) -> AsyncIterator[Delta | ProviderResult]:
        step = self._next(call)
        if isinstance(step, list):  # text pieces; an error among them is raised at its place
            for piece in step:
                if isinstance(piece, GatewayError):
                    raise piece
                yield Delta(piece)
            yield result("".join(step))
            return
        if isinstance(step, Hang):
            await asyncio.Event().wait()
        if isinstance(step, GatewayError):
            raise step
        assert isinstance(step, ProviderResult)
        yield Delta(step.text)
        yield step


class BoundedProvider(ScriptedProvider):
    """A ScriptedProvider that ends every call by its deadline itself, as one on `HttpClient` does: a hang
    lasts until the deadline, then raises the client's `UpstreamTimeout` (the gateway sets no timer of its own)."""

    bounds_itself = True

    async def generate(self, call: ProviderCall, *, deadline: float) -> ProviderResult:
        if isinstance(self.script[0], Hang):
            self._next(call)
            started = asyncio.get_running_loop().time()
            await asyncio.sleep(max(0.0, deadline - started))
            raise UpstreamTimeout(f"{self.name}: no answer", details={"provider": self.name,
                                                                     "timeout_s": round(deadline - started, 3)})
        return await super().generate(call, deadline=deadline)


def result(text: str, *, tokens: tuple[int, int] = (10, 5)) -> ProviderResult:
    return ProviderResult(text=text, finish_reason="stop", input_tokens=tokens[0], output_tokens=tokens[1])


class ReplySettings(ProviderSettings, frozen=True):
    """YAML of `ReplyProvider`: the answers in order (the last one repeats), and whether usage is reported."""

    replies: list[str] = msgspec.field(default_factory=lambda: ["Fine."])
    report_usage: bool = True
    # Streamed: wait forever after this many pieces (an upstream that stalls mid-answer).
    hang_after: int | None = None


class ReplyProvider(Provider):
    """A provider named in YAML (`tests.llm_gateway._support:ReplyProvider`) that answers `replies` in order.

    Streamed, an answer comes one word per piece. Every call is recorded in `calls`.
    """

    Settings = ReplySettings
    settings: ReplySettings

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        super().__init__(name, settings)
        self.calls: list[ProviderCall] = []

    def _answer(self, call: ProviderCall) -> ProviderResult:
        self.calls.append(call)
        replies = self.settings.replies
        text = replies[min(len(self.calls), len(replies)) - 1]
        tokens = (len(call.messages), len(text.split())) if self.settings.report_usage else (None, None)
        return ProviderResult(text=text, finish_reason="stop", input_tokens=tokens[0], output_tokens=tokens[1])

    async def generate(self, call: ProviderCall, *, deadline: float) -> ProviderResult:
        return self._answer(call)

    async def stream(self, call: ProviderCall, *, deadline: float) -> AsyncIterator[Delta | ProviderResult]:
        answer = self._answer(call)
        words = answer.text.split(" ")
        for index, piece in enumerate([w + " " for w in words[:-1]] + words[-1:]):
            if index == self.settings.hang_after:
                await asyncio.Event().wait()
            if piece:
                yield Delta(piece)
            await asyncio.sleep(0)
        yield answer
