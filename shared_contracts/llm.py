"""Wire types of the LLM Gateway: `POST /api/v1/llm/generate` and its streaming twin."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from ._base import Inbound, Outbound
from .tools import TokenLogprob, Tool, ToolCall, ToolChoice

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

# Who answered: the mock, a live model, or a recorded live answer replayed from fixtures (GENERATOR_MODE=replay).
Mode = Literal["mock", "live", "replay"]

NonEmpty = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Message(Inbound):
    """One chat turn. An assistant turn may carry the `tool_calls` it made; a `tool` turn is one call's result."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCall] | None = None
    # A `tool` message: the id of the call it answers (required there), and the tool's name (optional).
    tool_call_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    name: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class GenerateOptions(Inbound):
    """Sampling options; provider-neutral names, mapped by each provider to its own."""

    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=1, le=32_768)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    seed: int | None = None
    stop: Annotated[list[str], msgspec.Meta(max_length=8)] | None = None
    # Log-probabilities of the answer's tokens (and the `top_logprobs` likeliest at each place), where the
    # route's provider reports them; `logit_bias` (token id -> -100..100) where it takes one. Else a 400.
    logprobs: bool | None = None
    top_logprobs: Annotated[int, msgspec.Meta(ge=0, le=20)] | None = None
    logit_bias: dict[str, Annotated[int, msgspec.Meta(ge=-100, le=100)]] | None = None


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
    tools: Annotated[list[Tool], msgspec.Meta(max_length=128)] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None


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
    # The tools the model called (then `finish_reason` is `tool_calls`); empty when it answered in text.
    tool_calls: list[ToolCall] = []
    # Per token of `text`, when the request asked for `options.logprobs`; else null.
    logprobs: list[TokenLogprob] | None = None


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
