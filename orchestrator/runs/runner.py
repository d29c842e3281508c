"""The run runner: drives flows for the service, waited or in the background, saving the document as it grows."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

import msgspec
import structlog

from shared_contracts.errors import ErrorBody, StorageError, UpstreamTimeout
from shared_contracts.flows import RunDocument, StepRecord

from .events import RunFeed
from .store import RunStore

if TYPE_CHECKING:
    from orchestrator.flow import P0ProductDetailFlow
    from orchestrator.metrics import FlowMetrics

__all__ = ["OnRestart", "RunRunner"]

_log = structlog.get_logger(component="runs")

# What a new process does with runs a previous one left `running`.
OnRestart = Literal["resume", "fail"]


class RunRunner:
    """Runs flows, waited or in the background; whatever happens, the stored document ends finished."""

    def __init__(
        self,
        flow: P0ProductDetailFlow,
        store: RunStore,
        *,
        metrics: FlowMetrics | None = None,
        feed: RunFeed | None = None,
    ) -> None:
        self.flow = flow
        self.store = store
        self.metrics = metrics
        self.feed = feed if feed is not None else RunFeed()
        # Strong references: asyncio keeps only weak ones to tasks, and a collected task is a lost run.
        self._tasks: set[asyncio.Task[None]] = set()
        # Background runs by id, and those stopped here to be driven elsewhere (shutdown, or a lease lost):
        # their documents stay `running` for the replica (or the next process) that adopts them.
        self._running: dict[str, asyncio.Task[None]] = {}
        self._handed: set[str] = set()
        self._stopping = False
    async def run(self, doc: RunDocument, request_id: str | None, *, timeout_s: float | None = None) -> RunDocument:
        """Run to the end or `timeout_s`; whatever happens, the stored document ends `succeeded` or `failed`.

        A run past its deadline is recorded failed and raises UpstreamTimeout (504) naming the run. Every
        gateway call of the run is bounded by the same deadline and tells the gateway what is left of it.
        """
        deadline = None if timeout_s is None else asyncio.get_running_loop().time() + timeout_s
        try:
            async with asyncio.timeout_at(deadline):
                result = await self.flow.run(
                    doc.product, request_id=request_id, on_update=self.save, document=doc, deadline=deadline
                )
        except TimeoutError:
            err = UpstreamTimeout(
                f"the run did not finish within {timeout_s:g} s", details={"run_id": doc.run_id, "timeout_s": timeout_s}
            )
            await self._fail(doc, err.to_body(request_id))
            raise err from None
        except asyncio.CancelledError:
            if doc.run_id in self._handed:
                _log.info("run_left_for_adoption", run_id=doc.run_id)
                raise
            await self._fail(doc, ErrorBody(code="canceled", message="the orchestrator stopped before the run ended"))
            raise
        except Exception:  # the run's outermost handler: a bug must not leave the run "running" forever
            _log.exception("run_crashed", run_id=doc.run_id)
            await self._fail(doc, ErrorBody(code="internal_error", message="internal error", request_id=request_id))
            return doc
        if self.metrics is not None:
            self.metrics.observe_run(result)
        return result

    async def save(self, doc: RunDocument) -> None:
        """Store the document and wake its followers."""
        await self.store.save(doc)
        self.feed.changed(doc.run_id)

    async def _fail(self, doc: RunDocument, error: ErrorBody) -> None:
        doc.status, doc.error = "failed", error
        # Steps cut off mid-call failed with the run; those never started were skipped.
        for role, record in doc.steps.items():
            if record.status == "running":
                doc.steps[role] = msgspec.structs.replace(record, status="failed", error=error)
            elif record.status == "pending":
                doc.steps[role] = msgspec.structs.replace(record, status="skipped")
        # A step's own call may end at the run's deadline too, a moment before the run: either way it is named.
        doc.failed_step = doc.failed_step or next((r for r, s in doc.steps.items() if s.status == "failed"), None)
        doc.finished_at = doc.finished_at or datetime.now(UTC)
        if doc.duration_ms is None:
            doc.duration_ms = round((doc.finished_at - doc.started_at).total_seconds() * 1000, 1)
        await self.save(doc)

    def start(self, doc: RunDocument, request_id: str | None, *, timeout_s: float | None = None) -> None:
        """Run in the background; `GET /api/v1/runs/{id}` shows the progress."""
        task = asyncio.create_task(self._background(doc, request_id, timeout_s), name=f"run-{doc.run_id}")
        self._tasks.add(task)
        self._running[doc.run_id] = task
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: self._running.pop(doc.run_id, None))

    def _hand_over(self, run_ids: set[str]) -> None:
        """Stop these background runs without ending them: their documents stay `running` for an adopter."""
        for run_id in run_ids:
            task = self._running.get(run_id)
            if task is not None and not task.done():
                self._handed.add(run_id)
                task.cancel()

    async def beat(self, *, on_restart: OnRestart, timeout_s: float) -> None:
        """One heartbeat of a shared store: renew leases, stop runs adopted elsewhere, adopt orphaned runs."""
        owned = await self.store.heartbeat()
        lost = {run_id for run_id in self._running if run_id not in owned}
        for run_id in lost:
            _log.warning("run_lease_lost", run_id=run_id)
        self._hand_over(lost)
        if not self._stopping:
            await self.recover(on_restart=on_restart, timeout_s=timeout_s)

    async def _background(self, doc: RunDocument, request_id: str | None, timeout_s: float | None) -> None:
        # The document already records a timeout; nobody waits for this task's answer.
        with contextlib.suppress(UpstreamTimeout):
            await self.run(doc, request_id, timeout_s=timeout_s)

    async def recover(self, *, on_restart: OnRestart, timeout_s: float) -> list[RunDocument]:
        """Runs a previous process left `running` (it crashed or was killed): each is resumed from its last
        finished step, in the background, or, with `on_restart: fail` or no time left of its deadline
        (`timeout_s` when the document has none), ended `failed` with an error that says why."""
        left_behind = await self.store.adopt()
        now = datetime.now(UTC)
        for doc in left_behind:
            budget = doc.timeout_s or timeout_s
            left = budget - (now - doc.started_at).total_seconds()
            done = [role for role, step in doc.steps.items() if step.status == "succeeded"]
            if on_restart == "fail":
                action = "failed"
                await self._fail(doc, ErrorBody(
                    code="canceled",
                    message="the orchestrator process running this run stopped before it ended; "
                            "runs.on_restart is 'fail', so it was not resumed",
                    details={"finished_steps": done},
                ))
            elif left <= 0:
                action = "expired"
                await self._fail(doc, UpstreamTimeout(
                    f"the run's deadline of {budget:g} s passed while no orchestrator process was running it",
                    details={"run_id": doc.run_id, "timeout_s": budget, "finished_steps": done},
                ).to_body(None))
            else:
                action = "resumed"
                _reset_unfinished(doc, now)
                await self.save(doc)
                self.start(doc, None, timeout_s=left)
            _log.warning("run_recovered", run_id=doc.run_id, action=action, finished_steps=done)
        return left_behind

    async def close(self, *, grace_s: float = 0.0) -> None:
        """Give background runs `grace_s` to finish, then stop the rest without ending them: they stay
        `running`, and another replica (shared store, leases released now) or the next process resumes them."""
        self._stopping = True
        if self._tasks and grace_s > 0:
            await asyncio.wait(list(self._tasks), timeout=grace_s)
        self._hand_over(set(self._running))
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._handed and self.store.shared:
            try:
                await self.store.release(self._handed)
            except StorageError as exc:
                _log.warning("runs_release_failed", error=exc.message)


def _reset_unfinished(doc: RunDocument, now: datetime) -> None:
    """Steps cut off mid-call go back to `pending` (they run again); finished ones stay as they are."""
    for role, step in doc.steps.items():
        if step.status in ("running", "pending"):
            doc.steps[role] = StepRecord(role=step.role, task=step.task, status="pending")
    doc.resumed_at = now
