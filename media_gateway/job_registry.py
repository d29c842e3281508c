"""Where job snapshots live: the registry interface, the in-memory default, and the resume ticket.

The registry holds Job snapshots (what a shared backend would store) and, for a durable registry, each
unfinished job's ticket: what a restarted gateway needs to resume it.
"""

from __future__ import annotations

import abc
import collections
import time
from collections.abc import Callable, Collection
from typing import Any, ClassVar

import msgspec

from shared_contracts.media import Job, JobStatus

from .slots import LocalSlots, SlotLedger

__all__ = ["FINAL", "JobRegistry", "JobTicket", "Lease", "MemoryJobRegistry"]

FINAL: frozenset[JobStatus] = frozenset({"succeeded", "failed", "canceled"})


class JobTicket(msgspec.Struct, kw_only=True, frozen=True):
    """What resuming an unfinished job after a restart needs: its render call and its wall-clock deadline.

    Kept beside the job, never shown to clients (it holds provider-specific data such as the graph).
    """

    provider: str
    workflow: str
    params: dict[str, Any]
    graph: dict[str, Any] | None = None
    output_nodes: list[str] = []
    options: dict[str, Any] = {}
    # Unix time the job must be finished by (a restart keeps the caller's budget, not a fresh one).
    deadline_at: float
    request_id: str | None = None
    # The upstream's own id for the work (ComfyUI's prompt_id), recorded before it is submitted; None while
    # queued here. `accepted`: the upstream confirmed it took the work (else it may or may not have it).
    upstream_id: str | None = None
    accepted: bool = True
    # The upstream instance the work went to (a pool's base URL); None for single-instance providers.
    instance: str | None = None


class Lease(msgspec.Struct, kw_only=True, frozen=True):
    """A heartbeat's answer: the jobs this replica still owns, and those a client asked to cancel elsewhere."""

    owned: frozenset[str]
    cancel: frozenset[str]


class JobRegistry(abc.ABC):
    """Where job snapshots live; a shared backend (e.g. Redis) implements the same calls.

    `save` and `get` are required. A registry that survives restarts also keeps tickets (`track`,
    `set_upstream`) and lists what was left unfinished (`unfinished`); the defaults keep nothing.
    A save the backend refuses (a full disk) raises `StorageError`.
    """

    # True when a restarted gateway finds this registry's unfinished jobs again (and resumes them).
    durable: ClassVar[bool] = False
    # True when several replicas share it: jobs are leased, any replica answers any job, and a dead
    # replica's jobs are adopted by another (`adopt`, `heartbeat`, `release`, `request_cancel`).
    shared: ClassVar[bool] = False
    _local_slots: SlotLedger | None = None

    @property
    def slots(self) -> SlotLedger:
        """Where upstream instance slots are counted; this process alone unless the registry is shared."""
        if self._local_slots is None:
            self._local_slots = LocalSlots()
        return self._local_slots

    async def open(self) -> None:
        """Acquire resources (a database file). Called once in the app's lifespan."""

    async def close(self) -> None:
        """Release resources. Called once on shutdown, after the runner has stopped."""

    @abc.abstractmethod
    async def save(self, job: Job) -> None:
        """Insert or replace the snapshot of `job.id`."""

    @abc.abstractmethod
    async def get(self, job_id: str) -> Job | None:
        """The latest snapshot, or None when unknown or expired."""

    async def track(self, job_id: str, ticket: JobTicket) -> None:
        """Keep `ticket` with the saved job `job_id` until the job is final."""

    async def set_upstream(self, job_id: str, upstream_id: str) -> None:
        """Record that the upstream accepted the job's work as `upstream_id`."""

    async def bind(self, job_id: str, *, instance: str | None, upstream_id: str) -> None:
        """Record, before submitting, where the work goes and the id it is submitted under."""

    async def unfinished(self) -> list[tuple[Job, JobTicket | None]]:
        """Jobs left queued or running by an earlier process, oldest first, with their tickets."""
        return []

    async def adopt(self) -> list[tuple[Job, JobTicket | None]]:
        """Unfinished jobs nobody drives, now owned here: at start-up every unfinished one (one process per
        file); a shared registry hands out those whose owner's lease ran out."""
        return await self.unfinished()

    async def heartbeat(self) -> Lease:
        """Renew this replica's leases (shared registries only)."""
        return Lease(owned=frozenset(), cancel=frozenset())

    async def release(self, job_ids: Collection[str]) -> None:
        """Give up the leases of jobs this replica stops driving, so another adopts them at once."""

    async def request_cancel(self, job_id: str) -> bool:
        """Ask the replica driving `job_id` to cancel it; False when the job is not queued or running."""
        return False

    async def unfinished_count(self, provider: str) -> int | None:
        """Jobs queued or running for `provider` across every replica; None when only this process knows."""
        return None


class MemoryJobRegistry(JobRegistry):
    """A dict in insertion order; finished jobs expire after `retention_s` or beyond `max_jobs`."""

    def __init__(self, *, max_jobs: int, retention_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._jobs: collections.OrderedDict[str, tuple[Job, float]] = collections.OrderedDict()
        self._max, self._retention, self._clock = max_jobs, retention_s, clock

    async def save(self, job: Job) -> None:
        self._jobs[job.id] = (job, self._clock())
        self._prune()

    async def get(self, job_id: str) -> Job | None:
        self._prune()
        entry = self._jobs.get(job_id)
        return entry[0] if entry else None

    def __len__(self) -> int:
        return len(self._jobs)

    def _prune(self) -> None:
        now = self._clock()
        expired = [jid for jid, (job, at) in self._jobs.items() if job.status in FINAL and now - at > self._retention]
        for jid in expired:
            del self._jobs[jid]
        # Over the cap, the oldest finished jobs go first; running jobs are never dropped.
        excess = len(self._jobs) - self._max
        for jid in [jid for jid, (job, _) in self._jobs.items() if job.status in FINAL][: max(0, excess)]:
            del self._jobs[jid]
