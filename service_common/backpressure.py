"""Backpressure per upstream: at most `max_in_flight` calls at once, at most `max_queue` waiting for a slot.

When the queue is full the caller gets 429 `overloaded` with `Retry-After` at once, instead of a pile of
requests that swamps a desktop model server or image backend. A waiter gives up at its own deadline.

    limiter = Limiter("local-llm", LimiterSettings(max_in_flight=2, max_queue=16))
    async with limiter.slot(deadline):
        await call_upstream()
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

import msgspec

from shared_contracts.errors import Overloaded, UpstreamTimeout

__all__ = ["Limiter", "LimiterSettings", "LimiterStatus"]


class LimiterSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """YAML: calls at once, callers allowed to wait, and the `Retry-After` seconds sent when the queue is full.

    `max_in_flight: 0` means unlimited (no limiter at all).
    """

    max_in_flight: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 0
    max_queue: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 64
    retry_after_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 1.0


class LimiterStatus(msgspec.Struct, kw_only=True):
    """What `/readyz` shows for one limiter."""

    in_flight: int
    queued: int
    max_in_flight: int
    max_queue: int


class Limiter:
    """An in-flight cap with a bounded FIFO wait queue, for one upstream on one event loop."""

    def __init__(self, name: str, settings: LimiterSettings) -> None:
        if settings.max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1 for a Limiter; 0 means build none")
        self.name = name
        self.settings = settings
        self._in_flight = 0
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def in_flight(self) -> int:
        """Calls holding a slot now."""
        return self._in_flight

    @property
    def queued(self) -> int:
        """Callers waiting for a slot now."""
        return len(self._waiters)

    @contextlib.asynccontextmanager
    async def slot(self, deadline: float) -> AsyncIterator[None]:
        """Hold one slot for the block; Overloaded when the queue is full, UpstreamTimeout at `deadline`."""
        await self._acquire(deadline)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, deadline: float) -> None:
        if self._in_flight < self.settings.max_in_flight and not self._waiters:
            self._in_flight += 1
            return
        if len(self._waiters) >= self.settings.max_queue:
            raise Overloaded(
                f"{self.name}: {self._in_flight} calls in flight and {len(self._waiters)} waiting; try again later",
                details={"provider": self.name, "in_flight": self._in_flight, "queued": len(self._waiters)},
                retry_after=self.settings.retry_after_s,
            )
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                await waiter
        except BaseException as exc:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            # Timed out or cancelled just after the slot was handed over: pass it on to the next waiter.
            if waiter.done() and not waiter.cancelled():
                self._release()
            if isinstance(exc, TimeoutError):
                raise UpstreamTimeout(
                    f"{self.name}: no free slot before the deadline",
                    details={"provider": self.name, "queued": True},
                ) from None
            raise
        # _release() handed its slot to us, so _in_flight already counts this call.

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)  # the slot passes straight to the waiter
                return
        self._in_flight -= 1

    def status(self) -> LimiterStatus:
        """Current counts for health endpoints."""
        return LimiterStatus(
            in_flight=self._in_flight,
            queued=len(self._waiters),
            max_in_flight=self.settings.max_in_flight,
            max_queue=self.settings.max_queue,
        )
