"""The local job runner: drives each job's work as a task, lets requests wait, follow or cancel it.

The registry (job_registry.py) holds the snapshots; the runner holds what only this process can: the
running task, a done-event for `wait: true`, and the SSE subscribers.

Two promises hold whatever happens to the disk or the process:
- a job that ends is released here (its slot, its waiters) even when its final snapshot cannot be saved;
  that save is retried until the job store takes it (`storage_error` meanwhile, on `/readyz`);
- on shutdown (`begin_drain`, at SIGTERM) jobs this process cannot finish in the grace time are left to
  the next process exactly as a crash would leave them (durable registry: saved queued or running with
  their ticket, upstream work kept), and whoever waits for them is answered 503 `shutting_down`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog

from shared_contracts.errors import Conflict, GatewayError, NotFound, ShuttingDown, StorageError, UpstreamTimeout
from shared_contracts.media import ImageInfo, Job, JobStatus

from .job_registry import FINAL, JobRegistry, JobTicket, Lease, MemoryJobRegistry

__all__ = ["FINAL", "JobRegistry", "JobRunner", "JobTicket", "Lease", "MemoryJobRegistry", "Work"]

_log = structlog.get_logger(component="jobs")

Work = Callable[[Callable[[JobStatus, float], None]], Awaitable[list[ImageInfo]]]
"""A job's work: called with a progress callback, returns the stored images."""


@dataclass(slots=True)
class _Local:
    job: Job
    task: asyncio.Task[None] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    # Each gets every snapshot; None when the job was left to the next process.
    subscribers: set[asyncio.Queue[Job | None]] = field(default_factory=set)
    cancel_requested: bool = False
    # Set when the service shuts down before the job finished: left to the next process, or failed.
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


def _handed_over(job_id: str) -> ShuttingDown:
    return ShuttingDown(
        f"the media gateway is shutting down; job {job_id} is kept and the restarted gateway finishes it: "
        f"poll GET /api/v1/media/jobs/{job_id}",
        details={"job_id": job_id},
    )


class JobRunner:
    """Runs each job's work as a task under its deadline, and lets requests wait, follow or cancel it."""

    def __init__(
        self,
        registry: JobRegistry,
        *,
        on_final: Callable[[Job], None] | None = None,
        save_retry_s: float = 1.0,
        poll_s: float = 0.5,
        cancel_wait_s: float = 30.0,
    ) -> None:
        self._registry = registry
        # Shared registries: how often a job driven by another replica is read again (events, cancel), and
        # how long a cancel sent to another replica is waited for.
        self._poll_s, self._cancel_wait_s = poll_s, cancel_wait_s
        self._local: dict[str, _Local] = {}
        self._saves: set[asyncio.Task[None]] = set()
        # Told each job's final snapshot once (e.g. to time it in the metrics).
        self._on_final = on_final
        # Final snapshots the job store refused (a full disk), retried every `save_retry_s` until it takes them.
        self._unsaved: dict[str, Job] = {}
        self._save_retry_s = save_retry_s
        self._retry: asyncio.Task[None] | None = None
        # Why the job store refused the last save; None once a save succeeded.
        self.store_error: str | None = None
        # Ids of jobs left to the next process at shutdown (their waiters get `shutting_down`).
        self._handed_over: set[str] = set()
        self._drain: asyncio.Task[None] | None = None

    @property
    def registry(self) -> JobRegistry:
        """Where this runner keeps its jobs."""
        return self._registry

    @property
    def draining(self) -> bool:
        """True once shutdown began: no new job is accepted."""
        return self._drain is not None

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
        if self.draining:
            raise ShuttingDown("the media gateway is shutting down and takes no new jobs; retry shortly")
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

    async def bind(self, job_id: str, instance: str | None, upstream_id: str) -> None:
        """Record where the job's work goes and its id before it is submitted (a refused save fails the job)."""
        await self._registry.bind(job_id, instance=instance, upstream_id=upstream_id)

    def keeps_upstream(self, job_id: str) -> bool:
        """True when the job is being left to the next process: its provider must not release the upstream work."""
        local = self._local.get(job_id)
        return local is not None and local.stopping and self._registry.durable

    async def _record_upstream(self, job_id: str, upstream_id: str) -> None:
        try:
            await self._registry.set_upstream(job_id, upstream_id)
        except StorageError as exc:
            self._refused(exc)
            return
        _log.info("job_upstream_recorded", job_id=job_id)

    async def end(self, job: Job, error: GatewayError) -> Job:
        """Record `job` as failed with `error` without running it (e.g. it cannot be resumed)."""
        final = msgspec.structs.replace(job, status="failed", error=error.to_body(None), finished_at=_now())
        await self._save_final(final)
        if self._on_final is not None:
            self._on_final(final)
        return final

    async def get(self, job_id: str) -> Job:
        """The freshest snapshot: this process's own copy while running (or while unsaved), else the registry's."""
        local = self._local.get(job_id)
        job = local.job if local else self._unsaved.get(job_id) or await self._registry.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}", details={"job_id": job_id})
        return job

    async def wait(self, job_id: str, *, timeout: float) -> Job:
        """The job once final, or its current snapshot when `timeout` passes first.

        A job left to the next process at shutdown raises `ShuttingDown`.
        """
        local = self._local.get(job_id)
        if local is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await local.done.wait()
        if job_id in self._handed_over:
            raise _handed_over(job_id)
        return await self.get(job_id)

    async def follow(self, job_id: str) -> AsyncIterator[Job]:
        """Every snapshot from now on, ending with the final one (`ShuttingDown` if it is left to the next process)."""
        local = self._local.get(job_id)
        if local is None:
            async for stored in self._follow_stored(job_id):
                yield stored
            return
        queue: asyncio.Queue[Job | None] = asyncio.Queue()
        local.subscribers.add(queue)
        try:
            job: Job | None = local.job
            while job is not None:
                yield job
                if job.status in FINAL:
                    return
                job = await queue.get()
            raise _handed_over(job_id)
        finally:
            local.subscribers.discard(queue)

    async def _follow_stored(self, job_id: str) -> AsyncIterator[Job]:
        """Snapshots of a job another replica drives, read every `poll_s` until final (one read otherwise)."""
        job = await self.get(job_id)
        yield job
        while self._registry.shared and job.status not in FINAL:
            await asyncio.sleep(self._poll_s)
            if job_id in self._local:  # adopted here meanwhile: follow the live copy
                async for mine in self.follow(job_id):
                    if mine != job:
                        yield mine
                return
            fresh = await self.get(job_id)
            if fresh != job:
                job = fresh
                yield job

    async def cancel(self, job_id: str) -> Job:
        """Cancel a queued or running job and return it once its provider has released the work.

        A job another replica drives (shared registry) is cancelled by that replica at its next heartbeat
        (or by whoever adopts it); this waits for its final snapshot, at most `cancel_wait_s`.
        """
        local = self._local.get(job_id)
        if local is None and self._registry.shared:
            return await self._cancel_elsewhere(job_id)
        if local is None or local.job.status in FINAL or local.task is None:
            job = await self.get(job_id)
            raise Conflict(f"job {job_id!r} is already {job.status}", details={"job_id": job_id, "status": job.status})
        local.cancel_requested = True
        local.task.cancel()
        await local.done.wait()
        return local.job

    async def _cancel_elsewhere(self, job_id: str) -> Job:
        job = await self.get(job_id)
        if job.status in FINAL or not await self._registry.request_cancel(job_id):
            job = await self.get(job_id)
            raise Conflict(f"job {job_id!r} is already {job.status}", details={"job_id": job_id, "status": job.status})
        _log.info("job_cancel_requested", job_id=job_id)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._cancel_wait_s):
                async for job in self.follow(job_id):
                    if job.status in FINAL:
                        break
        return job

    def apply_lease(self, lease: Lease) -> None:
        """A heartbeat's answer: cancel what clients asked to cancel elsewhere, let go of jobs adopted elsewhere.

        A job this replica no longer owns (its lease ran out, e.g. while the database was unreachable, and
        another replica took it over) stops here without releasing its upstream work: the new owner drives it.
        """
        for job_id in lease.cancel:
            local = self._local.get(job_id)
            if local is not None and local.task is not None and not local.cancel_requested:
                _log.info("job_cancel_received", job_id=job_id)
                local.cancel_requested = True
                local.task.cancel()
        lost = [j for j, local in self._local.items() if j not in lease.owned and local.task is not None]
        for job_id in lost:
            _log.warning("job_lease_lost", job_id=job_id)
        self._stop(lambda job: job.id in lost)

    def begin_drain(self, grace_s: float) -> asyncio.Task[None]:
        """Shutdown begins: take no new jobs, stop queued ones now, give running ones `grace_s`, stop the rest.

        A stopped job is left to the next process when the registry is durable (as after a crash: its
        upstream work is kept and resumed), otherwise it ends `failed` with `shutting_down`. Called again,
        it returns the drain already under way.
        """
        if self._drain is None:
            _log.info("jobs_draining", jobs=len(self._local), grace_s=grace_s, durable=self._registry.durable)
            self._drain = asyncio.create_task(self._drained(grace_s), name="jobs-drain")
        return self._drain

    async def _drained(self, grace_s: float) -> None:
        self._stop(lambda job: job.status != "running")
        running = [local.done.wait() for local in self._local.values() if not local.stopping]
        if running and grace_s > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await asyncio.gather(*running)
        self._stop(lambda job: True)

    async def close(self, *, grace_s: float = 0.0) -> None:
        """On shutdown: drain (see `begin_drain`), wait for every task and save, try unsaved snapshots once more."""
        await self.begin_drain(grace_s)
        tasks = [local.task for local in self._local.values() if local.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*self._saves, return_exceptions=True)
        if self._retry is not None:
            self._retry.cancel()
            await asyncio.gather(self._retry, return_exceptions=True)
        await self._save_unsaved()
        if self._unsaved:
            _log.error("jobs_unsaved_at_exit", jobs=sorted(self._unsaved), error=self.store_error)
        if self._registry.shared and self._handed_over:
            # Another replica adopts them now instead of after their lease runs out.
            try:
                await self._registry.release(self._handed_over)
            except StorageError as exc:
                _log.warning("jobs_release_failed", error=exc.message)

    def _stop(self, which: Callable[[Job], bool]) -> None:
        for local in list(self._local.values()):
            if local.task is not None and not local.stopping and which(local.job):
                local.stopping = True
                local.task.cancel()

    def _background(self, save: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(save)
        self._saves.add(task)
        task.add_done_callback(self._saves.discard)

    def _publish(self, local: _Local, job: Job, *, save: bool = True) -> None:
        local.job = job
        for queue in local.subscribers:
            queue.put_nowait(job)
        # Progress callbacks are synchronous, so saving happens in the background; each save writes the
        # freshest snapshot when it runs, so a late save can never put back an older state.
        if save:
            self._background(self._persist(local))

    async def _persist(self, local: _Local) -> None:
        try:
            await self._registry.save(local.job)
        except StorageError as exc:
            # A lost progress snapshot is harmless; the final one is retried until saved.
            self._refused(exc)
        else:
            self.store_error = None

    def _refused(self, exc: StorageError) -> None:
        if self.store_error != exc.message:
            _log.error("job_store_refused", error=exc.message)
        self.store_error = exc.message

    async def _save_final(self, job: Job) -> None:
        """Save a final snapshot; when the store refuses it, keep it here and retry in the background."""
        try:
            await self._registry.save(job)
        except StorageError as exc:
            self._refused(exc)
            self._unsaved[job.id] = job
            if self._retry is None or self._retry.done():
                self._retry = asyncio.create_task(self._retry_unsaved(), name="jobs-save-retry")
        else:
            self.store_error = None
            self._unsaved.pop(job.id, None)

    async def _save_unsaved(self) -> None:
        for job in list(self._unsaved.values()):
            await self._save_final(job)
            if job.id in self._unsaved:
                return
            _log.info("job_final_saved_late", job_id=job.id, status=job.status)

    async def _retry_unsaved(self) -> None:
        while self._unsaved:
            await asyncio.sleep(self._save_retry_s)
            await self._save_unsaved()

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
                if local.stopping and self._registry.durable:
                    self._hand_over(local)
                    return
                if local.stopping:
                    error = ShuttingDown(
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
            if local.job.id not in self._handed_over:
                await self._finish(local, status, images, error, request_id, latency_s=loop.time() - begun)

    async def _finish(
        self,
        local: _Local,
        status: JobStatus,
        images: list[ImageInfo],
        error: GatewayError | None,
        request_id: str | None,
        *,
        latency_s: float,
    ) -> None:
        final = _final(local.job, status, images, error, request_id, latency_s=latency_s)
        self._publish(local, final, save=False)
        # The task copied the submitting request's context, so this line carries its request and trace ids.
        _log.info("job_finished", job_id=final.id, status=final.status, provider=final.provider,
                  workflow=final.workflow, latency_ms=final.latency_ms,
                  error_code=final.error.code if final.error is not None else None)
        if self._on_final is not None:
            self._on_final(final)
        try:
            await self._save_final(final)
        finally:
            # Released whatever the disk says: the slot, the waiters, this process's copy.
            local.done.set()
            self._local.pop(local.job.id, None)

    def _hand_over(self, local: _Local) -> None:
        """Leave the job to the next process: its saved state stays queued or running, its waiters are told."""
        job_id = local.job.id
        self._handed_over.add(job_id)
        for queue in local.subscribers:
            queue.put_nowait(None)
        _log.info("job_left_for_restart", job_id=job_id, status=local.job.status, progress=local.job.progress)
        local.done.set()
        self._local.pop(job_id, None)
