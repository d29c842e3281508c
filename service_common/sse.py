"""Server-Sent Events framing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse

__all__ = ["SSE_HEADERS", "sse_event", "sse_response"]

# no-transform and X-Accel-Buffering stop proxies from holding events back.
SSE_HEADERS = {"cache-control": "no-cache, no-transform", "x-accel-buffering": "no"}


def sse_event(event: str, data: bytes) -> bytes:
    """One event frame; `data` must be a single line (compact JSON is)."""
    return b"event: " + event.encode("ascii") + b"\ndata: " + data + b"\n\n"


def sse_response(frames: AsyncIterator[bytes], **kwargs: Any) -> StreamingResponse:
    """A `text/event-stream` response over pre-framed events."""
    return StreamingResponse(frames, media_type="text/event-stream", headers=SSE_HEADERS, **kwargs)
