"""The guarded HTTP/1.1 protocol, driven byte by byte over a fake transport; time is passed in, never waited for."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import msgspec
import pytest
import structlog
import structlog.testing
import uvicorn
from uvicorn.server import ServerState

from service_common.protocol import EdgeLimits, EdgeStats, GuardedHttpToolsProtocol, guarded_protocol

LIMITS = EdgeLimits(max_header_bytes=1_024, max_headers=10, header_timeout_s=5, body_timeout_s=7, max_connections=2)
GET = b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n"


class Transport:
    """What the protocol writes, and whether it closed the connection."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def status(self) -> int:
        return int(bytes(self.written).split(b" ", 2)[1])

    def envelope(self) -> Any:
        return msgspec.json.decode(bytes(self.written).split(b"\r\n\r\n", 1)[1])


class App:
    """Reads the whole body (or sees the disconnect), then answers 200 with how many body bytes it got."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        size = 0
        while True:
            message = await receive()
            self.seen.append(message)
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = str(size).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def _connect(app: App, state: ServerState | None = None) -> tuple[GuardedHttpToolsProtocol, Transport, EdgeStats]:
    stats = EdgeStats()
    cls = guarded_protocol(LIMITS, stats)
    config = uvicorn.Config(app, lifespan="off", http=cls, log_level="warning")
    config.load()
    protocol = cls(config, state or ServerState(), {})
    transport = Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport, stats


async def test_keep_alive_requests_are_served_and_the_head_timer_follows_the_turns() -> None:
    app = App()
    protocol, transport, _ = _connect(app)
    assert protocol.deadline < math.inf  # a head is owed from the start
    protocol.data_received(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nab")
    await _settle()
    body_deadline = protocol.deadline
    assert body_deadline < math.inf and transport.written == b""
    protocol.data_received(b"cd")
    assert protocol.deadline == math.inf  # the app's turn: no client deadline while it works
    await _settle()
    assert transport.status() == 200 and transport.written.endswith(b"\r\n\r\n4")
    assert protocol.deadline < math.inf  # idle keep-alive: the next head is owed
    transport.written.clear()
    protocol.data_received(GET)
    await _settle()
    assert transport.status() == 200 and not transport.closed


async def test_a_head_split_over_reads_is_refused_once_past_the_cap() -> None:
    protocol, transport, stats = _connect(App())
    protocol.data_received(b"GET /x HTTP/1.1\r\nHost: t\r\n")
    for _ in range(10):
        protocol.data_received(b"X-Pad: " + b"v" * 100 + b"\r\n")
        if transport.closed:
            break
    assert transport.closed and transport.status() == 431
    assert transport.envelope()["error"] == {"code": "headers_too_large", "message": "request headers exceed "
                                             "1024 bytes", "details": {"limit": 1024}, "request_id": None}
    assert stats.refused == {"headers_too_large": 1}


async def test_a_head_sent_in_one_read_is_measured_before_the_app_runs() -> None:
    app = App()
    protocol, transport, _ = _connect(app)
    protocol.data_received(b"GET /x HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"v" * 1_100 + b"\r\n\r\n")
    await _settle()
    assert transport.status() == 431 and app.scopes == []


async def test_a_head_just_under_the_cap_with_its_body_in_the_same_read_is_served() -> None:
    app = App()
    protocol, transport, _ = _connect(app)
    head = b"POST /x HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"v" * 900 + b"\r\nContent-Length: 3000\r\n\r\n"
    protocol.data_received(head + b"b" * 3000)
    await _settle()
    assert transport.status() == 200 and transport.written.endswith(b"3000")


async def test_too_many_header_lines_are_refused() -> None:
    app = App()
    protocol, transport, stats = _connect(app)
    protocol.data_received(b"GET /x HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(11)) + b"\r\n")
    await _settle()
    assert transport.status() == 431 and transport.envelope()["error"]["details"] == {"limit": 10}
    assert app.scopes == [] and stats.refused == {"too_many_headers": 1}


async def test_trailers_past_the_budget_are_refused() -> None:
    app = App()
    protocol, transport, stats = _connect(app)
    protocol.data_received(b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n")
    await _settle()
    for _ in range(30):
        protocol.data_received(b"X-Trailer: " + b"t" * 100 + b"\r\n")
        if transport.closed:
            break
    await _settle()
    assert transport.closed and transport.status() == 431 and stats.refused == {"headers_too_large": 1}
    assert app.seen[-1] == {"type": "http.disconnect"}
    assert app.scopes[0]["state"]["error_code"] == "headers_too_large"


async def test_many_small_chunks_are_framing_not_header_bytes() -> None:
    app = App()
    protocol, transport, _ = _connect(app)
    protocol.data_received(b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(2_000):  # 2,000 one-byte chunks: ~12 KB of framing for 2 KB of body
        protocol.data_received(b"1\r\nb\r\n")
    protocol.data_received(b"0\r\n\r\n")
    await _settle()
    assert transport.status() == 200 and transport.written.endswith(b"2000")


async def test_a_late_head_gets_408_and_an_idle_connection_is_just_closed() -> None:
    protocol, transport, stats = _connect(App())
    protocol.expire_if_late(protocol.deadline - 0.001)
    assert not transport.closed
    protocol.expire_if_late(protocol.deadline)
    assert transport.closed and transport.written == b"" and stats.refused == {"idle_timeout": 1}

    protocol, transport, stats = _connect(App())
    protocol.data_received(b"GET /x HTTP/1.1\r\nHost: t\r\nX-Slow: ")
    protocol.expire_if_late(protocol.deadline + 1)
    assert transport.closed and transport.status() == 408
    assert transport.envelope()["error"]["code"] == "request_timeout"
    assert stats.refused == {"request_timeout": 1}


async def test_a_late_body_gets_408_and_the_app_sees_its_client_gone() -> None:
    app = App()
    protocol, transport, _ = _connect(app)
    protocol.data_received(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nab")
    await _settle()
    protocol.expire_if_late(protocol.deadline + 1)
    await _settle()
    assert transport.closed and transport.status() == 408
    assert app.seen[-1] == {"type": "http.disconnect"}
    assert app.scopes[0]["state"]["error_code"] == "request_timeout"
    assert transport.written.count(b"HTTP/1.1") == 1  # the app's own answer is dropped


async def test_connections_past_the_cap_are_closed_at_once() -> None:
    state = ServerState()
    opened = [_connect(App(), state) for _ in range(3)]
    assert [transport.closed for _, transport, _ in opened] == [False, False, True]
    assert opened[2][2].refused == {"max_connections": 1}


@pytest.mark.parametrize("limits", [EdgeLimits(), LIMITS])
def test_each_server_gets_its_own_class(limits: EdgeLimits) -> None:
    first, second = guarded_protocol(limits, EdgeStats()), guarded_protocol(limits, EdgeStats())
    assert first is not second and first.stats is not second.stats and first.limits is limits


def test_refusals_are_reported_once_then_counted_afresh() -> None:
    stats = EdgeStats()
    stats.refused["request_timeout"] += 3
    stats.refused["idle_timeout"] += 1
    with structlog.testing.capture_logs() as logs:
        stats.report()
        stats.report()  # nothing new: no line
        stats.refused["idle_timeout"] += 2
        stats.report()  # idle connections closed alone are routine
    assert logs == [
        {"event": "requests_refused_at_edge", "log_level": "warning", "request_timeout": 3, "idle_timeout": 1,
         "component": "http_edge"},
        {"event": "requests_refused_at_edge", "log_level": "debug", "idle_timeout": 2, "component": "http_edge"},
    ]
