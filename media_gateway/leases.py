"""The replica's side of a shared job store: renew leases, act on cancels sent elsewhere, adopt orphans.

Runs only with a shared registry (PostgreSQL). Every `heartbeat_s` it renews the leases of the jobs this
replica drives (a job whose lease another replica took over stops here; a cancel asked through another
replica is carried out) and adopts jobs whose owner stopped renewing (a crashed replica), resuming them.
A database that does not answer is logged and tried again next beat; jobs keep running meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import socket
import uuid

import structlog

from shared_contracts.errors import StorageError

from .jobs import JobRegistry, JobRunner
from .service import MediaService

__all__ = ["LeaseKeeper", "replica_id"]

_log = structlog.get_logger(component="jobs.leases")


def replica_id() -> str:
    """A name for this process, unique among replicas: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseKeeper:
    """The heartbeat and adoption loop of one replica."""

    def __init__(self, registry: JobRegistry, runner: JobRunner, service: MediaService, *, heartbeat_s: float) -> None:
        self._registry, self._runner, self._service = registry, runner, service
        self._every = heartbeat_s
        self._task: asyncio.Task[None] | None = None
        self._failing: str | None = None

    def start(self) -> None:
        """Begin beating (a fresh context: the loop must not log a request's ids)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="jobs-leases", context=contextvars.Context())

    async def close(self) -> None:
        """Stop beating (before the runner drains, so no job is adopted while shutting down)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def beat(self) -> None:
        """One heartbeat and one adoption sweep."""
        self._runner.apply_lease(await self._registry.heartbeat())
        if not self._runner.draining:
            await self._service.recover(self._registry)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            try:
                await self.beat()
            except StorageError as exc:
                if self._failing != exc.message:
                    _log.error("jobs_heartbeat_failed", error=exc.message)
                self._failing = exc.message
            else:
                if self._failing is not None:
                    _log.info("jobs_heartbeat_recovered")
                self._failing = None
