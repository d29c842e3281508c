"""The one outbound-HTTP edge: stale pooled connections, deadlines, transport errors, retries, outbound headers."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp import web

from service_common.client import HttpClient
from service_common.logging import bound_log_context
from service_common.retry import RetryPolicy
from shared_contracts.errors import GatewayError, ProviderUnavailable, UpstreamError, UpstreamTimeout

_BODY = b'{"ok":true}'


class _OneAnswerPerConnection(asyncio.Protocol):
    """Answers one request with `Connection: keep-alive`, then closes the connection at once.

    That is what llama.cpp's server does after every streamed answer: a client that pools the connection
    writes its next request into a socket the server has already closed.
    """

    def __init__(self, seen: list[bytes], *, answer: bool = True) -> None:
        self.seen = seen
        self.answer = answer
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head, found, rest = self.buffer.partition(b"\r\n\r\n")
        if not found:
            return
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        if len(rest) < length:
            return
        self.seen.append(rest[:length])
        assert self.transport is not None
        if self.answer:
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(_BODY), _BODY)
            )
        self.transport.close()


async def _serve(factory: Callable[[], asyncio.Protocol]) -> tuple[asyncio.Server, str]:
    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


def _in(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds


@pytest.fixture
async def closing_server() -> AsyncIterator[tuple[str, list[bytes]]]:
    seen: list[bytes] = []
    server, url = await _serve(lambda: _OneAnswerPerConnection(seen))
    yield url, seen
    server.close()
    await server.wait_closed()


async def test_a_server_that_closes_after_each_answer_breaks_a_plain_pool(
    closing_server: tuple[str, list[bytes]],
) -> None:
    # The fault the edge exists for: aiohttp reuses the pooled connection and its write finds it closing.
    url, _ = closing_server
    failures: list[BaseException] = []
    async with aiohttp.ClientSession() as session:
        for _ in range(10):
            try:
                async with session.post(url + "/x", data=b"{}") as resp:
                    await resp.read()
            except aiohttp.ClientOSError as exc:
                failures.append(exc)
    assert failures and "Can not write request body" in str(failures[0])


async def test_a_stale_pooled_connection_is_resent_once_on_a_fresh_one(closing_server: tuple[str, list[bytes]]) -> None:
    url, seen = closing_server
    client = HttpClient("local", base_url=url)
    await client.start()
    try:
        bodies = [b'{"n":%d}' % n for n in range(20)]
        for body in bodies:
            reply = await client.call("POST", "/x", body=body, deadline=_in(5))
            assert reply.ok and reply.body == _BODY
    finally:
        await client.close()
    # Every request reached the server exactly once, in order: nothing lost, nothing doubled.
    assert seen == bodies


async def test_a_request_the_server_may_have_read_is_not_resent() -> None:
    # The server reads the request, then drops the connection: the work may have started, so no resend.
    seen: list[bytes] = []
    server, url = await _serve(lambda: _OneAnswerPerConnection(seen, answer=False))
    client = HttpClient("local", base_url=url)
    await client.start()
    try:
        with pytest.raises(ProviderUnavailable) as caught:
            await client.call("POST", "/x", body=b"{}", deadline=_in(5))
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
    assert seen == [b"{}"]
    assert caught.value.details["provider"] == "local"


async def test_transport_failures_map_onto_the_error_tree(refused_port: int) -> None:
    client = HttpClient("up", base_url=f"http://127.0.0.1:{refused_port}", details={"gateway": "up"})
    await client.start()
    try:
        with pytest.raises(ProviderUnavailable) as refused:
            await client.request("GET", "/", deadline=_in(5))
        with pytest.raises(UpstreamTimeout) as late:
            await client.request("GET", "/", deadline=_in(-1))
    finally:
        await client.close()
    assert refused.value.details == {"gateway": "up", "error": "ClientConnectorError"}
    assert late.value.details["timeout_s"] == 0


@pytest.fixture
async def app_server() -> AsyncIterator[tuple[str, list[web.Request]]]:
    seen: list[web.Request] = []
    attempts = {"busy": 0}
    release = asyncio.Event()

    async def echo(request: web.Request) -> web.Response:
        seen.append(request)
        return web.json_response({"headers": dict(request.headers)})

    async def busy(request: web.Request) -> web.Response:
        seen.append(request)
        attempts["busy"] += 1
        if attempts["busy"] < 3:
            return web.json_response({"error": "busy"}, status=503, headers={"retry-after": "2"})
        return web.json_response({"ok": True})

    async def always_busy(request: web.Request) -> web.Response:
        return web.json_response({"error": "busy"}, status=503, headers={"retry-after": "2"})

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response()

    async def cut(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-length": "100"})
        await resp.prepare(request)
        await resp.write(b"partial")
        assert request.transport is not None
        request.transport.close()
        return resp

    app = web.Application()
    app.router.add_post("/echo", echo)
    app.router.add_post("/busy", busy)
    app.router.add_post("/always-busy", always_busy)
    app.router.add_get("/hang", hang)
    app.router.add_get("/cut", cut)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    release.set()
    await runner.cleanup()


async def test_the_deadline_bounds_the_call_and_a_cut_body_is_an_upstream_error(
    app_server: tuple[str, list[web.Request]],
) -> None:
    url, _ = app_server
    client = HttpClient("up", base_url=url)
    await client.start()
    try:
        with pytest.raises(UpstreamTimeout) as late:
            await client.request("GET", "/hang", deadline=_in(0.2))
        with pytest.raises(UpstreamError) as cut:
            await client.request("GET", "/cut", deadline=_in(5))
    finally:
        await client.close()
    assert late.value.details == {"provider": "up", "timeout_s": 0.2}
    assert cut.value.code == "upstream_error" and "broke off" in cut.value.message


async def test_retries_honour_retry_after_inside_the_deadline(app_server: tuple[str, list[web.Request]]) -> None:
    url, seen = app_server
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    client = HttpClient("up", base_url=url, sleep=sleep, rng=random.Random(1))
    policy = RetryPolicy(attempts=3, backoff_s=0.1, jitter=False)
    await client.start()
    try:
        reply = await client.call("POST", "/busy", body=b"{}", deadline=_in(30), retry=policy)
        with pytest.raises(GatewayError) as short:
            # Too little time left to wait out the Retry-After: the 503 comes back at once.
            await client.call("POST", "/always-busy", body=b"{}", deadline=_in(1), retry=policy)
    finally:
        await client.close()
    assert reply.ok and waits == [2.0, 2.0] and len(seen) == 3
    assert short.value.code == "upstream_error" and short.value.details["status"] == 503


async def test_outbound_headers_carry_the_request_trace_and_the_budget(
    app_server: tuple[str, list[web.Request]],
) -> None:
    url, seen = app_server
    client = HttpClient("peer", base_url=url, headers={"authorization": "Bearer k"}, propagate_context=True)
    await client.start()
    try:
        with bound_log_context(request_id="req-1", trace_id="a" * 32, span_id="b" * 16, trace_flags="01"):
            await client.call("POST", "/echo", body=b"{}", deadline=_in(10), budget=_in(3))
    finally:
        await client.close()
    headers = seen[0].headers
    assert headers["x-request-id"] == "req-1"
    assert headers["traceparent"] == f"00-{'a' * 32}-{'b' * 16}-01"
    assert 0 < float(headers["x-request-timeout"]) <= 3
    assert headers["authorization"] == "Bearer k" and headers["content-type"] == "application/json"


async def test_a_key_echoed_in_an_error_is_scrubbed() -> None:
    def echo_key(name: str, status: int, raw: bytes, headers: object) -> GatewayError:
        return UpstreamError(f"{name}: bad key sk-secret-1")

    client = HttpClient("cloud", on_error=echo_key, secret="sk-secret-1")
    err = client.error(401, b"")
    assert "sk-secret-1" not in err.message and "***" in err.message


async def test_a_replayable_request_dropped_unanswered_is_sent_once_more() -> None:
    # The first connection reads the request and drops it unanswered; a generation may safely go again.
    seen: list[bytes] = []
    answer = iter([False, True])
    server, url = await _serve(lambda: _OneAnswerPerConnection(seen, answer=next(answer)))
    client = HttpClient("local", base_url=url, replayable=True)
    await client.start()
    try:
        reply = await client.call("POST", "/x", body=b"{}", deadline=_in(5))
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
    assert reply.ok and seen == [b"{}", b"{}"]
