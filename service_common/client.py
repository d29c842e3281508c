"""The one outbound-HTTP edge: every call to an upstream or to another of our services goes through an HttpClient.

It owns, in one place:
- the pooled `aiohttp.ClientSession` of one upstream, opened by `start()` in the lifespan and closed by
  `close()`; nothing else in the code base creates a session;
- deadlines: every call takes an absolute `deadline` (a `loop.time()`) and nothing waits past it;
- transport failures mapped onto the error tree: the deadline → `upstream_timeout`, a connection refused
  or dropped → `provider_unavailable`, a body cut off or a broken answer → `upstream_error`;
- error statuses mapped by an `ErrorMapper` (a vendor's, or `status_error`), `Retry-After` read once;
- retries of a whole call under a `RetryPolicy` (`call(..., retry=...)`), inside the deadline;
- outbound headers: `X-Request-ID` and `traceparent` of the request being handled, and `X-Request-Timeout`
  with what is left of the budget a peer service is given;
- stale pooled connections: a request whose very first write finds its connection already closing (the
  server closed it after the previous answer while still advertising keep-alive, as some local inference
  servers do after every streamed answer) reached nobody, so it is sent once more on a fresh connection.
  A `replayable` client (its requests have no side effects, e.g. a generation) also resends once when the
  connection drops before any answer, as aiohttp does for idempotent methods (RFC 9110 §9.2.2). A resend
  is neither a retry attempt nor an upstream failure.

    client = HttpClient("local-llm", base_url="http://127.0.0.1:11434", on_error=vendor_error)
    await client.start()
    reply = await client.call("POST", "/api/chat", body=raw, deadline=loop.time() + 30)
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NamedTuple

import aiohttp
import msgspec

from shared_contracts.errors import (
    GatewayError,
    ProviderUnavailable,
    RateLimited,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnauthorized,
)

from .deadline import TIMEOUT_HEADER, timeout_header_value
from .retry import RetryPolicy, retry_after_seconds
from .tracing import outbound_headers

__all__ = [
    "NOT_STARTED",
    "ErrorMapper",
    "HttpClient",
    "Reply",
    "Sleep",
    "SseEvent",
    "Stream",
    "status_error",
]

ErrorMapper = Callable[[str, int, bytes, Mapping[str, str]], GatewayError]
"""`(client name, HTTP status, raw body, response headers) -> the error to raise` for a non-2xx answer."""
Sleep = Callable[[float], Awaitable[None]]

_JSON = "application/json"
_ACCEPT_SSE = {"accept": "text/event-stream"}
_JSON_BODY: Mapping[str, str] = {"content-type": _JSON}
_NO_HEADERS: Mapping[str, str] = {}
# The statuses a peer service answers when it did not start the work, so a retry cannot do it twice.
NOT_STARTED = frozenset({429, 503})
_encode = msgspec.json.Encoder().encode


# Read-only by convention: a frozen dataclass sets each field through object.__setattr__, one per call.
@dataclass(slots=True)
class Reply:
    """A whole answer: status, headers (case-insensitive) and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def ok(self) -> bool:
        """A 2xx status."""
        return 200 <= self.status < 300

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased; empty when absent."""
        return self.headers.get("content-type", "").partition(";")[0].strip().lower()


class SseEvent(NamedTuple):
    """One Server-Sent Event: its `event:` name (`message` when absent) and its joined `data:` lines."""

    event: str
    data: str


def status_error(name: str, status: int, raw: bytes, headers: Mapping[str, str]) -> GatewayError:
    """The default mapping of an error status: 401/403 credentials, 429 rate limit, 408/409/5xx retryable,
    any other 4xx a rejection of this very request."""
    details = {"provider": name, "status": status, "body": raw[:300].decode("utf-8", "replace")}
    if status in (401, 403):
        return UpstreamUnauthorized(f"{name}: the upstream refused our credentials", details=details)
    if status == 429:
        return RateLimited(f"{name} answered 429", details=details, retry_after=retry_after_seconds(headers))
    if status in (408, 409) or status >= 500:
        return UpstreamError(f"{name} answered {status}", details=details, retry_after=retry_after_seconds(headers))
    return UpstreamRejected(f"{name} answered {status}", details=details)


def _unanswered(exc: aiohttp.ClientConnectionError) -> bool:
    # Dropped before any answer came back: the server may or may not have read the request.
    return isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError) and not isinstance(
        exc, aiohttp.ClientConnectorError
    )


def _nothing_sent(exc: BaseException) -> bool:
    # aiohttp buffers the head and writes it with the body; a connection already closing refuses that first
    # write, so not one byte left. (A drop after a write, or a timeout, may have reached the server.)
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, aiohttp.ClientConnectionResetError) and "closing transport" in str(cause):
            return True
        cause = cause.__cause__
    return False


class _Bounded:
    """`async with client._bounded(deadline, started)`: the deadline on the block, transport errors mapped.

    A plain class rather than a generator context manager: it wraps every outbound read.
    """

    __slots__ = ("_client", "_deadline", "_started", "_timeout")

    def __init__(self, client: HttpClient, deadline: float, started: float) -> None:
        self._client = client
        self._deadline = deadline
        self._started = started
        self._timeout = asyncio.timeout_at(deadline)

    async def __aenter__(self) -> None:
        await self._timeout.__aenter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            # Turns the cancel of an expired deadline into TimeoutError.
            await self._timeout.__aexit__(exc_type, exc, tb)
        except TimeoutError as expired:
            exc = expired
        if exc is None:
            return
        # What the caller allowed this call, for a timeout's details.
        error = self._client.transport_error(exc, round(self._deadline - self._started, 3))
        if error is not None:
            raise error from exc


class HttpClient:
    """One upstream (a provider or a peer service): one pooled session, every call bounded by a deadline.

    `headers` go on every request (they may carry a key: they stay inside the session, and `secret` is
    scrubbed from error messages in case an upstream echoes it). `details` is put on every error raised
    (default `{"provider": name}`). With `propagate_context`, calls carry the current request's
    `X-Request-ID` and `traceparent`. `replayable` says a request may safely reach the server twice.
    """

    def __init__(
        self,
        name: str,
        *,
        base_url: str = "",
        headers: Mapping[str, str] | None = None,
        on_error: ErrorMapper = status_error,
        details: Mapping[str, Any] | None = None,
        max_connections: int = 100,
        connect_timeout: float | None = None,
        secret: str = "",
        propagate_context: bool = False,
        replayable: bool = False,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._headers = dict(headers or {})
        self._on_error = on_error
        self.details: dict[str, Any] = dict(details) if details is not None else {"provider": name}
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout
        self._secret = secret
        self._propagate = propagate_context
        self._replayable = replayable
        self._sleep = sleep
        # Jitter needs no secrecy; tests pass a seeded Random.
        self._rng = rng or random.Random()
        self._session: aiohttp.ClientSession | None = None
        self._fresh: aiohttp.ClientSession | None = None

    # ---- lifecycle
    def _new_session(self, *, force_close: bool = False) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._max_connections, force_close=force_close),
            headers=self._headers,
            # Deadlines come per call; aiohttp's 300 s total default is switched off, connecting has its own cap.
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout),
        )

    async def start(self) -> None:
        """Open the pooled session; a second call keeps the open one."""
        if self._session is None:
            self._session = self._new_session()

    async def close(self) -> None:
        """Close the sessions; safe to call twice."""
        for session in (self._session, self._fresh):
            if session is not None:
                await session.close()
        self._session = self._fresh = None

    @property
    def started(self) -> bool:
        """Whether `start()` has run (and `close()` has not)."""
        return self._session is not None

    def _pool(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise ProviderUnavailable(f"{self.name}: not started", details=self.details)
        return self._session

    # ---- errors
    def transport_error(self, exc: BaseException | None, allowed_s: float) -> GatewayError | None:
        """The gateway error for a transport failure (None for anything else, which propagates as it is).

        `allowed_s` is how long the call was given, reported with a timeout.
        """
        if isinstance(exc, TimeoutError):
            return UpstreamTimeout(
                f"{self.name}: no answer within {allowed_s:g} s", details={**self.details, "timeout_s": allowed_s}
            )
        if isinstance(exc, aiohttp.ClientPayloadError):
            return UpstreamError(f"{self.name}: the answer broke off", details=dict(self.details))
        if isinstance(exc, aiohttp.ClientConnectionError):
            return ProviderUnavailable(f"{self.name}: {type(exc).__name__}", details={
                **self.details, "error": type(exc).__name__,
            })
        if isinstance(exc, aiohttp.ClientError):
            return UpstreamError(f"{self.name}: {type(exc).__name__}", details={
                **self.details, "error": type(exc).__name__,
            })
        return None

    def error(self, status: int, raw: bytes, headers: Mapping[str, str] = _NO_HEADERS) -> GatewayError:
        """The mapped error for an error status (or an error body that arrived inside a 200 stream)."""
        err = self._on_error(self.name, status, raw, headers)
        if self._secret and self._secret in err.message:
            scrubbed = err.message.replace(self._secret, "***")
            err = type(err)(scrubbed, details=err.details, retry_after=err.retry_after)
        return err

    def _bounded(self, deadline: float, started: float) -> _Bounded:
        return _Bounded(self, deadline, started)

    # ---- requests
    def url(self, path: str) -> str:
        """`path` under `base_url`; an absolute URL is kept as it is."""
        return path if "://" in path else self.base_url + path

    def _request_headers(
        self, body: bytes | None, headers: Mapping[str, str] | None, request_id: str | None, budget: float | None
    ) -> Mapping[str, str]:
        if body is not None and not (self._propagate or headers or request_id or budget is not None):
            return _JSON_BODY  # the common call of a provider: nothing but the body's type
        sent = outbound_headers() if self._propagate else {}
        if body is not None:
            sent["content-type"] = _JSON
        if request_id:
            sent["x-request-id"] = request_id
        if budget is not None:
            sent[TIMEOUT_HEADER] = timeout_header_value(budget)
        if headers:
            sent.update(headers)
        return sent

    async def _send(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
    ) -> aiohttp.ClientResponse:
        try:
            return await self._pool().request(method, url, data=body, headers=headers, params=params)
        except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
            if not (_nothing_sent(exc) or (self._replayable and _unanswered(exc))):
                raise
        # The pooled connection was stale: once more, on a new connection.
        if self._fresh is None:
            self._fresh = self._new_session(force_close=True)
        return await self._fresh.request(method, url, data=body, headers=headers, params=params)

    async def request(
        self,
        method: str,
        path: str,
        *,
        deadline: float,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        request_id: str | None = None,
        budget: float | None = None,
    ) -> Reply:
        """Send once and read the whole answer, whatever its status; transport failures raise mapped errors.

        `budget` (a `loop.time()`) is sent as `X-Request-Timeout`: the time a peer service is given.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        if started >= deadline:
            # A deadline already past would only be noticed at the first wait; nothing is sent.
            raise UpstreamTimeout(
                f"{self.name}: the deadline passed before the call", details={**self.details, "timeout_s": 0}
            )
        sent = self._request_headers(body, headers, request_id, budget)
        async with self._bounded(deadline, started):
            async with await self._send(method, self.url(path), body, sent, params) as resp:
                raw = await resp.read()
                return Reply(resp.status, resp.headers, raw)

    async def call(
        self,
        method: str,
        path: str,
        *,
        deadline: float,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        request_id: str | None = None,
        budget: float | None = None,
        retry: RetryPolicy | None = None,
        retry_statuses: frozenset[int] = NOT_STARTED,
    ) -> Reply:
        """A 2xx reply, or the mapped error. With `retry`, an answer in `retry_statuses` is tried again as the
        policy allows (honouring `Retry-After`), never past the deadline."""
        attempt = 0
        while True:
            attempt += 1
            reply = await self.request(
                method, path, deadline=deadline, body=body, headers=headers, params=params,
                request_id=request_id, budget=budget,
            )
            if reply.ok:
                return reply
            err = self.error(reply.status, reply.body, reply.headers)
            if retry is None or reply.status not in retry_statuses:
                raise err
            left = deadline - asyncio.get_running_loop().time()
            wait = retry.delay(attempt, retry_after=err.retry_after, left=left, rng=self._rng)
            if wait is None:
                raise err
            await self._sleep(wait)

    async def post_json(self, path: str, payload: Any, *, deadline: float) -> bytes:
        """POST `payload` encoded as JSON; the raw 2xx body, or the mapped error."""
        return (await self.call("POST", path, body=_encode(payload), deadline=deadline)).body

    async def post_sse(self, path: str, payload: Any, *, deadline: float) -> AsyncIterator[SseEvent]:
        """POST `payload` as JSON and yield the answer's Server-Sent Events; an error status raises its mapped error."""
        async with self.stream("POST", path, body=_encode(payload), headers=_ACCEPT_SSE, deadline=deadline) as answer:
            async for event in answer.events():
                yield event

    def stream(
        self,
        method: str,
        path: str,
        *,
        deadline: float,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> _StreamCall:
        """`async with client.stream(...) as stream`: an answer read piece by piece, each read bounded.

        A non-2xx answer raises its mapped error on entering; leaving the block releases the connection
        (closing it when the answer was not read to its end).
        """
        return _StreamCall(self, method, path, deadline, body, self._request_headers(body, headers, request_id, None))

    async def websocket(self, path: str, *, deadline: float, heartbeat: float) -> aiohttp.ClientWebSocketResponse:
        """Open a WebSocket on the pooled session; the upgrade is bounded by `deadline`."""
        started = asyncio.get_running_loop().time()
        async with self._bounded(deadline, started):
            return await self._pool().ws_connect(
                self.url(path), heartbeat=heartbeat, timeout=aiohttp.ClientWSTimeout(ws_close=5.0)
            )


class Stream:
    """An answer being read: status, headers and bounded reads of its body (lines, Server-Sent Events)."""

    def __init__(self, client: HttpClient, resp: aiohttp.ClientResponse, deadline: float, started: float) -> None:
        self._client = client
        self._resp = resp
        self._deadline = deadline
        self._started = started
        self.status = resp.status
        self.headers: Mapping[str, str] = resp.headers

    async def read(self) -> bytes:
        """The rest of the body."""
        async with self._client._bounded(self._deadline, self._started):
            return await self._resp.read()

    async def readline(self) -> bytes:
        """The next line (with its end), b"" at the end; an over-long line is an upstream error."""
        try:
            async with self._client._bounded(self._deadline, self._started):
                return await self._resp.content.readline()
        except ValueError as exc:  # aiohttp's "line too long"
            raise UpstreamError(
                f"{self._client.name}: malformed stream: {exc}", details=dict(self._client.details)
            ) from exc

    async def events(self) -> AsyncIterator[SseEvent]:
        """The events of a `text/event-stream` body (LF or CRLF line ends)."""
        event, data = "", list[str]()
        while True:
            # Each read is bounded, never a `yield`: a timeout must not fire inside the consumer's code.
            raw = await self.readline()
            if not raw:
                break
            line = raw.decode("utf-8").rstrip("\r\n")
            if not line:
                if data:
                    yield SseEvent(event or "message", "\n".join(data))
                event, data = "", []
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)
        if data:
            yield SseEvent(event or "message", "\n".join(data))


class _StreamCall:
    """The context manager behind `HttpClient.stream`."""

    __slots__ = ("_body", "_client", "_deadline", "_headers", "_method", "_path", "_resp")

    def __init__(
        self,
        client: HttpClient,
        method: str,
        path: str,
        deadline: float,
        body: bytes | None,
        headers: Mapping[str, str],
    ) -> None:
        self._client = client
        self._method = method
        self._path = path
        self._deadline = deadline
        self._body = body
        self._headers = headers
        self._resp: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> Stream:
        client = self._client
        started = asyncio.get_running_loop().time()
        if started >= self._deadline:
            raise UpstreamTimeout(
                f"{client.name}: the deadline passed before the call", details={**client.details, "timeout_s": 0}
            )
        async with client._bounded(self._deadline, started):
            resp = await client._send(self._method, client.url(self._path), self._body, self._headers, None)
        self._resp = resp
        stream = Stream(client, resp, self._deadline, started)
        if not 200 <= resp.status < 300:
            try:
                raw = await stream.read()
            finally:
                resp.release()
                self._resp = None
            raise client.error(resp.status, raw, resp.headers)
        return stream

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._resp is not None:
            # aiohttp closes (rather than pools) a connection whose answer was not read to its end.
            self._resp.release()
            self._resp = None
