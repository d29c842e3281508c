"""What the fake upstream servers share: an aiohttp.web server on 127.0.0.1, request recording and faults.

A fake subclasses `FakeServer`, adds its routes in `add_routes`, and calls `record` in each handler.
`Fault` describes one misbehaviour, applied by the fake to a whole answer or, in a stream, per piece.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from typing import Any, Self

import msgspec
from aiohttp import web

__all__ = ["FakeServer", "Fault", "RecordedRequest"]


@dataclass
class Fault:
    """How a fake misbehaves on a chat request."""

    status: int | None = None  # answer with this status and the upstream's error body
    error: str = "an unexpected error occurred"
    delay: float = 0.0  # seconds before the response starts
    chunk_delay: float = 0.0  # seconds between streamed lines
    error_after: int | None = None  # stream: an error line after this many content lines (HTTP 200)
    malformed_after: int | None = None  # stream: a line that is not JSON after this many content lines
    cut_after: int | None = None  # stream: end the body after this many content lines, without the final line
    stall_after: int | None = None  # stream: send nothing more after this many content lines (until cancelled)
    raw: bytes | None = None  # answer 200 with exactly these bytes
    retry_after: str | None = None  # Retry-After header with `status`
    times: int | None = None  # apply to the next N chat requests only; None = always

    def take(self) -> Fault | None:
        """This fault for the next request, counting down `times`; None once they are used up."""
        if self.times is None:
            return self
        if self.times <= 0:
            return None
        self.times -= 1
        return self

    async def break_stream(
        self, response: web.StreamResponse, index: int, *, error_line: bytes, malformed_line: bytes
    ) -> bool:
        """Apply the stream faults due before content piece `index`; True when the stream has been ended."""
        line = error_line if self.error_after == index else malformed_line if self.malformed_after == index else None
        if line is not None or self.cut_after == index:
            if line is not None:
                await response.write(line)
            await response.write_eof()
            return True
        if self.stall_after == index:
            await asyncio.Event().wait()
        if self.chunk_delay:
            await asyncio.sleep(self.chunk_delay)
        return False


@dataclass
class RecordedRequest:
    """One request as a fake received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeServer:
    """A loopback server on a port the kernel picks at bind time; every request it records is in `requests`."""

    requests: list[RecordedRequest] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`, known once started."""
        return f"http://127.0.0.1:{self.port}"

    def add_routes(self, app: web.Application) -> None:
        """Register the fake's handlers."""
        raise NotImplementedError

    async def start(self) -> None:
        """Bind port 0 on 127.0.0.1 and serve."""
        app = web.Application()
        self.add_routes(app)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        """Stop serving; safe to call twice."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def record(self, request: web.Request) -> Any:
        """Record `request`; its body decoded as JSON (the raw bytes when it is not JSON, None when empty)."""
        raw = await request.read()
        try:
            body = msgspec.json.decode(raw) if raw else None
        except msgspec.DecodeError:
            body = raw
        self.requests.append(RecordedRequest(request.method, request.path, dict(request.headers), body))
        return body
