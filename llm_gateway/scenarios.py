"""Failure scenarios in mock mode (`X-Mock-Scenario`): the mock wrapped so that each try fails as a live one would.

For a request with a scenario the gateway puts one `ScenarioProvider` on each target of the route (the
primary, then the fallbacks, all answered by the mock), so retries, fallbacks, per-try budgets, the repair,
the metrics, and the breaker where the mock has one (`resilience.providers.mock`), run exactly as they do
when a live provider fails the same way. Errors carry the live error's status, code and details; their
message names the scenario, and the response's `X-Generator-Mode: mock` says it was the mock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import msgspec

from shared_contracts.errors import (
    GatewayError,
    InvalidRequest,
    ProviderUnavailable,
    RateLimited,
    UpstreamError,
    UpstreamRejected,
)
from shared_contracts.scenarios import SCENARIO_HEADER, Scenario

from .providers.base import Delta, Provider, ProviderCall, ProviderResult

__all__ = ["ScenarioProvider", "check_applicable"]

# The finish reason of an answer cut off before its JSON closed: what a live model gives at its token limit.
_CUT = "length"


def check_applicable(scenario: Scenario, *, targets: int, schema: bool) -> None:
    """Refuse (400) a scenario this request cannot show: `fallback` on a route without one, `invalid_output`
    without a response_schema (a live model cannot give an invalid document when none is asked for)."""
    if scenario.name == "fallback" and targets < 2:
        raise InvalidRequest(
            "X-Mock-Scenario fallback: this request's route has no fallback, so no fallback can answer",
            details={"header": SCENARIO_HEADER, "value": scenario.header},
        )
    if scenario.name == "invalid_output" and not schema:
        raise InvalidRequest(
            "X-Mock-Scenario invalid_output needs a response_schema (or response_format) to fail against",
            details={"header": SCENARIO_HEADER, "value": scenario.header},
        )


class ScenarioProvider(Provider):
    """The mock at one position of the route (0 = the primary), failing or slowing down as `scenario` says."""

    kind = "mock"

    def __init__(self, inner: Provider, scenario: Scenario, *, position: int) -> None:
        super().__init__(inner.name, inner.settings)
        self.inner = inner
        self.scenario = scenario
        self.position = position

    def _note(self) -> str:
        return f"(X-Mock-Scenario: {self.scenario.header})"

    def _failure(self, call: ProviderCall) -> GatewayError | None:
        """The error this try fails with at once, as the live fault reports it; None when it answers."""
        name, where = self.scenario.name, {"provider": self.name, "model": call.model}
        if name == "unavailable" or (name == "fallback" and self.position == 0):
            # A refused connection, as the HTTP edge maps it.
            return ProviderUnavailable(
                f"{self.name}: ClientConnectorError {self._note()}", details={**where, "error": "ClientConnectorError"}
            )
        if name == "rate_limited":
            return RateLimited(
                f"{self.name} answered 429 {self._note()}", details={**where, "status": 429},
                retry_after=self.scenario.value,
            )
        if name == "upstream_error":
            return UpstreamError(f"{self.name} answered 500 {self._note()}", details={**where, "status": 500})
        if name == "rejected":
            return UpstreamRejected(f"{self.name} answered 400 {self._note()}", details={**where, "status": 400})
        return None

    def _broken_off(self, call: ProviderCall) -> UpstreamError:
        return UpstreamError(
            f"{self.name}: the answer broke off {self._note()}", details={"provider": self.name, "model": call.model}
        )

    @staticmethod
    async def _hang() -> None:
        """Never answer. The gateway bounds every try (its budget, the call's deadline), so that bound ends it,
        always the same way: not a race between this wait and the gateway's timer at the same instant."""
        await asyncio.Event().wait()

    async def generate(self, call: ProviderCall, *, deadline: float) -> ProviderResult:
        failure = self._failure(call)
        if failure is not None:
            raise failure
        name = self.scenario.name
        if name == "timeout":
            await self._hang()
        if name == "midstream_error":
            raise self._broken_off(call)
        if name == "slow":
            await asyncio.sleep((self.scenario.value or 0) / 1000)
        result = await self.inner.generate(call, deadline=deadline)
        return _cut(result) if name == "invalid_output" else result

    async def stream(self, call: ProviderCall, *, deadline: float) -> AsyncIterator[Delta | ProviderResult]:
        failure = self._failure(call)
        if failure is not None:
            raise failure
        name = self.scenario.name
        if name == "timeout":
            await self._hang()
        items: list[Delta | ProviderResult] = []
        async with contextlib.aclosing(self.inner.stream(call, deadline=deadline)) as pieces:  # type: ignore[type-var]
            async for item in pieces:
                items.append(item)
        deltas = [item for item in items if isinstance(item, Delta)]
        result = next(item for item in items if isinstance(item, ProviderResult))
        if name == "invalid_output":
            result = _cut(result)
            deltas = [Delta(result.text)] if result.text else []
        if name == "midstream_error":
            for delta in deltas[: max(1, len(deltas) // 2)]:
                yield delta
            raise self._broken_off(call)
        pause = (self.scenario.value or 0) / 1000 / max(1, len(deltas)) if name == "slow" else 0.0
        for delta in deltas:
            if pause:
                await asyncio.sleep(pause)
            yield delta
        if pause and not deltas:
            await asyncio.sleep(pause)
        yield result

    async def health(self, *, deadline: float) -> None:
        await self.inner.health(deadline=deadline)


def _cut(result: ProviderResult) -> ProviderResult:
    """The answer cut in the middle, as a token limit leaves it: never valid JSON, whatever the schema."""
    text = result.text[: max(1, len(result.text) // 2)] or "{"
    if _parses(text):
        text += ","  # valid JSON followed by a comma never is
    return ProviderResult(
        text=text,
        finish_reason=_CUT,
        input_tokens=result.input_tokens,
        output_tokens=None if result.output_tokens is None else max(1, result.output_tokens // 2),
    )


def _parses(text: str) -> bool:
    try:
        msgspec.json.decode(text)
    except msgspec.DecodeError:
        return False
    return True
