"""The provider interface: every LLM backend (Ollama, mock, OpenAI, ...) is one subclass in its own module.

The gateway names a class by import path in YAML and builds it with `cls(name, settings)`, where
`settings` is the YAML section converted to the class's own `Settings` Struct. No gateway code
changes when a provider is added.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import msgspec

from service_common.providers import ProviderSettings
from shared_contracts.errors import InvalidRequest
from shared_contracts.llm import GenerateOptions, Message
from shared_contracts.tools import TokenLogprob, Tool, ToolCall, ToolChoice

__all__ = [
    "FEATURES",
    "Delta",
    "EmbedCall",
    "EmbedResult",
    "Feature",
    "Provider",
    "ProviderCall",
    "ProviderResult",
    "ProviderSettings",
]

Feature = Literal["tools", "logprobs", "logit_bias", "embeddings"]
"""What a provider may or may not do; a request that needs one is routed only to providers that have it."""
FEATURES: frozenset[Feature] = frozenset({"tools", "logprobs", "logit_bias", "embeddings"})


# Read-only by convention, not frozen: a frozen dataclass sets each field through object.__setattr__, and
# one is made per try.
@dataclass(slots=True)
class ProviderCall:
    """One call to one model: what the router resolved plus what the client asked."""

    model: str
    messages: list[Message]
    options: GenerateOptions
    response_schema: dict[str, Any] | None = None
    # The route's provider-specific extras from YAML (e.g. Ollama's keep_alive); never from a client.
    extra: Mapping[str, Any] = field(default_factory=dict)
    # Context the mock provider uses to write plausible, deterministic output; live providers ignore it.
    role: str = ""
    task: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict)
    # Tools the model may call, and how (see shared_contracts.tools); None = no tools.
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None


class ProviderResult(msgspec.Struct, kw_only=True):
    """A provider's normalised answer; a token count the upstream did not report is None, never 0.

    An answer that calls tools has them in `tool_calls` and `finish_reason` `tool_calls`.
    """

    text: str
    finish_reason: str
    input_tokens: int | None
    output_tokens: int | None
    tool_calls: list[ToolCall] = []
    logprobs: list[TokenLogprob] | None = None


@dataclass(frozen=True, slots=True)
class EmbedCall:
    """One embedding call: the texts in order, and fewer `dimensions` than the model's when asked."""

    model: str
    texts: list[str]
    dimensions: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    role: str = ""
    task: str = ""


class EmbedResult(msgspec.Struct, kw_only=True):
    """One vector per text, in order; `input_tokens` None when the upstream did not report it."""

    vectors: list[list[float]]
    input_tokens: int | None


class Delta(msgspec.Struct):
    """A piece of streamed text."""

    text: str


class Provider(abc.ABC):
    """Abstract LLM provider: `start`/`close` own its HTTP session; `generate`/`stream` honour `deadline`.

    `deadline` is an absolute `loop.time()`. Implementations raise only `shared_contracts.errors`
    classes, converting transport and upstream errors at their edge.
    """

    Settings: ClassVar[type[ProviderSettings]] = ProviderSettings
    # `live` providers talk to a real upstream; the `mock` one answers from fixtures and schemas.
    kind: ClassVar[str] = "live"
    # What this provider can do beyond plain generation (see Feature); the gateway routes by it.
    features: ClassVar[frozenset[Feature]] = frozenset()
    # True when every wait inside `generate` is bounded by the `deadline` it is given (each one goes through
    # `service_common.client.HttpClient` or a limiter that takes the deadline). A try that may use the whole
    # deadline then needs no timer of the gateway's own on top: see `Gateway.run`.
    bounds_itself: ClassVar[bool] = False

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        self.name = name
        self.settings = settings

    async def start(self) -> None:
        """Open resources (the pooled aiohttp session). Called once in the app's lifespan."""

    async def close(self) -> None:
        """Release resources. Called once on shutdown."""

    @abc.abstractmethod
    async def generate(self, call: ProviderCall, *, deadline: float) -> ProviderResult:
        """One complete answer."""

    async def stream(self, call: ProviderCall, *, deadline: float) -> AsyncIterator[Delta | ProviderResult]:
        """Text pieces as they come, then exactly one ProviderResult; by default one piece."""
        result = await self.generate(call, deadline=deadline)
        if result.text:
            yield Delta(result.text)
        yield result

    async def health(self, *, deadline: float) -> None:
        """Return when the upstream answers; raise a GatewayError otherwise."""

    async def embed(self, call: EmbedCall, *, deadline: float) -> EmbedResult:
        """One vector per text; providers with the `embeddings` feature override it."""
        raise InvalidRequest(f"{self.name} does not make embeddings", details={"provider": self.name})

    def instances(self) -> dict[str, dict[str, Any]]:
        """Each upstream instance's state for `/readyz` and `/metrics` (a pool's); empty for one upstream."""
        return {}
