"""Per-instance in-flight slots: which upstream instance each job is bound to, and how many each holds.

A provider with several instances (a ComfyUI pool) asks the ledger for a slot before it submits a job:
`take()` binds the job to the least-loaded offered instance still under its cap, atomically, or answers
None when every instance is full (the job then waits, `queued`). The local ledger counts in this process
(one machine, SQLite or memory jobs); the PostgreSQL job store counts in the database, so the caps hold
across every replica that shares it. A resumed job `keep()`s the slot of the instance that holds its work.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["LocalSlots", "SlotLedger", "SlotOffer", "choose"]


@dataclass(frozen=True, slots=True)
class SlotOffer:
    """An instance a job may go to: its stable name (the base URL), its cap, and the queue it reports."""

    instance: str
    cap: int
    # Prompts the instance says it holds (its own queue, other clients' work included).
    queue: int = 0


def choose(offers: Sequence[SlotOffer], held: Mapping[str, int]) -> str | None:
    """The least-loaded offer under its cap (load: our slots there, or its queue when longer); ties keep order.

    >>> choose([SlotOffer("a", 2), SlotOffer("b", 2)], {"a": 1})
    'b'
    """
    best: tuple[int, int, int] | None = None
    chosen: str | None = None
    for index, offer in enumerate(offers):
        ours = held.get(offer.instance, 0)
        if ours >= offer.cap:
            continue
        key = (max(ours, offer.queue), ours, index)
        if best is None or key < best:
            best, chosen = key, offer.instance
    return chosen


class SlotLedger(abc.ABC):
    """Counts the jobs bound to each upstream instance; `take` is atomic against every other taker."""

    @abc.abstractmethod
    async def take(self, job_id: str, provider: str, offers: Sequence[SlotOffer]) -> str | None:
        """Bind `job_id` to the best offered instance under its cap (see `choose`); None when all are full."""

    @abc.abstractmethod
    async def keep(self, job_id: str, provider: str, instance: str) -> None:
        """`job_id` holds a slot on `instance` (its work is already there), whatever the cap says."""

    @abc.abstractmethod
    async def release(self, job_id: str) -> None:
        """Free the job's slot (no-op when it holds none)."""

    @abc.abstractmethod
    async def held(self, provider: str) -> dict[str, int]:
        """Slots held per instance of `provider` now."""

    @abc.abstractmethod
    async def freed(self, timeout: float) -> None:
        """Return when a slot may have been freed, or after `timeout` seconds."""


class LocalSlots(SlotLedger):
    """The ledger of one process: a dict, and an event set whenever a slot is released."""

    def __init__(self) -> None:
        self._bound: dict[str, tuple[str, str]] = {}
        self._changed = asyncio.Event()

    def _counts(self, provider: str, *, skip: str | None = None) -> dict[str, int]:
        counts: dict[str, int] = {}
        for job_id, (owner, instance) in self._bound.items():
            if owner == provider and job_id != skip:
                counts[instance] = counts.get(instance, 0) + 1
        return counts

    async def take(self, job_id: str, provider: str, offers: Sequence[SlotOffer]) -> str | None:
        chosen = choose(offers, self._counts(provider, skip=job_id))
        if chosen is None:
            self._bound.pop(job_id, None)
        else:
            self._bound[job_id] = (provider, chosen)
        return chosen

    async def keep(self, job_id: str, provider: str, instance: str) -> None:
        self._bound[job_id] = (provider, instance)

    async def release(self, job_id: str) -> None:
        if self._bound.pop(job_id, None) is not None:
            # Wake whoever waits now; later waiters wait on a fresh event (nothing awaits between a
            # refused `take` and its `freed`, so no release is missed).
            self._changed.set()
            self._changed = asyncio.Event()

    async def held(self, provider: str) -> dict[str, int]:
        return self._counts(provider)

    async def freed(self, timeout: float) -> None:
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await changed.wait()
