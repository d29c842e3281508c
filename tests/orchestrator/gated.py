"""A gate in front of a real gateway: forwards every request, records which agent step called for which run,
and holds the calls of chosen roles until the test lets them through (to catch a run mid-flight)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

__all__ = ["Gate", "gated", "read_sse"]

_HOP = {"host", "content-length", "transfer-encoding", "connection"}


@dataclass
class Gate:
    """What passed the gate, and which roles it holds (`hold`) until `release()`."""

    upstream: str
    hold: set[str] = field(default_factory=set)
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    held: Counter[str] = field(default_factory=Counter)
    _opened: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def release(self) -> None:
        """Let every held call (and every later one) through."""
        self.hold.clear()
        self._opened.set()

    async def wait_held(self, role: str, count: int) -> None:
        """Until `count` calls of `role` are being held."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.held[role] >= count)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        role = run_id = ""
        if request.method == "POST" and body:
            with contextlib.suppress(ValueError):
                sent = json.loads(body)
                role = str(sent.get("role", ""))
                run_id = str((sent.get("metadata") or {}).get("run_id", ""))
        if role in self.hold:
            async with self._changed:
                self.held[role] += 1
                self._changed.notify_all()
            await self._opened.wait()
        self.calls[(role, run_id)] += 1
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with aiohttp.ClientSession() as session, session.request(
            request.method, self.upstream + request.path_qs, data=body, headers=headers
        ) as answer:
            raw = await answer.read()
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP}
            return web.Response(body=raw, status=answer.status, headers=kept)


@contextlib.asynccontextmanager
async def gated(upstream: str, *, hold: set[str] | None = None) -> AsyncIterator[tuple[str, Gate]]:
    """A Gate on 127.0.0.1 in front of `upstream`; yields its base URL and the gate."""
    gate = Gate(upstream=upstream, hold=set(hold or ()))
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", gate.handle)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", gate
    finally:
        gate.release()
        await runner.cleanup()


async def read_sse(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, dict[str, object]]]:
    """(event, data) of each Server-Sent Event until the stream ends; comments are skipped."""
    event, data = "", ""
    async for raw in response.content:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if event:
                yield event, json.loads(data)
            event, data = "", ""
        elif line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data += line.removeprefix("data: ")
