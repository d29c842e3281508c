"""The request path: mode, route, deadline, fallbacks, structured-output repair, one response shape.

In mock mode every route is answered by the mock provider; the response names provider `mock` (the
instance that really answered) and the model the live route would have used.

Deadlines: the whole call (fallbacks and the repair included) ends by the route's deadline, and each try
ends by its own budget inside it: the rule's `attempt_timeout`, else an equal share of what is left among
the targets still to try, so a hanging primary leaves time for its fallbacks. A streamed try's budget bounds
the wait for its first piece; once text flows, only the whole deadline applies.

Mock mode tries the route's targets in order (primary, then fallbacks, each answered by the mock), so a
failure scenario (`X-Mock-Scenario`, see scenarios.py) shows the same retries, fallbacks and attempts as
the live fault. Replay mode answers from recorded fixtures and contacts no provider; record mode answers
live and saves every answer as a fixture (see fixtures.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from time import perf_counter
from typing import Any

import structlog

from service_common.deadline import effective_timeout
from service_common.ids import new_id
from service_common.retry import RetryPolicy
from shared_contracts.errors import GatewayError, InvalidOutput, InvalidRequest, UpstreamError, UpstreamTimeout
from shared_contracts.llm import (
    Attempt,
    GenerateRequest,
    GenerateResponse,
    Message,
    Mode,
    RoutingTable,
    StreamDelta,
    Usage,
)
from shared_contracts.scenarios import SCENARIO_HEADER, Scenario

from .attempts import TryOrder, attempt_timeout, done, failed, pending
from .features import check_tool_use, may_need_features, needed_features, targets_able
from .fixtures import FixtureStore, replay_pieces, replayed_response
from .guards import DEADLINE_SLACK_S, ProviderGuard, ProviderStatus
from .limits import RequestLimits, check_request
from .plan import NO_RETRY, GatewayStream, Plan
from .providers.base import Delta, Provider, ProviderCall, ProviderResult
from .routing import ResolvedRoute, Router, Target
from .scenarios import ScenarioProvider, check_applicable
from .structured import SchemaCache, repair_prompt

__all__ = ["Gateway"]

_log = structlog.get_logger(component="gateway")
Sleep = Callable[[float], Awaitable[None]]


def _add(total: int | None, more: int | None) -> int | None:
    # An unknown count stays unknown: a sum with one unknown part is not a count.
    return None if total is None or more is None else total + more


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
        limits: RequestLimits | None = None,
        retry: RetryPolicy = NO_RETRY,
        guards: Mapping[str, ProviderGuard] | None = None,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
        fixtures: FixtureStore | None = None,
        record: bool = False,
    ) -> None:
        self.router = router
        self.providers = dict(providers)
        self.mode: Mode = mode
        self.allow_mode_header = allow_mode_header
        self.limits = limits or RequestLimits()
        self.retry = retry
        self.guards = dict(guards or {})
        self._mock = self.providers[mock_provider]
        self._schemas = SchemaCache()
        # Jitter needs no secrecy; tests pass a seeded Random and a recording `sleep`.
        self._rng = rng or random.Random()
        self._sleep = sleep
        # Replay answers from these fixtures; with `record`, live answers are saved to them.
        self.fixtures = fixtures
        self.record = record and fixtures is not None
        # Each route's targets with their providers, by the route object's id, for one router (_live_targets).
        self._targets: dict[int, tuple[ResolvedRoute, tuple[tuple[Target, Provider], ...]]] = {}
        self._targets_router: Router | None = None

    async def start(self) -> None:
        """Start every provider (opens their pooled sessions)."""
        for provider in self.providers.values():
            await provider.start()

    async def close(self) -> None:
        """Close every provider; safe after a partial start."""
        for provider in reversed(list(self.providers.values())):
            await provider.close()

    def plan(
        self,
        request: GenerateRequest,
        *,
        mode: Mode | None = None,
        timeout: float | None = None,
        scenario: Scenario | None = None,
    ) -> Plan:
        """Resolve mode, route and schema; raises NoRoute, InvalidRequest, PayloadTooLarge or (replay)
        FixtureMissing before any call.

        `timeout` (the caller's X-Request-Timeout) may shorten the route's deadline, never lengthen it.
        `scenario` (the caller's X-Mock-Scenario) makes the mock fail as a live provider would; mock mode only.
        """
        mode = mode or self.mode
        check_request(request, self.limits)
        # A malformed schema is the client's error whatever the route, so it is checked first.
        schema = None if request.response_schema is None else self._schemas.get(request.response_schema)
        router = self.router
        resolved = router.resolve(request.role, request.task, request.quality)
        route = self._able(resolved, request) if may_need_features(request) else resolved
        if scenario is not None and mode != "mock":
            raise InvalidRequest(
                f"X-Mock-Scenario is honoured only in mock mode; this request is answered in {mode} mode",
                details={"header": SCENARIO_HEADER, "mode": mode},
            )
        fixture = None
        targets: tuple[tuple[Target, Provider], ...] = ()
        if mode == "mock":
            # The live route's targets in its order, every one answered by the mock.
            targets = tuple(
                (Target(provider=self._mock.name, model=t.model, options=t.options), self._mock)
                for t in route.targets
            )
            if scenario is not None:
                check_applicable(scenario, targets=len(targets), schema=schema is not None)
                targets = tuple(
                    (target, ScenarioProvider(self._mock, scenario, position=index))
                    for index, (target, _) in enumerate(targets)
                )
        elif mode == "replay":
            fixture = self._replay_store().find(request)
        else:
            targets = self._live_targets(router, route) if route is resolved else self._bound(route)
        # Replay answers as fast as the mock: it gets the mock's deadlines.
        timed: Mode = "mock" if mode == "replay" else mode
        budget = effective_timeout(route.timeout(timed), timeout)
        return Plan(
            request, mode, route, targets, schema, budget, route.retry or self.retry, route.attempt_timeout(timed),
            fixture,
        )

    def _live_targets(self, router: Router, route: ResolvedRoute) -> tuple[tuple[Target, Provider], ...]:
        """`_bound(route)` for a route of `router`, made once per route; a new router (a reload) starts afresh.

        Only the router's own routes are kept: a route narrowed for one request (`_able`) is bound each time.
        """
        if router is not self._targets_router:
            self._targets.clear()
            self._targets_router = router
        found = self._targets.get(id(route))
        if found is None or found[0] is not route:
            found = (route, self._bound(route))
            self._targets[id(route)] = found
        return found[1]

    def _bound(self, route: ResolvedRoute) -> tuple[tuple[Target, Provider], ...]:
        """`route`'s targets in try order, each with its provider."""
        return tuple((t, self.providers[t.provider]) for t in route.targets)

    def _replay_store(self) -> FixtureStore:
        if self.fixtures is None:
            raise InvalidRequest("replay mode needs a fixtures folder (fixtures_dir)", details={"mode": "replay"})
        return self.fixtures

    def _able(self, route: ResolvedRoute, request: GenerateRequest) -> ResolvedRoute:
        """`route` with only the targets that can honour the request's tools/logprobs/logit_bias (else a 400)."""
        check_tool_use(request)
        needs = needed_features(request)
        if not needs:
            return route
        judge = [self.providers[t.provider] for t in route.targets]
        kept = targets_able([(t, p) for t, p in zip(route.targets, judge, strict=True)], needs, judge=judge,
                            route=route.name)
        return dataclasses.replace(route, targets=tuple(t for t, _ in kept))

    async def generate(
        self,
        request: GenerateRequest,
        *,
        mode: Mode | None = None,
        timeout: float | None = None,
        scenario: Scenario | None = None,
    ) -> GenerateResponse:
        """One complete answer; raises a GatewayError whose `details["attempts"]` lists the tries."""
        return await self.run(self.plan(request, mode=mode, timeout=timeout, scenario=scenario))

    async def run(self, plan: Plan) -> GenerateResponse:
        """Execute a plan within its deadline, falling back on retryable errors."""
        started = perf_counter()
        if plan.fixture is not None:
            return replayed_response(plan.request, plan.fixture, started)
        deadline = asyncio.get_running_loop().time() + plan.timeout
        attempts: list[Attempt] = []
        # Tries on providers that end every call by the deadline they are given need no timer of ours on
        # top: a try with a shorter budget gets its own (`_call`), the waits between tries end before the
        # deadline (`TryOrder`), the last try ends by it. Any other provider (the mock, a scenario) gets it.
        bounded = all(provider.bounds_itself for _, provider in plan.targets)
        try:
            async with contextlib.nullcontext() if bounded else asyncio.timeout_at(deadline):
                response = await self._first_success(plan, attempts, deadline, started)
        except TimeoutError:
            raise plan.timed_out(attempts) from None
        except GatewayError as err:
            if bounded and isinstance(err, UpstreamTimeout) and self._passed(deadline):
                # The call's deadline ended the last try (the provider's own bound, not a timer of ours):
                # the same answer as when our timer ends it.
                raise plan.timed_out(attempts) from err
            err.details.setdefault("attempts", attempts)
            raise
        if self.record:
            await self._recorded(plan, response, None)
        return response

    @staticmethod
    def _passed(deadline: float) -> bool:
        return asyncio.get_running_loop().time() >= deadline - DEADLINE_SLACK_S

    async def _recorded(self, plan: Plan, response: GenerateResponse, chunks: list[str] | None) -> None:
        """In record mode, save a live answer as the fixture of its request."""
        if self.record and self.fixtures is not None and plan.mode == "live":
            try:
                await self.fixtures.save(plan.request, response, chunks)
            except (OSError, ValueError) as exc:
                # The live answer is good and paid for: it is still returned; the missing fixture is logged.
                _log.error("fixture_not_saved", role=plan.request.role, task=plan.request.task, error=str(exc))

    async def _first_success(
        self, plan: Plan, attempts: list[Attempt], deadline: float, started: float
    ) -> GenerateResponse:
        last: GatewayError | None = None
        order = self._order(plan, deadline)
        while (one := order.next()) is not None:
            (target, provider), until = one
            call = plan.call(target)
            try:
                result = await self._call(provider, target, call, attempts, until, deadline)
            except GatewayError as err:
                if not err.retryable:
                    raise
                last = err
                await self._back_off(order, err)
                continue
            return await self._complete(plan, target, provider, call, result, attempts, deadline, started)
        raise last if last is not None else plan.timed_out(attempts)

    async def _back_off(self, order: TryOrder[tuple[Target, Provider]], err: GatewayError) -> None:
        """A try failed retryably: wait what the order says before the next one (nothing before a next target)."""
        wait = order.failed(err)
        if wait:
            await self._sleep(wait)

    def _order(self, plan: Plan, deadline: float) -> TryOrder[tuple[Target, Provider]]:
        return TryOrder(
            plan.targets, plan.retry, deadline=deadline, fixed=plan.attempt_timeout,
            clock=asyncio.get_running_loop().time, rng=self._rng,
        )

    async def _call(
        self,
        provider: Provider,
        target: Target,
        call: ProviderCall,
        attempts: list[Attempt],
        until: float,
        deadline: float,
    ) -> ProviderResult:
        """One try, ending by `until` (its budget); at `deadline` (the whole call's) the caller's bound ends it."""
        attempt = pending(provider.name, target.model)
        attempts.append(attempt)
        try:
            if until >= deadline:
                result = await self._guarded(provider, call, until)
            else:
                started = asyncio.get_running_loop().time()
                try:
                    async with asyncio.timeout_at(until):
                        result = await self._guarded(provider, call, until)
                except TimeoutError:
                    raise attempt_timeout(provider.name, until - started) from None
        except GatewayError as err:
            failed(attempt, err)
            raise
        done(attempt, "ok")
        return result

    async def _guarded(self, provider: Provider, call: ProviderCall, until: float) -> ProviderResult:
        guard = self.guards.get(provider.name)
        if guard is None:
            return await provider.generate(call, deadline=until)
        async with guard.call(until):
            return await provider.generate(call, deadline=until)

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
        # An answer that calls tools is the calls: the schema is for the text answer that comes after them.
        if plan.schema is not None and not result.tool_calls:
            try:
                doc = plan.schema.parse(result.text)
            except InvalidOutput as first:
                attempts[-1].outcome = attempts[-1].error_code = first.code
                # One repair: the same target sees its answer and what was wrong, and tries again with what
                # is left of the deadline (no fallback follows an answer, so the repair may use all of it).
                repair = dataclasses.replace(
                    call,
                    messages=[
                        *call.messages,
                        Message(role="assistant", content=result.text),
                        Message(role="user", content=repair_prompt(first)),
                    ],
                )
                result = await self._call(provider, target, repair, attempts, deadline, deadline)
                input_tokens = _add(input_tokens, result.input_tokens)
                output_tokens = _add(output_tokens, result.output_tokens)
                try:
                    doc = plan.schema.parse(result.text)
                except InvalidOutput as second:
                    attempts[-1].outcome = attempts[-1].error_code = second.code
                    raise
        request = plan.request
        return GenerateResponse(
            id=new_id(),
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
            tool_calls=result.tool_calls,
            logprobs=result.logprobs,
        )

    def stream(
        self,
        request: GenerateRequest,
        *,
        mode: Mode | None = None,
        timeout: float | None = None,
        scenario: Scenario | None = None,
    ) -> GatewayStream:
        """Text pieces, then one GenerateResponse. Route and schema errors raise here, before iteration."""
        plan = self.plan(request, mode=mode, timeout=timeout, scenario=scenario)
        deadline = asyncio.get_running_loop().time() + plan.timeout
        attempts: list[Attempt] = []
        return GatewayStream(self.run_stream(plan, deadline=deadline, attempts=attempts), deadline, attempts)

    async def run_stream(
        self, plan: Plan, *, deadline: float | None = None, attempts: list[Attempt] | None = None
    ) -> AsyncGenerator[StreamDelta | GenerateResponse, None]:
        """Stream a plan: a retry or fallback is tried only while no text has been sent."""
        started = perf_counter()
        if plan.fixture is not None:
            for piece in replay_pieces(plan.fixture):
                yield StreamDelta(text=piece)
            yield replayed_response(plan.request, plan.fixture, started)
            return
        if deadline is None:
            deadline = asyncio.get_running_loop().time() + plan.timeout
        attempts = [] if attempts is None else attempts
        sent_text: list[str] = []
        last: GatewayError | None = None
        order = self._order(plan, deadline)
        while (one := order.next()) is not None:
            (target, provider), until = one
            call = plan.call(target)
            attempt = pending(provider.name, target.model)
            attempts.append(attempt)
            sent = False
            budget = until - asyncio.get_running_loop().time()
            guard = self.guards.get(provider.name)
            try:
                # The guard spans the whole stream: its limiter slot is held until the last piece (or until
                # the front end stops reading: it closes this generator at the deadline at the latest).
                async with guard.call(deadline, slot_by=until) if guard is not None else contextlib.nullcontext():
                    pieces = provider.stream(call, deadline=deadline)
                    try:
                        while True:
                            # The try's budget bounds the wait for its first piece; after that, the deadline.
                            if sent or until >= deadline:
                                item = await _next(pieces, deadline, lambda: plan.timed_out(attempts))
                            else:
                                item = await _next(pieces, until, lambda: attempt_timeout(provider.name, budget))
                            if not isinstance(item, Delta):
                                result = item
                                break
                            sent = True
                            sent_text.append(item.text)
                            yield StreamDelta(text=item.text)
                    finally:
                        await pieces.aclose()  # type: ignore[attr-defined]
            except GatewayError as err:
                failed(attempt, err)
                err.details.setdefault("attempts", attempts)
                if sent or not err.retryable:
                    raise
                last = err
                await self._back_off(order, err)
                continue
            done(attempt, "ok")
            try:
                async with asyncio.timeout_at(deadline):
                    response = await self._complete(
                        plan, target, provider, call, result, attempts, deadline, started
                    )
            except TimeoutError:
                raise plan.timed_out(attempts) from None
            except GatewayError as err:
                err.details.setdefault("attempts", attempts)
                raise
            if self.record:
                await self._recorded(plan, response, sent_text)
            yield response
            return
        failure = last if last is not None else plan.timed_out(attempts)
        failure.details.setdefault("attempts", attempts)
        raise failure

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
        if mode == "replay":
            return {}  # nothing upstream is called; the fixtures were read at start-up
        names = sorted({self._mock.name} if mode == "mock" else self.router.provider_names())
        deadline = asyncio.get_running_loop().time() + timeout
        reasons = await asyncio.gather(*(self._health(self.providers[n], deadline) for n in names))
        return {name: reason for name, reason in zip(names, reasons, strict=True) if reason is not None}

    def guard_status(self) -> dict[str, ProviderStatus]:
        """Breaker state and backpressure counts of every guarded provider, for `/readyz`."""
        return {name: guard.status() for name, guard in sorted(self.guards.items())}

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
    pieces: AsyncIterator[Delta | ProviderResult], until: float, expired: Callable[[], GatewayError]
) -> Delta | ProviderResult:
    # The timeout wraps only the wait for the next piece, never a yield to our own consumer (the front end
    # bounds its sending by the same deadline).
    try:
        async with asyncio.timeout_at(until):
            return await anext(pieces)
    except StopAsyncIteration:
        raise UpstreamError("provider stream ended without a final result") from None
    except TimeoutError:
        raise expired() from None
