"""The shared outbound pieces: SSE framing, retry-after parsing, extras merging."""

from __future__ import annotations

import pytest
from aioresponses import aioresponses

from service_common.client import HttpClient, SseEvent
from service_common.providers.bodies import merge_extra
from service_common.retry import retry_after_seconds
from shared_contracts.errors import GatewayError, UpstreamError

from ._support import in_seconds

URL = "https://api.example.test/stream"


def _never(name: str, status: int, raw: bytes, headers: object) -> GatewayError:
    return UpstreamError(f"{name}: {status}")


async def events(upstream: aioresponses, body: bytes) -> list[SseEvent]:
    upstream.post(URL, body=body, content_type="text/event-stream")
    client = HttpClient("t", on_error=_never, max_connections=1)
    await client.start()
    try:
        return [e async for e in client.post_sse(URL, {}, deadline=in_seconds(5))]
    finally:
        await client.close()


async def test_sse_events_names_comments_and_multiline_data(upstream: aioresponses) -> None:
    body = b": keep-alive\n\nevent: a\ndata: one\ndata: two\n\ndata:no-space\r\n\r\ndata: tail-without-blank-line"
    assert await events(upstream, body) == [
        SseEvent("a", "one\ntwo"),
        SseEvent("message", "no-space"),
        SseEvent("message", "tail-without-blank-line"),
    ]


async def test_non_200_stream_raises_the_mapped_error(upstream: aioresponses) -> None:
    upstream.post(URL, status=503, body=b"busy")
    client = HttpClient("t", on_error=_never, max_connections=1)
    await client.start()
    try:
        with pytest.raises(UpstreamError, match="t: 503"):
            [e async for e in client.post_sse(URL, {}, deadline=in_seconds(5))]
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after-ms": "250", "retry-after": "1"}, 0.25),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # an HTTP date in the past: now
        ({}, None),
    ],
)
def test_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_seconds(headers) == expected


def test_merge_extra_merges_nested_objects_one_level() -> None:
    body = {"model": "m", "generationConfig": {"temperature": 0.1}}
    merged = merge_extra(body, {"generationConfig": {"topK": 4}, "safetySettings": []})
    assert merged == {"model": "m", "generationConfig": {"temperature": 0.1, "topK": 4}, "safetySettings": []}
