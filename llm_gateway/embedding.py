"""Embeddings: `EmbedRequest` → route (YAML `embedding_routing`, by role/task/quality) → provider → one vector per text.

The path of a generation, smaller: the mode decides (mock mode answers with the mock's deterministic unit
vectors under the live route's model name), targets are tried in order within the route's deadline, each
try inside its own budget and its provider's guard (breaker, backpressure), falling back on retryable errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from time import perf_counter

from service_common.config import ConfigError
from service_common.deadline import effective_timeout
from service_common.ids import new_id
from shared_contracts.embeddings import EmbedRequest, EmbedResponse, EmbedUsage
from shared_contracts.errors import GatewayError, NoRoute, PayloadTooLarge, UpstreamError
from shared_contracts.llm import Attempt, Mode

from .attempts import attempt_budget, attempt_timeout, done, failed, pending, timed_out
from .config import GatewayConfig, RouteSpec
from .gateway import Gateway
from .guards import ProviderGuard
from .providers.base import EmbedCall, EmbedResult, Provider
from .routing import Router, Target

__all__ = ["Embedder", "build_embedder"]


class Embedder:
    """Routes embed requests to providers with the `embeddings` feature (checked when built)."""

    def __init__(
        self,
        *,
        router: Router | None,
        providers: Mapping[str, Provider],
        mock: Provider,
        mode: Mode,
        guards: Mapping[str, ProviderGuard] | None = None,
        max_chars: int = 500_000,
    ) -> None:
        self.router = router
        self.providers = dict(providers)
        self.mock = mock
        self.mode: Mode = mode
        self.guards = dict(guards or {})
        self.max_chars = max_chars

    def _targets(self, request: EmbedRequest, mode: Mode) -> tuple[list[tuple[Target, Provider]], float]:
        if self.router is None:
            raise NoRoute("no embedding_routing is configured", details={"role": request.role, "task": request.task})
        route = self.router.resolve(request.role, request.task, request.quality)
        timeout = route.timeout("mock" if mode != "live" else "live")
        if mode != "live":
            primary = route.targets[0]
            return [(Target(provider=self.mock.name, model=primary.model), self.mock)], timeout
        return [(t, self.providers[t.provider]) for t in route.targets], timeout

    async def embed(self, request: EmbedRequest, *, mode: Mode | None = None,
                    timeout: float | None = None) -> EmbedResponse:
        """One vector per input text; raises a GatewayError whose `details["attempts"]` lists the tries."""
        started = perf_counter()
        mode = mode or self.mode
        texts = [request.input] if isinstance(request.input, str) else list(request.input)
        chars = sum(len(t) for t in texts)
        if chars > self.max_chars:
            raise PayloadTooLarge(f"input holds {chars} characters, over the limit of {self.max_chars}",
                                  details={"field": "input", "limit": self.max_chars, "actual": chars})
        targets, route_timeout = self._targets(request, mode)
        # Replay mode has no embedding fixtures: the mock answers, and the response says so.
        mode = "live" if mode == "live" else "mock"
        loop = asyncio.get_running_loop()
        budget = effective_timeout(route_timeout, timeout)
        deadline = loop.time() + budget
        attempts: list[Attempt] = []
        last: GatewayError | None = None
        try:
            async with asyncio.timeout_at(deadline):
                for index, (target, provider) in enumerate(targets):
                    call = EmbedCall(model=target.model, texts=texts, dimensions=request.dimensions,
                                     extra=target.extra, role=request.role, task=request.task)
                    until = attempt_budget(now=loop.time(), deadline=deadline, targets_left=len(targets) - index,
                                           fixed=None)
                    try:
                        result = await self._try(provider, target, call, attempts, until, deadline)
                    except GatewayError as err:
                        if not err.retryable:
                            raise
                        last = err
                        continue
                    return self._response(request, mode, provider, target, result, attempts, started, len(texts))
        except TimeoutError:
            raise timed_out(attempts, budget, mode) from None
        except GatewayError as err:
            err.details.setdefault("attempts", attempts)
            raise
        assert last is not None
        last.details.setdefault("attempts", attempts)
        raise last

    async def _try(self, provider: Provider, target: Target, call: EmbedCall, attempts: list[Attempt],
                   until: float, deadline: float) -> EmbedResult:
        attempt = pending(provider.name, target.model)
        attempts.append(attempt)
        guard = self.guards.get(provider.name)
        started = asyncio.get_running_loop().time()
        try:
            try:
                async with asyncio.timeout_at(until):
                    if guard is None:
                        result = await provider.embed(call, deadline=until)
                    else:
                        async with guard.call(until):
                            result = await provider.embed(call, deadline=until)
            except TimeoutError:
                if until >= deadline:
                    raise
                raise attempt_timeout(provider.name, until - started) from None
        except GatewayError as err:
            failed(attempt, err)
            raise
        done(attempt, "ok")
        return result

    def _response(self, request: EmbedRequest, mode: Mode, provider: Provider, target: Target, result: EmbedResult,
                  attempts: list[Attempt], started: float, count: int) -> EmbedResponse:
        sizes = {len(v) for v in result.vectors}
        if len(result.vectors) != count or len(sizes) != 1:
            raise UpstreamError(f"{provider.name}: {len(result.vectors)} vectors of sizes {sorted(sizes)} for "
                                f"{count} texts", details={"provider": provider.name, "attempts": attempts})
        return EmbedResponse(
            id=new_id(), role=request.role, task=request.task, mode=mode, provider=provider.name,
            model=target.model, embeddings=result.vectors, dimensions=sizes.pop(),
            usage=EmbedUsage(input_tokens=result.input_tokens),
            latency_ms=round((perf_counter() - started) * 1000, 3), attempts=attempts,
        )


def build_embedder(config: GatewayConfig, gateway: Gateway) -> Embedder:
    """The Embedder for `config`, sharing the gateway's providers and guards; a provider named in
    `embedding_routing` that makes no embeddings (Anthropic) fails start-up naming the YAML key."""
    routing = config.embedding_routing
    places: list[tuple[str, RouteSpec]] = [(f"embedding_routing.rules[{i}]", r) for i, r in enumerate(routing.rules)]
    if routing.default is not None:
        places.append(("embedding_routing.default", routing.default))
    for where, route in places:
        for spot, target in [(where, route), *((f"{where}.fallbacks[{j}]", f) for j, f in enumerate(route.fallbacks))]:
            if "embeddings" not in gateway.providers[target.provider].features:
                raise ConfigError(f"{spot}.provider: {target.provider!r} does not make embeddings")
    return Embedder(
        router=Router(routing, config.timeouts) if places else None,
        providers=gateway.providers,
        mock=gateway.providers[config.mock_provider],
        mode=gateway.mode,
        guards=gateway.guards,
        max_chars=config.limits.max_chars,
    )
