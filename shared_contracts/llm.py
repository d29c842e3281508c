"""Wire types of the LLM Gateway: `POST /api/v1/llm/generate` and its streaming twin."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from ._base import Inbound, Outbound

__all__ = [
    "Attempt",
    "GenerateOptions",
    "GenerateRequest",
    "GenerateResponse",
    "Message",
    "Mode",
    "StreamDelta",
    "Usage",
]

Mode = Literal["mock", "live"]

NonEmpty = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Message(Inbound):
    """One chat turn."""

    role: Literal["system", "user", "assistant"]
    content: str


class GenerateOptions(Inbound):
    """Sampling options; provider-neutral names, mapped by each provider to its own."""

    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=1, le=32_768)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    seed: int | None = None
    stop: Annotated[list[str], msgspec.Meta(max_length=8)] | None = None


class GenerateRequest(Inbound):
    """What an agent sends: who it is (`role`, `task`), the conversation, and the output it wants."""

    role: NonEmpty
    task: NonEmpty
    messages: Annotated[list[Message], msgspec.Meta(min_length=1)]
    payload: dict[str, Any] = {}
    response_schema: dict[str, Any] | None = None
    options: GenerateOptions | None = None
    quality: NonEmpty | None = None
    metadata: dict[str, str] = {}


class Usage(Outbound):
    """Token counts as the provider reported them (estimated in mock mode); null when it did not report one.

    An unknown count is never a silent 0: a sum with an unknown part (e.g. a repair) is unknown too.
    """

    input_tokens: int | None
    output_tokens: int | None


class Attempt(Outbound):
    """One try at one provider/model: `outcome` is `ok` or the error's code."""

    provider: str
    model: str
    outcome: str
    latency_ms: float
    error_code: str | None = None


class GenerateResponse(Outbound):
    """The one answer shape, identical in mock and live mode."""

    id: str
    role: str
    task: str
    mode: Mode
    provider: str
    model: str
    text: str
    json: dict[str, Any] | None
    finish_reason: str
    usage: Usage
    latency_ms: float
    attempts: list[Attempt]


class StreamDelta(Outbound):
    """Data of a `delta` Server-Sent Event: the next piece of text."""

    text: str


class RouteTarget(Outbound):
    """A provider instance and model a route may call."""

    provider: str
    model: str


class RouteTimeouts(Outbound):
    """A route's whole-call deadline in each mode, in seconds."""

    mock: float
    live: float


class RouteInfo(Outbound):
    """One resolved routing rule; a matcher of null matches any value."""

    name: str
    role: list[str] | None
    task: list[str] | None
    quality: list[str] | None
    provider: str
    model: str
    fallbacks: list[RouteTarget]
    timeout_s: RouteTimeouts


class RoutingTable(Outbound):
    """`GET /api/v1/llm/routes`: the rules in match order, the default, and each provider's kind. No secrets."""

    mode: Mode
    allow_mode_header: bool
    rules: list[RouteInfo]
    default: RouteInfo | None
    providers: dict[str, str]


__all__ += ["RouteInfo", "RouteTarget", "RouteTimeouts", "RoutingTable"]
