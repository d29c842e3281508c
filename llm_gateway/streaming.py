"""Sending a stream to a client within the call's deadline.

A client that stops reading makes every write wait (its socket buffers are full), and the generation
behind the stream holds its provider's limiter slot (and maybe the breaker's half-open probe) meanwhile.
So each write may wait only until the deadline: then the stream is cut, the connection closed, and the
generation closed at the piece it had reached, which frees the slot and tells the breaker nothing (see
`guards.py`). A write that does not have to wait goes through even after the deadline, so the error event
of a call that timed out still reaches a client that reads. A client that goes away is noticed by Starlette,
which cancels the stream; the generation is closed the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import TypeVar

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from service_common.protocol import end_unfinished_response
from service_common.sse import SSE_HEADERS

__all__ = ["DeadlineStream", "first_item", "resumed"]

T = TypeVar("T")


async def first_item(stream: AsyncIterator[T]) -> T:
    """The stream's first item, awaited before any byte of the response is sent.

    So a failure before the first piece (no route, a refused schema, an upstream that times out or answers an
    error) is an ordinary HTTP error with its own status, never a 200 whose first event is the error.
    """
    return await anext(stream)


async def resumed(first: T, rest: AsyncIterator[T], *, more: bool) -> AsyncGenerator[T, None]:
    """`first` (taken by `first_item`), then, when `more`, the rest of the stream."""
    yield first
    if more:
        async for item in rest:
            yield item


class DeadlineStream(StreamingResponse):
    """A `text/event-stream` response whose writes end at `deadline` (a `loop.time()`); `on_cut()` runs when one did.

    `frames` is closed when the response ends, however it ends (its `finally` blocks release what it holds).
    """

    def __init__(
        self,
        frames: AsyncGenerator[bytes, None],
        *,
        deadline: float,
        on_cut: Callable[[], None],
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(frames, media_type="text/event-stream", headers={**SSE_HEADERS, **(headers or {})})
        self._frames = frames
        self._deadline = deadline
        self._on_cut = on_cut
        self._scope: Scope = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._scope = scope
        await super().__call__(scope, receive, send)

    async def stream_response(self, send: Send) -> None:
        deadline = self._deadline

        async def bounded(message: Message) -> None:
            # Only a client that does not read makes a write wait; that wait ends at the deadline.
            async with asyncio.timeout_at(deadline):
                await send(message)

        try:
            await super().stream_response(bounded)
        except TimeoutError:
            # The connection is closed without the rest; our log line (on_cut) is the only one about it.
            end_unfinished_response(self._scope)
            self._on_cut()
        finally:
            # Shielded: when the client went away this task is being cancelled, and the close must still run.
            with anyio.CancelScope(shield=True):
                await self._frames.aclose()
