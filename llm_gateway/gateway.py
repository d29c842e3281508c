"""The request path: mode, route, deadline, fallbacks, structured-output repair, one response shape.

In mock mode every route is answered by the mock provider; the response names provider `mock` (the
instance that really answered) and the model the live route would have used.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import msgspec

from shared_contracts.errors import GatewayError, InvalidOutput, UpstreamError, UpstreamTimeout
from shared_contracts.llm import (
    Attempt,
    GenerateOptions,
    GenerateRequest,
    GenerateResponse,
    Message,
    Mode,
    RoutingTable,
    StreamDelta,
    Usage,
)

from .providers.base import Delta, Provider, ProviderCall, ProviderResult
from .routing import Route, Router, Target
from .structured import OutputSchema, SchemaCache, repair_prompt

__all__ = ["Gateway", "Plan"]

_NO_OPTIONS = GenerateOptions()
_PENDING = "pending"


@dataclass(frozen=True, slots=True)
class Plan:
    """A validated request bound to its mode, route, targets in try order, schema and deadline."""

    request: GenerateRequest
    mode: Mode
    route: Route
    targets: tuple[tuple[Target, Provider], ...]
    schema: OutputSchema | None
    timeout: float

    def call(self, target: Target) -> ProviderCall:
        """The provider call for `target`: the route's default options overlaid with the client's."""
        request = self.request
        return ProviderCall(
            model=target.model,
            messages=request.messages,
            options=_merge(target.options, request.options),
            response_schema=request.response_schema,
            extra=target.extra,
            role=request.role,
            task=request.task,
            payload=request.payload,
        )


def _merge(defaults: GenerateOptions | None, given: GenerateOptions | None) -> GenerateOptions:
    if defaults is None:
        return given or _NO_OPTIONS
    if given is None:
        return defaults
    chosen = {f: getattr(given, f) for f in given.__struct_fields__ if getattr(given, f) is not None}
    return msgspec.structs.replace(defaults, **chosen)


def _done(attempt: Attempt, started: float, outcome: str) -> None:
    attempt.outcome = outcome
    attempt.error_code = None if outcome == "ok" else outcome
    attempt.latency_ms = round((perf_counter() - started) * 1000, 3)


def _timed_out(plan: Plan, attempts: list[Attempt]) -> UpstreamTimeout:
    for attempt in attempts:
        if attempt.outcome == _PENDING:
            attempt.outcome = attempt.error_code = UpstreamTimeout.code
    return UpstreamTimeout(
        f"no answer within {plan.timeout:g}s ({plan.mode} mode)",
        details={"timeout_s": plan.timeout, "attempts": attempts},
    )


class Gateway:
    """Routes generate requests to providers; the HTTP layer and any other front end call this."""

    def __init__(
        self,
        *,
        router: Router,
        providers: Mapping[str, Provider],
        mode: Mode,
        mock_provider: str = "mock",
        allow_mode_header: bool = False,
    ) -> None:
        self.router = router
        self.providers = dict(providers)
        self.mode: Mode = mode
        self.allow_mode_header = allow_mode_header
        self._mock = self.providers[mock_provider]
        self._schemas = SchemaCache()

    async def start(self) -> None:
        """Start every provider (opens their pooled sessions)."""
        for provider in self.providers.values():
            await provider.start()

    async def close(self) -> None:
        """Close every provider; safe after a partial start."""
        for provider in reversed(list(self.providers.values())):
            await provider.close()

    def plan(self, request: GenerateRequest, *, mode: Mode | None = None) -> Plan:
        """Resolve mode, route and schema; raises NoRoute or InvalidRequest before any provider is called."""
        mode = mode or self.mode
        # A malformed schema is the client's error whatever the route, so it is checked first.
        schema = None if request.response_schema is None else self._schemas.get(request.response_schema)
        route = self.router.resolve(request.role, request.task, request.quality)
        if mode == "mock":
            primary = route.targets[0]
            targets: tuple[tuple[Target, Provider], ...] = (
                (Target(provider=self._mock.name, model=primary.model, options=primary.options), self._mock),
            )
        else:
            targets = tuple((t, self.providers[t.provider]) for t in route.targets)
        return Plan(request, mode, route, targets, schema, route.timeout(mode))

    async def generate(self, request: GenerateRequest, *, mode: Mode | None = None) -> GenerateResponse:
        """One complete answer; raises a GatewayError whose `details["attempts"]` lists the tries."""
        return await self.run(self.plan(request, mode=mode))

    async def run(self, plan: Plan) -> GenerateResponse:
        """Execute a plan within its deadline, falling back on retryable errors."""
        started = perf_counter()
        deadline = asyncio.get_running_loop().time() + plan.timeout
        attempts: list[Attempt] = []
        try:
            async with asyncio.timeout_at(deadline):
                return await self._first_success(plan, attempts, deadline, started)
        except TimeoutError:
            raise _timed_out(plan, attempts) from None
        except GatewayError as err:
            err.details.setdefault("attempts", attempts)
            raise

    async def _first_success(
        self, plan: Plan, attempts: list[Attempt], deadline: float, started: float
    ) -> GenerateResponse:
        loop = asyncio.get_running_loop()
        last: GatewayError | None = None
        for target, provider in plan.targets:
            if attempts and loop.time() >= deadline:
                break
            call = plan.call(target)
            try:
                result = await self._call(provider, target, call, attempts, deadline)
            except GatewayError as err:
                if not err.retryable:
                    raise
                last = err
                continue
            return await self._complete(plan, target, provider, call, result, attempts, deadline, started)
        raise last if last is not None else _timed_out(plan, attempts)

    async def _call(
        self, provider: Provider, target: Target, call: ProviderCall, attempts: list[Attempt], deadline: float
    ) -> ProviderResult:
        attempt = Attempt(provider=provider.name, model=target.model, outcome=_PENDING, latency_ms=0.0)
        attempts.append(attempt)
        started = perf_counter()
        try:
            result = await provider.generate(call, deadline=deadline)
        except GatewayError as err:
            _done(attempt, started, err.code)
            raise
        _done(attempt, started, "ok")
        return result

    async def _complete(
        self,
        plan: Plan,
        target: Target,
        provider: Provider,
        call: ProviderCall,
        result: ProviderResult,
        attempts: list[Attempt],
        deadline: float,
        started: float,
    ) -> GenerateResponse:
        doc: dict[str, Any] | None = None
        input_tokens, output_tokens = result.input_tokens, result.output_tokens
        if plan.schema is not None:
            try:
                doc = plan.schema.parse(result.text)
            except InvalidOutput as first:
                attempts[-1].outcome = attempts[-1].error_code = first.code
                # One repair: the same target sees its answer and the validation error, and tries again.
                repair = dataclasses.replace(
                    call,
                    messages=[
                        *call.messages,
                        Message(role="assistant", content=result.text),
                        Message(role="user", content=repair_prompt(first.message)),
                    ],
                )
                result = await self._call(provider, target, repair, attempts, deadline)
                input_tokens += result.input_tokens
                output_tokens += result.output_tokens
                try:
                    doc = plan.schema.parse(result.text)
                except InvalidOutput as second:
                    attempts[-1].outcome = attempts[-1].error_code = second.code
                    raise
        request = plan.request
        return GenerateResponse(
            id=uuid.uuid4().hex,
            role=request.role,
            task=request.task,
            mode=plan.mode,
            provider=provider.name,
            model=target.model,
            text=result.text,
            json=doc,
            finish_reason=result.finish_reason,
            usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
            latency_ms=round((perf_counter() - started) * 1000, 3),
            attempts=attempts,
        )

    def stream(
        self, request: GenerateRequest, *, mode: Mode | None = None
    ) -> AsyncIterator[StreamDelta | GenerateResponse]:
        """Text pieces, then one GenerateResponse. Route and schema errors raise here, before iteration."""
        return self.run_stream(self.plan(request, mode=mode))

    async def run_stream(self, plan: Plan) -> AsyncIterator[StreamDelta | GenerateResponse]:
        """Stream a plan: a fallback is tried only while no text has been sent."""
        started = perf_counter()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + plan.timeout
        attempts: list[Attempt] = []
        last: GatewayError | None = None
        for target, provider in plan.targets:
            if attempts and loop.time() >= deadline:
                break
            call = plan.call(target)
            attempt = Attempt(provider=provider.name, model=target.model, outcome=_PENDING, latency_ms=0.0)
            attempts.append(attempt)
            tried = perf_counter()
            sent = False
            pieces = provider.stream(call, deadline=deadline)
            try:
                while True:
                    item = await _next(pieces, deadline, plan, attempts)
                    if not isinstance(item, Delta):
                        result = item
                        break
                    sent = True
                    yield StreamDelta(text=item.text)
            except GatewayError as err:
                _done(attempt, tried, err.code)
                err.details.setdefault("attempts", attempts)
                if sent or not err.retryable:
                    raise
                last = err
                continue
            finally:
                await pieces.aclose()  # type: ignore[attr-defined]
            _done(attempt, tried, "ok")
            try:
                async with asyncio.timeout_at(deadline):
                    response = await self._complete(plan, target, provider, call, result, attempts, deadline, started)
            except TimeoutError:
                raise _timed_out(plan, attempts) from None
            except GatewayError as err:
                err.details.setdefault("attempts", attempts)
                raise
            yield response
            return
        if last is None:
            last = _timed_out(plan, attempts)
        raise last

    def routing_table(self) -> RoutingTable:
        """The resolved routes as served by `GET /api/v1/llm/routes`."""
        rules, default = self.router.describe()
        return RoutingTable(
            mode=self.mode,
            allow_mode_header=self.allow_mode_header,
            rules=rules,
            default=default,
            providers={name: provider.kind for name, provider in self.providers.items()},
        )

    async def check_ready(self, *, timeout: float, mode: Mode | None = None) -> dict[str, str]:
        """Health-check every provider the mode uses; returns the failing ones with their reason."""
        mode = mode or self.mode
        names = sorted({self._mock.name} if mode == "mock" else self.router.provider_names())
        deadline = asyncio.get_running_loop().time() + timeout
        reasons = await asyncio.gather(*(self._health(self.providers[n], deadline) for n in names))
        return {name: reason for name, reason in zip(names, reasons, strict=True) if reason is not None}

    @staticmethod
    async def _health(provider: Provider, deadline: float) -> str | None:
        try:
            async with asyncio.timeout_at(deadline):
                await provider.health(deadline=deadline)
        except TimeoutError:
            return "health check timed out"
        except GatewayError as err:
            return f"{err.code}: {err.message}"
        return None


async def _next(
    pieces: AsyncIterator[Delta | ProviderResult], deadline: float, plan: Plan, attempts: list[Attempt]
) -> Delta | ProviderResult:
    # The timeout wraps only the wait for the next piece, never a yield to our own consumer.
    try:
        async with asyncio.timeout_at(deadline):
            return await anext(pieces)
    except StopAsyncIteration:
        raise UpstreamError("provider stream ended without a final result") from None
    except TimeoutError:
        raise _timed_out(plan, attempts) from None
