"""Issue 13 item 1: what a client may hold before any app code runs, on the three real service processes.

A head (request line + headers) past `server.max_header_bytes` or `server.max_headers` is refused with 431
(or the connection is cut while the flood is still being sent) before the API-key check; a head or body that
does not arrive in time gets 408; past `server.max_connections` new connections are closed. The service keeps
answering, and its memory does not grow with what a flood sends (measured; asserted loosely).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import pytest

from tests.security._edge import (
    POST_PATHS,
    READ_BOUND_S,
    SERVICES,
    flood_head,
    open_raw,
    read_answer,
    rss_mib,
    service,
)

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
# A key is configured, so a 401 would show that the app ran before the edge refused the request.
KEYS = {"llm_gateway": "LLM_GATEWAY_API_KEYS", "media_gateway": "MEDIA_GATEWAY_API_KEYS",
        "orchestrator": "ORCHESTRATOR_API_KEYS"}


async def _healthy(url: str) -> None:
    async with aiohttp.ClientSession() as session, session.get(url + "/healthz") as response:
        assert response.status == 200, await response.text()


def _metric(text: str, outcome: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("pdp_requests_total{") and f'outcome="{outcome}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.parametrize("name", SERVICES)
async def test_header_floods_are_cut_off_and_memory_stays_flat(name: str, tmp_path: Path) -> None:
    async with service(name, tmp_path, env={KEYS[name]: "the-key"}) as child:
        assert child.proc is not None
        before = rss_mib(child.proc.pid)
        lines = await asyncio.gather(*(flood_head(child.port, POST_PATHS[name], total=32 * MiB) for _ in range(4)))
        one = await flood_head(child.port, POST_PATHS[name], total=32 * MiB, one_line=True)
        after = rss_mib(child.proc.pid)
        for result in [*lines, one]:
            assert result.sent < 32 * MiB, f"the whole flood was read: {result}"
            assert result.answer.status in (431, None), result.answer
        await _healthy(child.url)
    # 4 x 32 MiB of header lines and one 32 MiB line used to stay in the process; a loose bound only.
    print(f"{name}: RSS {before:.0f} MiB before the floods, {after:.0f} MiB after")
    assert after - before < 64, (before, after)


@pytest.mark.parametrize("name", SERVICES)
async def test_an_oversized_head_sent_at_once_gets_431_before_the_key_check(name: str, tmp_path: Path) -> None:
    async with service(name, tmp_path, env={KEYS[name]: "the-key"}) as child:
        reader, writer = await open_raw(child.port)
        pad = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"v" * 200) for i in range(90))  # ~19 KB in 90 lines
        writer.write(f"POST {POST_PATHS[name]} HTTP/1.1\r\nHost: x\r\n".encode() + pad + b"Content-Length: 0\r\n\r\n")
        answer = await read_answer(reader)
        writer.close()
        assert answer.status == 431, answer
        assert answer.json()["error"]["code"] == "headers_too_large"
        assert answer.json()["error"]["details"] == {"limit": 16_384}
        await _healthy(child.url)


@pytest.mark.parametrize("name", SERVICES)
async def test_more_header_lines_than_allowed_get_431(name: str, tmp_path: Path) -> None:
    async with service(name, tmp_path) as child:
        reader, writer = await open_raw(child.port)
        lines = b"".join(b"X-%d: v\r\n" % i for i in range(150))  # small, but 150 > 100 lines
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n")
        answer = await read_answer(reader)
        writer.close()
        assert answer.status == 431 and answer.json()["error"]["code"] == "headers_too_large", answer
        assert answer.json()["error"]["details"] == {"limit": 100}


async def test_a_head_within_the_limits_is_served(tmp_path: Path) -> None:
    async with service("llm_gateway", tmp_path) as child:
        reader, writer = await open_raw(child.port)
        pad = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"v" * 100) for i in range(90))  # ~10 KB in 92 lines
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + pad + b"\r\n")
        answer = await read_answer(reader)
        writer.close()
        assert answer.status == 200, answer


@pytest.mark.parametrize("name", SERVICES)
async def test_slow_heads_are_answered_408_and_closed(name: str, tmp_path: Path) -> None:
    async with service(name, tmp_path, server={"header_timeout_s": 1}) as child:
        assert child.proc is not None
        before = rss_mib(child.proc.pid)
        # Slowloris: many connections that start a request and never finish its head.
        clients = [await open_raw(child.port) for _ in range(300)]
        for _, writer in clients:
            writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        held = rss_mib(child.proc.pid)
        answers = await asyncio.gather(*(read_answer(reader) for reader, _ in clients))
        for _, writer in clients:
            writer.close()
        assert {a.status for a in answers} == {408}, {a.status for a in answers}
        assert answers[0].json()["error"]["code"] == "request_timeout"
        await _healthy(child.url)
        await child.logged(b"requests_refused_at_edge")
    print(f"{name}: RSS {before:.0f} MiB, {held:.0f} MiB holding 300 half-sent heads")
    assert re.search(rb'"request_timeout":\d+', b"".join(child.lines))


@pytest.mark.parametrize("name", SERVICES)
async def test_a_body_that_stops_coming_is_408_and_counted_as_such(name: str, tmp_path: Path) -> None:
    async with service(name, tmp_path, server={"body_timeout_s": 1}) as child:
        reader, writer = await open_raw(child.port)
        writer.write(f"POST {POST_PATHS[name]} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: 1000\r\n\r\n{\"role\": ".encode())
        answer = await read_answer(reader)
        writer.close()
        assert answer.status == 408 and answer.json()["error"]["code"] == "request_timeout", answer
        await child.logged(b"request_abandoned")
        async with aiohttp.ClientSession() as session, session.get(child.url + "/metrics") as response:
            metrics = await response.text()
        assert _metric(metrics, "request_timeout") == 1, metrics
        assert _metric(metrics, "internal_error") == 0
        assert b"unhandled_error" not in b"".join(child.lines)


async def test_connections_past_the_cap_are_closed_at_once(tmp_path: Path) -> None:
    async with service("llm_gateway", tmp_path, server={"max_connections": 20, "header_timeout_s": 120}) as child:
        clients = [await open_raw(child.port) for _ in range(30)]
        reads = [asyncio.create_task(reader.read(1)) for reader, _ in clients]
        # The ten past the cap are closed without a word; the first twenty stay open (for their header timeout).
        ended = []
        async with asyncio.timeout(READ_BOUND_S):
            for done in asyncio.as_completed(reads):
                ended.append(await done)
                if len(ended) == 10:
                    break
        assert ended == [b""] * 10
        assert sum(task.done() for task in reads) == 10
        await child.logged(b"requests_refused_at_edge")
        assert b'"max_connections"' in b"".join(child.lines)
        for task in reads:
            task.cancel()
        for _, writer in clients:
            writer.close()
        async with asyncio.timeout(READ_BOUND_S):
            while True:  # a new connection is served again once the server has seen ours close
                try:
                    await _healthy(child.url)
                    break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
