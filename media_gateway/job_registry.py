"""Where job snapshots live: the registry interface, the in-memory default, and the resume ticket.

The registry holds Job snapshots (what a shared backend would store) and, for a durable registry, each
unfinished job's ticket: what a restarted gateway needs to resume it.
"""

from __future__ import annotations

import abc
import collections
import time
from collections.abc import Callable
from typing import Any, ClassVar

import msgspec

from shared_contracts.media import Job, JobStatus

__all__ = ["FINAL", "JobRegistry", "JobTicket", "MemoryJobRegistry"]

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
    # The upstream's own id for the work once it accepted it (ComfyUI's prompt_id); None while queued here.
    upstream_id: str | None = None


class JobRegistry(abc.ABC):
    """Where job snapshots live; a shared backend (e.g. Redis) implements the same calls.

    `save` and `get` are required. A registry that survives restarts also keeps tickets (`track`,
    `set_upstream`) and lists what was left unfinished (`unfinished`); the defaults keep nothing.
    A save the backend refuses (a full disk) raises `StorageError`.
    """

    # True when a restarted gateway finds this registry's unfinished jobs again (and resumes them).
    durable: ClassVar[bool] = False

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
        """Record the upstream's id for the job's work."""

    async def unfinished(self) -> list[tuple[Job, JobTicket | None]]:
        """Jobs left queued or running by an earlier process, oldest first, with their tickets."""
        return []


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
