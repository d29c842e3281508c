"""Jobs: a registry interface with an in-memory default, and the local runner that drives them.

The registry holds Job snapshots (what a shared backend would store) and, for a durable registry, each
unfinished job's ticket: what a restarted gateway needs to resume it. The runner holds what only this
process can: the running task, a done-event for `wait: true`, and the SSE subscribers.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog

from shared_contracts.errors import Conflict, GatewayError, NotFound, ProviderUnavailable, UpstreamTimeout
from shared_contracts.media import ImageInfo, Job, JobStatus

__all__ = ["FINAL", "JobRegistry", "JobRunner", "JobTicket", "MemoryJobRegistry", "Work"]

_log = structlog.get_logger(component="jobs")

FINAL: frozenset[JobStatus] = frozenset({"succeeded", "failed", "canceled"})

Work = Callable[[Callable[[JobStatus, float], None]], Awaitable[list[ImageInfo]]]
"""A job's work: called with a progress callback, returns the stored images."""


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
    """

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


@dataclass(slots=True)
class _Local:
    job: Job
    task: asyncio.Task[None] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    subscribers: set[asyncio.Queue[Job]] = field(default_factory=set)
    cancel_requested: bool = False
    # Set when the service shuts down: the job ends `failed` with a clear error instead of `canceled`.
    stopping: bool = False


def _now() -> datetime:
    return datetime.now(UTC)


def _final(
    job: Job,
    status: JobStatus,
    images: list[ImageInfo],
    error: GatewayError | None,
    request_id: str | None,
    *,
    latency_s: float,
) -> Job:
    """The job's last snapshot: its outcome, images or error, and timing."""
    finished = _now()
    return msgspec.structs.replace(
        job,
        status=status,
        progress=1.0 if status == "succeeded" else job.progress,
        images=images,
        error=error.to_body(request_id) if error is not None else None,
        started_at=job.started_at or (finished if status == "succeeded" else None),
        finished_at=finished,
        latency_ms=round(latency_s * 1000, 1),
    )


class JobRunner:
    """Runs each job's work as a task under its deadline, and lets requests wait, follow or cancel it."""

    def __init__(self, registry: JobRegistry, *, on_final: Callable[[Job], None] | None = None) -> None:
        self._registry = registry
        self._local: dict[str, _Local] = {}
        self._saves: set[asyncio.Task[None]] = set()
        # Told each job's final snapshot once (e.g. to time it in the metrics).
        self._on_final = on_final

    def active(self) -> list[Job]:
        """Snapshots of the jobs this process is running or holding in its queue."""
        return [local.job for local in self._local.values()]

    async def start(
        self,
        job: Job,
        work: Work,
        *,
        deadline: float,
        request_id: str | None = None,
        ticket: JobTicket | None = None,
    ) -> None:
        """Record `job` (and its `ticket`) and start its work; `deadline` is a `loop.time()` covering it all."""
        local = _Local(job=job)
        self._local[job.id] = local
        try:
            await self._registry.save(job)
            if ticket is not None:
                await self._registry.track(job.id, ticket)
        except BaseException:
            self._local.pop(job.id, None)
            raise
        local.task = asyncio.create_task(self._drive(local, work, deadline, request_id), name=f"job-{job.id}")

    def note_upstream(self, job_id: str, upstream_id: str) -> None:
        """Record (in the background) the upstream's id for a job, so a restart resumes it instead of resubmitting."""
        self._background(self._record_upstream(job_id, upstream_id))

    async def _record_upstream(self, job_id: str, upstream_id: str) -> None:
        await self._registry.set_upstream(job_id, upstream_id)
        _log.info("job_upstream_recorded", job_id=job_id)

    async def end(self, job: Job, error: GatewayError) -> Job:
        """Record `job` as failed with `error` without running it (e.g. it cannot be resumed)."""
        final = msgspec.structs.replace(job, status="failed", error=error.to_body(None), finished_at=_now())
        await self._registry.save(final)
        if self._on_final is not None:
            self._on_final(final)
        return final

    async def get(self, job_id: str) -> Job:
        """The freshest snapshot: this process's own copy while running, else the registry's."""
        local = self._local.get(job_id)
        job = local.job if local else await self._registry.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}", details={"job_id": job_id})
        return job

    async def wait(self, job_id: str, *, timeout: float) -> Job:
        """The job once final, or its current snapshot when `timeout` passes first."""
        local = self._local.get(job_id)
        if local is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await local.done.wait()
        return await self.get(job_id)

    async def follow(self, job_id: str) -> AsyncIterator[Job]:
        """Every snapshot from now on, ending with the final one."""
        local = self._local.get(job_id)
        if local is None:
            yield await self.get(job_id)
            return
        queue: asyncio.Queue[Job] = asyncio.Queue()
        local.subscribers.add(queue)
        try:
            job = local.job
            yield job
            while job.status not in FINAL:
                job = await queue.get()
                yield job
        finally:
            local.subscribers.discard(queue)

    async def cancel(self, job_id: str) -> Job:
        """Cancel a queued or running job and return it once its provider has released the work."""
        local = self._local.get(job_id)
        if local is None or local.job.status in FINAL or local.task is None:
            job = await self.get(job_id)
            raise Conflict(f"job {job_id!r} is already {job.status}", details={"job_id": job_id, "status": job.status})
        local.cancel_requested = True
        local.task.cancel()
        await local.done.wait()
        return local.job

    async def close(self, *, grace_s: float = 0.0) -> None:
        """On shutdown: end queued jobs now, give running ones `grace_s` to finish, then end the rest.

        Ended jobs are `failed` with `provider_unavailable` ("submit it again"); their providers release
        any upstream work (ComfyUI: the prompt is deleted from its queue or interrupted).
        """
        tasks = [local.task for local in self._local.values() if local.task is not None]
        self._stop(lambda job: job.status != "running")
        running = [local.done.wait() for local in self._local.values() if not local.stopping]
        if running and grace_s > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await asyncio.gather(*running)
        self._stop(lambda job: True)
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*self._saves, return_exceptions=True)

    def _stop(self, which: Callable[[Job], bool]) -> None:
        for local in list(self._local.values()):
            if local.task is not None and not local.stopping and which(local.job):
                local.stopping = True
                local.task.cancel()

    def _background(self, save: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(save)
        self._saves.add(task)
        task.add_done_callback(self._saves.discard)

    def _publish(self, local: _Local, job: Job) -> None:
        local.job = job
        for queue in local.subscribers:
            queue.put_nowait(job)
        # Progress callbacks are synchronous, so saving happens in the background; each save writes the
        # freshest snapshot when it runs, so a late save can never put back an older state.
        self._background(self._persist(local))

    async def _persist(self, local: _Local) -> None:
        await self._registry.save(local.job)

    async def _drive(self, local: _Local, work: Work, deadline: float, request_id: str | None) -> None:
        loop = asyncio.get_running_loop()
        begun = loop.time()

        def progress(status: JobStatus, fraction: float) -> None:
            job = local.job
            if job.status in FINAL:
                return
            value = round(min(1.0, max(job.progress, fraction)), 4)
            started = job.started_at or (_now() if status == "running" else None)
            if status == job.status and value == job.progress:
                return
            self._publish(local, msgspec.structs.replace(job, status=status, progress=value, started_at=started))

        status: JobStatus = "failed"
        images: list[ImageInfo] = []
        error: GatewayError | None = None
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    images = await work(progress)
                status = "succeeded"
            except TimeoutError:
                error = UpstreamTimeout(
                    f"the job did not finish within {deadline - begun:.1f} s", details={"job_id": local.job.id}
                )
            except GatewayError as exc:
                error = exc
                error.details.setdefault("job_id", local.job.id)
            except asyncio.CancelledError:
                if local.stopping:
                    error = ProviderUnavailable(
                        "the media gateway shut down before this job finished; submit it again",
                        details={"job_id": local.job.id},
                    )
                else:
                    status = "canceled"
                    if not local.cancel_requested:
                        raise
            except Exception as exc:  # noqa: BLE001 - a background task's outermost handler: the job must end
                _log.error("job_crashed", job_id=local.job.id, exc_info=exc)
                error = GatewayError("internal error while rendering", details={"job_id": local.job.id})
        finally:
            final = _final(local.job, status, images, error, request_id, latency_s=loop.time() - begun)
            self._publish(local, final)
            # The task copied the submitting request's context, so this line carries its request and trace ids.
            _log.info("job_finished", job_id=final.id, status=final.status, provider=final.provider,
                      workflow=final.workflow, latency_ms=final.latency_ms,
                      error_code=final.error.code if final.error is not None else None)
            if self._on_final is not None:
                self._on_final(final)
            await self._persist(local)
            local.done.set()
            self._local.pop(local.job.id, None)
