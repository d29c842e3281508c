"""The replica's side of a shared job store: renew leases, act on cancels sent elsewhere, adopt orphans.

Runs only with a shared registry (PostgreSQL), on `service_common.postgres.Heartbeat`. Every `heartbeat_s`
it renews the leases of the jobs this replica drives (a job whose lease another replica took over stops
here; a cancel asked through another replica is carried out) and adopts jobs whose owner stopped renewing
(a crashed replica), resuming them. A database that does not answer is logged and tried again next beat.
"""

from __future__ import annotations

from service_common.postgres import Heartbeat

from .jobs import JobRegistry, JobRunner
from .service import MediaService

__all__ = ["LeaseKeeper"]


class LeaseKeeper(Heartbeat):
    """The heartbeat and adoption loop of one replica."""

    def __init__(self, registry: JobRegistry, runner: JobRunner, service: MediaService, *, heartbeat_s: float) -> None:
        super().__init__(self.beat, every_s=heartbeat_s, name="jobs-leases")
        self._registry, self._runner, self._service = registry, runner, service

    async def beat(self) -> None:
        """One heartbeat and one adoption sweep."""
        self._runner.apply_lease(await self._registry.heartbeat())
        if not self._runner.draining:
            await self._service.recover(self._registry)
