"""A pool of Ollama instances behind one provider name: least-loaded, health-aware, capped per instance.

`base_url` lists the instances (comma-separated, e.g. from `OLLAMA_BASE_URL`; `base_urls:` adds more). Each
call goes to an instance that is up and under its `max_in_flight`, preferring one that already has the
call's model loaded (`GET /api/ps`, read every `probe_s` with the health check), then the one with the
fewest calls in flight. A call refused by an instance (connection refused or reset before any answer)
marks it down for `down_s` and moves to the next; the probe re-admits it once it answers again. With one
instance the pool is the plain provider: nothing is probed, the call goes straight through.

Caps and in-flight counts are per gateway process (the LLM Gateway keeps no shared state on its hot path):
with N replicas, an instance sees at most N x `max_in_flight` calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import msgspec
import structlog

from shared_contracts.errors import GatewayError, ProviderUnavailable, UpstreamTimeout

from .base import Delta, EmbedCall, EmbedResult, Provider, ProviderCall, ProviderResult
from .ollama import OllamaProvider, OllamaSettings

T = TypeVar("T")

__all__ = ["OllamaPool", "OllamaPoolSettings"]

_log = structlog.get_logger(component="ollama.pool")


class OllamaPoolSettings(OllamaSettings, frozen=True):
    """The instances and the pool's knobs; every other key is the plain provider's, applied to each instance."""

    base_urls: list[str] = []
    # Calls one instance gets at once from this process; 0: no cap (the route's backpressure still applies).
    max_in_flight: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 0
    # How often each instance's health and loaded models are read (several instances only).
    probe_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 5.0
    # How long an instance that refused a call gets no new calls (unless a probe finds it back sooner).
    down_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 10.0


class _Models(msgspec.Struct):
    name: str = ""
    model: str = ""


class _Running(msgspec.Struct):
    models: list[_Models] = []


_decode_ps = msgspec.json.Decoder(_Running).decode


@dataclass(slots=True, eq=False)
class _Member:
    url: str
    provider: OllamaProvider
    in_flight: int = 0
    down_until: float = 0.0
    loaded: frozenset[str] = field(default_factory=frozenset)
    error: str | None = None


def _urls(settings: OllamaPoolSettings) -> list[str]:
    urls = [u.strip().rstrip("/") for u in settings.base_url.split(",") if u.strip()]
    urls += [u.strip().rstrip("/") for u in settings.base_urls if u.strip()]
    unique = list(dict.fromkeys(urls))
    if not unique:
        raise ValueError("base_url: at least one Ollama URL is required")
    return unique


class OllamaPool(Provider):
    """Several Ollama servers as one provider (one server: exactly `OllamaProvider`)."""

    Settings = OllamaPoolSettings
    features = OllamaProvider.features
    bounds_itself = True  # its instances' calls, and the wait for a free instance, end by the deadline

    def __init__(self, name: str, settings: OllamaPoolSettings) -> None:
        super().__init__(name, settings)
        self._cfg = settings
        self.members = [
            _Member(url, OllamaProvider(name, msgspec.structs.replace(_plain(settings), base_url=url)))
            for url in _urls(settings)
        ]
        self._single = self.members[0].provider if len(self.members) == 1 else None
        self._freed = asyncio.Event()
        self._probe: asyncio.Task[None] | None = None
        if self._single is not None:
            # One instance: calls go straight to it, not even through a generator of ours (a benchmarked path).
            self.generate = self._single.generate  # type: ignore[method-assign]
            self.stream = self._single.stream  # type: ignore[method-assign]
            self.embed = self._single.embed  # type: ignore[method-assign]

    async def start(self) -> None:
        for member in self.members:
            await member.provider.start()
        if self._single is None:
            self._probe = asyncio.create_task(self._probing(), name=f"{self.name}-probe", context=contextvars.Context())

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
            self._probe = None
        for member in self.members:
            await member.provider.close()

    # ---- calls
    async def generate(self, call: ProviderCall, *, deadline: float) -> ProviderResult:
        return await self._on_an_instance(call.model, deadline, lambda p: p.generate(call, deadline=deadline))

    async def stream(self, call: ProviderCall, *, deadline: float) -> AsyncIterator[Delta | ProviderResult]:
        tried: list[_Member] = []
        while True:
            member = await self._take(call.model, deadline, tried)
            began = False
            try:
                async for piece in member.provider.stream(call, deadline=deadline):
                    began = True
                    yield piece
                return
            except ProviderUnavailable as exc:
                self._down(member, exc)
                if began:
                    raise
                tried.append(member)
            finally:
                self._give_back(member)

    async def embed(self, call: EmbedCall, *, deadline: float) -> EmbedResult:
        return await self._on_an_instance(call.model, deadline, lambda p: p.embed(call, deadline=deadline))

    async def _on_an_instance(
        self, model: str, deadline: float, send: Callable[[OllamaProvider], Awaitable[T]]
    ) -> T:
        """`send` to an instance with a free slot; an instance found down is marked so and the next one tried."""
        tried: list[_Member] = []
        while True:
            member = await self._take(model, deadline, tried)
            try:
                return await send(member.provider)
            except ProviderUnavailable as exc:
                self._down(member, exc)
                tried.append(member)
            finally:
                self._give_back(member)

    async def health(self, *, deadline: float) -> None:
        """Ready when at least one instance answers."""
        problems: list[GatewayError] = []
        for member in self.members:
            try:
                await member.provider.health(deadline=deadline)
            except GatewayError as exc:
                problems.append(exc)
            else:
                return
        raise problems[0]

    def instances(self) -> dict[str, dict[str, Any]]:
        """Each instance's state for `/readyz` and `/metrics`."""
        now = asyncio.get_running_loop().time()
        return {
            m.url: {"up": m.down_until <= now, "in_flight": m.in_flight, "max_in_flight": self._cfg.max_in_flight,
                    "models_loaded": sorted(m.loaded), "error": m.error}
            for m in self.members
        }

    # ---- dispatch
    def _pick(self, model: str, now: float, tried: list[_Member]) -> _Member | None:
        cap = self._cfg.max_in_flight
        best: _Member | None = None
        best_key = (2, 0)
        for member in self.members:
            if member.down_until > now or member in tried or (cap and member.in_flight >= cap):
                continue
            key = (0 if model in member.loaded else 1, member.in_flight)
            if best is None or key < best_key:
                best, best_key = member, key
        return best

    async def _take(self, model: str, deadline: float, tried: list[_Member]) -> _Member:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            member = self._pick(model, now, tried)
            if member is not None:
                member.in_flight += 1
                return member
            busy = [m for m in self.members if m.down_until <= now and m not in tried]
            if not busy:
                raise ProviderUnavailable(
                    f"{self.name}: every Ollama instance is down",
                    details={"provider": self.name, "instances": {m.url: m.error for m in self.members}},
                )
            # All up instances are at their cap: wait for a call to end, within the deadline.
            freed = self._freed
            try:
                async with asyncio.timeout_at(deadline):
                    await freed.wait()
            except TimeoutError:
                raise UpstreamTimeout(f"{self.name}: no instance had a free slot before the deadline",
                                      details={"provider": self.name, "queued": True}) from None

    def _give_back(self, member: _Member) -> None:
        member.in_flight -= 1
        self._freed.set()
        self._freed = asyncio.Event()

    def _down(self, member: _Member, exc: GatewayError) -> None:
        member.down_until = asyncio.get_running_loop().time() + self._cfg.down_s
        member.error = exc.message
        _log.warning("ollama_instance_down", provider=self.name, instance=member.url, error=exc.message)

    async def _probing(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.gather(*(self._read(member, loop.time() + self._cfg.probe_s) for member in self.members))
            await asyncio.sleep(self._cfg.probe_s)

    async def _read(self, member: _Member, deadline: float) -> None:
        """One probe: `/api/ps` answers → up, with the models it has loaded; no answer → down."""
        try:
            reply = await member.provider.client.request("GET", "/api/ps", deadline=deadline)
            running = _decode_ps(reply.body) if reply.ok else _Running()
        except (GatewayError, msgspec.DecodeError) as exc:
            if member.down_until <= asyncio.get_running_loop().time():
                _log.warning("ollama_instance_down", provider=self.name, instance=member.url, error=str(exc))
            member.down_until = asyncio.get_running_loop().time() + self._cfg.down_s
            member.error = getattr(exc, "message", type(exc).__name__)
            return
        if member.down_until > asyncio.get_running_loop().time():
            _log.info("ollama_instance_back", provider=self.name, instance=member.url)
        member.down_until, member.error = 0.0, None
        member.loaded = frozenset(m.model or m.name for m in running.models)


def _plain(settings: OllamaPoolSettings) -> OllamaSettings:
    """The per-instance settings: the plain provider's keys of the pool's section."""
    fields = {f: getattr(settings, f) for f in OllamaSettings.__struct_fields__}
    return OllamaSettings(**fields)

