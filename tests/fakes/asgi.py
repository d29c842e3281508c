"""A small in-process ASGI client: runs the app's lifespan and sends requests without a socket.

    async with AsgiClient(create_app(config)) as client:
        reply = await client.post("/api/v1/llm/generate", json={...})
        assert reply.status == 200, reply.json()

An unhandled exception still raises out of `request` after the 500 is sent: Starlette's
ServerErrorMiddleware re-raises it so a server can log it, and a test should see it too.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import msgspec

__all__ = ["AsgiClient", "AsgiResponse", "sse_events"]


@dataclass
class AsgiResponse:
    """A finished response."""

    status: int
    headers: dict[str, str]
    body: bytes = b""

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


def sse_events(body: bytes) -> list[tuple[str, Any]]:
    """`(event, decoded data)` pairs of a text/event-stream body."""
    events = []
    for frame in body.decode().split("\n\n"):
        if not frame.strip():
            continue
        name, data = "message", ""
        for line in frame.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data += line[len("data: ") :]
        events.append((name, msgspec.json.decode(data)))
    return events


@dataclass
class AsgiClient:
    """Drives an ASGI app directly; `async with` runs lifespan startup and shutdown."""

    app: Any
    state: dict[str, Any] = field(default_factory=dict)
    _lifespan: asyncio.Task[None] | None = None
    _to_app: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    _from_app: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)

    async def __aenter__(self) -> AsgiClient:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        self._lifespan = asyncio.create_task(self.app(scope, self._to_app.get, self._from_app.put))
        await self._to_app.put({"type": "lifespan.startup"})
        message = await asyncio.wait_for(self._from_app.get(), 10)
        if message["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"lifespan startup failed: {message}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._to_app.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(self._from_app.get(), 10)
        assert self._lifespan is not None
        await asyncio.wait_for(self._lifespan, 10)

    async def request(
        self, method: str, path: str, *, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> AsgiResponse:
        raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        raw_headers.append((b"content-length", str(len(body)).encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": raw_headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8100),
            "state": dict(self.state),
        }
        done = asyncio.Event()
        sent_body = False
        response = AsgiResponse(status=0, headers={})
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()  # the client stays connected until the response is complete
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                response.status = message["status"]
                response.headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    done.set()

        try:
            await asyncio.wait_for(self.app(scope, receive, send), 30)
        finally:
            done.set()
        response.body = b"".join(chunks)
        return response

    async def get(self, path: str, *, headers: dict[str, str] | None = None) -> AsgiResponse:
        return await self.request("GET", path, headers=headers)

    async def post(
        self, path: str, *, json: Any = None, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> AsgiResponse:
        raw = body if body is not None else msgspec.json.encode(json)
        return await self.request(
            "POST", path, body=raw, headers={"content-type": "application/json", **(headers or {})}
        )
