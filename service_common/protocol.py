"""The HTTP/1.1 connection every service runs on: uvicorn's httptools protocol with limits at the edge.

uvicorn bounds neither a request's head nor how long a client takes to send it. httptools joins header
pieces until a line ends and uvicorn keeps every header, so 4 x 256 MB of header lines grew a worker by a
gigabyte; 20,000 connections that never finish their request were all held. Here, before any app code runs:

- the head (request line + header lines) over `max_header_bytes`, or more than `max_headers` lines, gets
  431 `headers_too_large` and the connection closes (trailers of a chunked body count the same way);
- a head not complete `header_timeout_s` after the connection opened (or the previous answer ended), or a
  body not complete `body_timeout_s` after its head, gets 408 `request_timeout` and the connection closes;
- past `max_connections` open connections, a new one is closed at once.

Refusals are counted in `EdgeStats` and logged as one line per kind and second, so a flood cannot flood
the logs. Per request this costs a few integer updates and two clock reads; the timeouts are checked by
the server's once-a-second tick (`service_common.server`), not by a timer per request.
"""

from __future__ import annotations

import asyncio
import http
import math
import weakref
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httptools
import msgspec
import structlog
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from shared_contracts.errors import ErrorEnvelope, GatewayError, HeadersTooLarge, RequestTimeout

__all__ = ["EdgeLimits", "EdgeStats", "GuardedHttpToolsProtocol", "end_unfinished_response", "guarded_protocol"]

# Each chunk of a chunked body brings a size line ("1000\r\n", maybe extensions) and a CRLF: framing, not
# header bytes. This much per chunk is allowed before framing counts against the trailer budget.
_CHUNK_FRAMING = 64

_log = structlog.get_logger(component="http_edge")
# Where a request's scope keeps a weak reference to uvicorn's cycle answering it (see end_unfinished_response).
_CYCLE = "edge.cycle"


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """What one client may hold at the edge (see the module docstring)."""

    max_header_bytes: int = 16_384
    max_headers: int = 100
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    max_connections: int = 1_024


@dataclass(slots=True)
class EdgeStats:
    """Refusals since the last report, by kind; one per server."""

    refused: Counter[str] = field(default_factory=Counter)

    def report(self) -> None:
        """Log what was refused since the last call (one line), then start counting afresh.

        Idle connections closed alone (a browser's preconnect that never sent a request) are routine: debug.
        """
        if self.refused:
            routine = self.refused.keys() == {"idle_timeout"}
            (_log.debug if routine else _log.warning)("requests_refused_at_edge", **dict(self.refused))
            self.refused.clear()


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing; the protocol answers the refusal it noted."""


@dataclass(frozen=True, slots=True)
class _Refusal:
    kind: str
    code: str
    response: bytes


def _refusal(kind: str, err: GatewayError) -> _Refusal:
    body = msgspec.json.encode(ErrorEnvelope(error=err.to_body(None)))
    head = (
        f"HTTP/1.1 {err.status} {http.HTTPStatus(err.status).phrase}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return _Refusal(kind, err.code, head.encode("ascii") + body)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, counting what a client sends before its request is whole.

    `limits` and `stats` are set on the subclass `guarded_protocol` makes for one server.
    """

    limits: ClassVar[EdgeLimits] = EdgeLimits()
    stats: ClassVar[EdgeStats]
    _too_large: ClassVar[_Refusal]
    _too_many: ClassVar[_Refusal]
    _timed_out: ClassVar[_Refusal]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # When the client must have sent what it owes (a head, a body); inf while the app has the turn.
        self.deadline = math.inf
        self._in_message = False
        self._in_head = False
        # Bytes fed that were not body (head, framing, trailers) since the head or the body began, and
        # how many of them are allowed; counted per read, so the bound holds to within one read.
        self._overhead = 0
        self._allowance = self.limits.max_header_bytes
        self._read = 0
        self._body_in_read = 0
        self._refusal: _Refusal | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self.stats.refused["max_connections"] += 1
            transport.close()
            return
        self.deadline = self.loop.time() + self.limits.header_timeout_s

    def data_received(self, data: bytes) -> None:
        # uvicorn's own data_received, plus the refusals and the byte count.
        self._unset_keepalive_if_required()
        self._read = len(data)
        self._body_in_read = 0
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._refuse(self._refusal)
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        self._overhead += len(data) - self._body_in_read
        if self._overhead > self._allowance:
            self._refuse(self._too_large)

    # The callbacks below run for every request: they call the base class directly (cheaper than super())
    # and do only integer work; the head's lines are counted and sized once, when it is complete.

    def on_message_begin(self) -> None:
        HttpToolsProtocol.on_message_begin(self)
        self._in_message = self._in_head = True
        self._overhead = 0
        self._allowance = self.limits.max_header_bytes
        if self.deadline == math.inf:
            # A pipelined request, sent while the previous one was answered: its head is owed from now.
            self.deadline = self.loop.time() + self.limits.header_timeout_s

    def on_headers_complete(self) -> None:
        limits = self.limits
        if len(self.headers) > limits.max_headers:
            self._refusal = self._too_many
            raise _Refused
        # The head is at most what came before this read plus this read; only when that bound is over the
        # cap (a head sent at once, or with its body) is it measured, before uvicorn starts the app on it.
        if self._overhead + self._read > limits.max_header_bytes and self._head_size() > limits.max_header_bytes:
            self._refusal = self._too_large
            raise _Refused
        self._in_head = False
        # From here the bytes that are not body are chunk framing and trailers.
        self._overhead = 0
        self._allowance = 2 * limits.max_header_bytes
        self.deadline = self.loop.time() + limits.body_timeout_s
        HttpToolsProtocol.on_headers_complete(self)
        if self.cycle is not None:
            self.scope.setdefault("state", {})[_CYCLE] = weakref.ref(self.cycle)

    def _head_size(self) -> int:
        # Request target and header lines as parsed ("name: value" and CRLF); method and version left out.
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def on_body(self, body: bytes) -> None:
        self._body_in_read += len(body)
        HttpToolsProtocol.on_body(self, body)

    def on_chunk_header(self) -> None:
        self._allowance += _CHUNK_FRAMING

    def on_message_complete(self) -> None:
        self._in_message = False
        cycle = self.cycle
        # Answered before the body ended (a 401, a 413): the connection is idle now, and owes the next head.
        if cycle is not None and cycle.response_complete:
            self.deadline = self.loop.time() + self.limits.header_timeout_s
        else:
            self.deadline = math.inf
        HttpToolsProtocol.on_message_complete(self)

    def on_response_complete(self) -> None:
        HttpToolsProtocol.on_response_complete(self)
        if not self._in_message and not self.transport.is_closing():
            self.deadline = self.loop.time() + self.limits.header_timeout_s

    def expire_if_late(self, now: float) -> None:
        """Close the connection when what the client owes is overdue (called once a second by the server)."""
        if now < self.deadline:
            return
        self.deadline = math.inf
        if self.transport is None or self.transport.is_closing():
            return
        if self._in_message:
            self._refuse(self._timed_out)
        else:
            # Nothing of a request arrived: an idle connection, closed without a word (as keep-alive does).
            self.stats.refused["idle_timeout"] += 1
            self.transport.close()

    def _refuse(self, refusal: _Refusal) -> None:
        self.stats.refused[refusal.kind] += 1
        self._refusal = None
        self.deadline = math.inf
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if self._in_head or not self._in_message:
            # This request has no app yet; answer unless an earlier (pipelined) one is still being answered.
            writable = (cycle is None or cycle.response_complete) and not self.pipeline
        else:
            # The app runs on this request and waits for its body (or trailers).
            writable = cycle is not None and not cycle.response_started and not self.pipeline
            if cycle is not None and not cycle.response_complete:
                # Its reads now end with `http.disconnect` and its writes are dropped; the metrics count it
                # under this code (see service_common.http's ClientDisconnect handler).
                cycle.scope["state"]["error_code"] = refusal.code
                cycle.disconnected = True
                cycle.message_event.set()
        if writable:
            self.transport.write(refusal.response)
        self.transport.close()


def end_unfinished_response(scope: Mapping[str, Any]) -> None:
    """Close the connection of a response the app gives up on (a stream cut at its deadline), quietly.

    uvicorn logs `ASGI callable returned without completing response` at ERROR for an app that returns
    mid-response, though the app already logged why (`stream_cut`). Marked as disconnected, the cycle drops
    later writes and reports nothing; the connection is closed as uvicorn would have. Outside this protocol
    (another server, a test client) nothing happens here and the server does what it does.
    """
    state = scope.get("state")
    ref = state.get(_CYCLE) if isinstance(state, Mapping) else None
    cycle = ref() if isinstance(ref, weakref.ref) else None
    if cycle is None or cycle.response_complete:
        return
    cycle.disconnected = True
    cycle.transport.close()


def guarded_protocol(limits: EdgeLimits, stats: EdgeStats) -> type[GuardedHttpToolsProtocol]:
    """A protocol class for one server, with its limits, its canned refusals and its counters."""
    too_large = HeadersTooLarge(
        f"request headers exceed {limits.max_header_bytes} bytes", details={"limit": limits.max_header_bytes}
    )
    too_many = HeadersTooLarge(
        f"more than {limits.max_headers} request header lines", details={"limit": limits.max_headers}
    )
    timed_out = RequestTimeout(
        f"request not received in time (headers within {limits.header_timeout_s:g} s, "
        f"the body within {limits.body_timeout_s:g} s of them)",
        details={"header_timeout_s": limits.header_timeout_s, "body_timeout_s": limits.body_timeout_s},
    )
    attributes: dict[str, Any] = {
        "limits": limits,
        "stats": stats,
        "_too_large": _refusal("headers_too_large", too_large),
        "_too_many": _refusal("too_many_headers", too_many),
        "_timed_out": _refusal("request_timeout", timed_out),
    }
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), attributes)
