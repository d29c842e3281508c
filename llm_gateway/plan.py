"""One call of the gateway: the `Plan` a request becomes, and the `GatewayStream` a streamed call returns."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

import msgspec

from service_common.retry import RetryPolicy
from shared_contracts.errors import GatewayError
from shared_contracts.llm import Attempt, GenerateOptions, GenerateRequest, GenerateResponse, Mode, StreamDelta

from .attempts import timed_out
from .fixtures import Fixture
from .providers.base import Provider, ProviderCall
from .routing import ResolvedRoute, Target
from .structured import OutputSchema

__all__ = ["NO_RETRY", "GatewayStream", "Plan", "merge_options"]

_NO_OPTIONS = GenerateOptions()
NO_RETRY = RetryPolicy()
"""One try per target: the policy of a route (and a gateway) that sets none."""


# Not frozen: a frozen dataclass sets each field through object.__setattr__, and one is made per request.
@dataclass(slots=True)
class Plan:
    """A validated request bound to its mode, route, targets in try order, schema and deadline."""

    request: GenerateRequest
    mode: Mode
    route: ResolvedRoute
    targets: tuple[tuple[Target, Provider], ...]
    schema: OutputSchema | None
    timeout: float
    retry: RetryPolicy = NO_RETRY
    # Seconds each try may take (the rule's `attempt_timeout`); None = a share of what is left.
    attempt_timeout: float | None = None
    # Replay mode: the recorded answer (no provider is called).
    fixture: Fixture | None = None

    def call(self, target: Target) -> ProviderCall:
        """The provider call for `target`: the route's default options overlaid with the client's."""
        request = self.request
        return ProviderCall(
            model=target.model,
            messages=request.messages,
            options=merge_options(target.options, request.options),
            response_schema=request.response_schema,
            extra=target.extra,
            role=request.role,
            task=request.task,
            payload=request.payload,
            tools=request.tools,
            tool_choice=request.tool_choice,
            parallel_tool_calls=request.parallel_tool_calls,
        )

    def timed_out(self, attempts: list[Attempt]) -> GatewayError:
        """The error when the whole call's deadline passed, every running try ended as timed out."""
        return timed_out(attempts, self.timeout, self.mode)


def merge_options(defaults: GenerateOptions | None, given: GenerateOptions | None) -> GenerateOptions:
    """A route's default options overlaid with the options the client set."""
    if defaults is None:
        return given or _NO_OPTIONS
    if given is None:
        return defaults
    chosen = {f: getattr(given, f) for f in given.__struct_fields__ if getattr(given, f) is not None}
    return msgspec.structs.replace(defaults, **chosen)


class GatewayStream:
    """What `Gateway.stream` returns: the items (text pieces, then one response) and the call's deadline.

    The front end bounds its own sending by `deadline` too, so a client that stops reading cannot hold the
    provider (and its limiter slot) past it.
    """

    def __init__(
        self,
        items: AsyncGenerator[StreamDelta | GenerateResponse, None],
        deadline: float,
        attempts: list[Attempt] | None = None,
    ) -> None:
        self._items = items
        self.deadline = deadline
        # The tries so far, the one answering last (a front end names its model before the answer is whole).
        self.attempts: list[Attempt] = [] if attempts is None else attempts

    def __aiter__(self) -> GatewayStream:
        return self

    async def __anext__(self) -> StreamDelta | GenerateResponse:
        return await anext(self._items)

    async def aclose(self) -> None:
        """Stop the call (a client that went away): the provider stream is closed, its guard released."""
        await self._items.aclose()
