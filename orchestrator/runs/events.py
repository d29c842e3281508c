"""Run events for followers (`GET /api/v1/runs/{run_id}/events`): derived from the stored document, so a
follower that connects late, reconnects, or watches a run another process drives sees the same events.

Events: `step_started` and `step_finished` (data: StepEvent), then `run_finished` (data: RunFinishedEvent),
after which the stream ends. A new connection first replays the events of what already happened.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import msgspec

from service_common.sse import sse_event
from shared_contracts.errors import NotFound
from shared_contracts.flows import RunDocument, RunEventType, RunFinishedEvent, StepEvent, StepRecord

from .store import RunStore

__all__ = ["RunFeed", "events_between", "run_event_stream"]

_FINISHED = ("succeeded", "failed", "skipped")
_encode = msgspec.json.Encoder().encode
# An SSE comment: keeps proxies from closing an idle stream, and tells a dead client from a live one.
_KEEP_ALIVE = b": keep-alive\n\n"

RunEvent = tuple[RunEventType, StepEvent | RunFinishedEvent]


class RunFeed:
    """Wakes the followers of a run when this process saves its document (others poll the store)."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}

    def changed(self, run_id: str) -> None:
        """The run's document was saved."""
        for event in self._waiters.get(run_id, ()):
            event.set()

    @contextlib.contextmanager
    def watch(self, run_id: str) -> Iterator[asyncio.Event]:
        """An event set on every change of the run while the block runs."""
        event = asyncio.Event()
        self._waiters.setdefault(run_id, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(run_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[run_id]


def _started(step: StepRecord) -> StepRecord:
    # As the step looked when it started, whatever it became since (a late follower replays the start too).
    return StepRecord(role=step.role, task=step.task, status="running", started_at=step.started_at)


def events_between(seen: RunDocument | None, now: RunDocument) -> list[RunEvent]:
    """The events that take a follower from `seen` (None: nothing yet) to `now`, in flow order."""
    events: list[RunEvent] = []
    for role, step in now.steps.items():
        before = seen.steps.get(role) if seen is not None else None
        # A step started again (a resumed run) has a new start time: it starts again for followers too.
        if step.started_at is not None and (before is None or before.started_at != step.started_at):
            events.append(("step_started", StepEvent(run_id=now.run_id, step=_started(step))))
        if step.status in _FINISHED and (
            before is None or before.status not in _FINISHED or before.finished_at != step.finished_at
        ):
            events.append(("step_finished", StepEvent(run_id=now.run_id, step=step)))
    if now.status != "running" and (seen is None or seen.status == "running"):
        finished = RunFinishedEvent(
            run_id=now.run_id, status=now.status, mode=now.mode, duration_ms=now.duration_ms,
            failed_step=now.failed_step, error=now.error,
        )
        events.append(("run_finished", finished))
    return events


async def run_event_stream(
    store: RunStore, feed: RunFeed, run_id: str, *, poll_s: float, max_s: float
) -> AsyncIterator[bytes]:
    """SSE frames for one run until `run_finished` (or `max_s`, after which a client may reconnect).

    Woken by this process's saves; every `poll_s` without one it reads the store again (a run driven by
    another process) and sends a keep-alive comment.
    """
    loop = asyncio.get_running_loop()
    end = loop.time() + max_s
    seen: RunDocument | None = None
    with feed.watch(run_id) as changed:
        # Read after watching, so no save between the two is missed.
        doc = await store.get(run_id)
        while True:
            for name, data in events_between(seen, doc):
                yield sse_event(name, _encode(data))
            seen = doc
            if doc.status != "running" or loop.time() >= end:
                return
            try:
                async with asyncio.timeout(min(poll_s, max(0.0, end - loop.time()))):
                    await changed.wait()
            except TimeoutError:
                yield _KEEP_ALIVE
            changed.clear()
            try:
                doc = await store.get(run_id)
            except NotFound:
                return  # removed while followed: nothing more will happen to it
