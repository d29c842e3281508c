"""Harness of the edge tests: a service as a real process on its shipped YAML, and raw-socket clients.

`service(name, tmp_path, server={...})` copies `config/` to `tmp_path`, sets the given `server:` keys in the
service's YAML and starts `python -m <name>` on it. The clients speak HTTP/1.1 over plain sockets, because
the point is to send what a well-behaved client library never would: endless header lines, a head that never
ends, a body that never comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from orchestrator.tools.processes import REPO_ROOT
from tests.fakes.child import Child

__all__ = [
    "POST_PATHS",
    "SERVICES",
    "FloodResult",
    "RawAnswer",
    "flood_head",
    "open_raw",
    "read_answer",
    "rss_mib",
    "service",
]

SERVICES = ("llm_gateway", "media_gateway", "orchestrator")
# The JSON endpoint of each service that starts work (a generation, an image job, a run).
POST_PATHS = {
    "llm_gateway": "/api/v1/llm/generate",
    "media_gateway": "/api/v1/media/image/generate",
    "orchestrator": "/api/v1/flows/p0-product-detail/runs",
}
# A port where nothing listens: the orchestrator starts without its gateways (it checks them in /readyz).
_NOWHERE = "http://127.0.0.1:9"
# Bounds every read in this harness, so a server that holds a connection fails the test instead of hanging it.
READ_BOUND_S = 30.0


def _env(name: str, tmp_path: Path) -> dict[str, str]:
    return {
        "llm_gateway": {"GENERATOR_MODE": "mock"},
        "media_gateway": {"GENERATOR_MODE": "mock", "MEDIA_STORE_DIR": str(tmp_path / "store")},
        "orchestrator": {"LLM_GATEWAY_URL": _NOWHERE, "MEDIA_GATEWAY_URL": _NOWHERE,
                         "ORCHESTRATOR_RUNS_DIR": str(tmp_path / "runs")},
    }[name]


@contextlib.asynccontextmanager
async def service(
    name: str, tmp_path: Path, *, server: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> AsyncIterator[Child]:
    """`python -m <name>` on a copy of its shipped YAML with `server:` keys replaced; killed on exit."""
    folder = tmp_path / "config"
    if not folder.exists():
        shutil.copytree(REPO_ROOT / "config", folder)
    path = folder / f"{name}.yaml"
    text = path.read_text("utf-8")
    for key, value in (server or {}).items():
        text, found = re.subn(rf"^(\s+){key}: .*$", rf"\g<1>{key}: {value}", text, count=1, flags=re.MULTILINE)
        assert found == 1, f"{path} has no server.{key} line to set"
    path.write_text(text, "utf-8")
    async with Child(name, path, {**_env(name, tmp_path), **(env or {})}, cwd=tmp_path) as child:
        yield child


def rss_mib(pid: int) -> float:
    """Resident memory of process `pid` in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


@dataclass
class RawAnswer:
    """What came back on a raw connection: the status (None when it closed without a word) and the body."""

    status: int | None
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


async def open_raw(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A plain TCP connection to 127.0.0.1:`port`."""
    return await asyncio.open_connection("127.0.0.1", port)


async def read_answer(reader: asyncio.StreamReader) -> RawAnswer:
    """Read one HTTP/1.1 answer with a Content-Length body (or the close, as status None); bounded."""
    try:
        async with asyncio.timeout(READ_BOUND_S):
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            return RawAnswer(int(lines[0].split()[1]), headers, body)
    except (asyncio.IncompleteReadError, ConnectionError):
        return RawAnswer(None, {}, b"")


@dataclass
class FloodResult:
    """How far a flood got: bytes sent before the server stopped it, and its answer (if any)."""

    sent: int
    answer: RawAnswer
    cut_short: bool


async def flood_head(port: int, path: str, *, total: int, one_line: bool = False) -> FloodResult:
    """Send a request whose head grows to `total` bytes (many lines, or `one_line` that never ends).

    Stops early when the server closes the connection; otherwise ends the head and reads the answer.
    """
    reader, writer = await open_raw(port)
    writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n".encode())
    piece = b"a" * 65_536 if one_line else b"".join(b"X-Pad-%d: %s\r\n" % (i, b"v" * 100) for i in range(512))
    if one_line:
        writer.write(b"X-Big: ")
    sent, cut_short = 0, False
    try:
        async with asyncio.timeout(READ_BOUND_S * 4):
            while sent < total:
                writer.write(piece)
                sent += len(piece)
                await writer.drain()
                if reader.at_eof() or writer.transport.is_closing():
                    cut_short = True
                    break
            if not cut_short:
                writer.write(b"\r\nContent-Length: 2\r\n\r\n{}" if one_line else b"Content-Length: 2\r\n\r\n{}")
                await writer.drain()
    except ConnectionError:
        cut_short = True
    answer = await read_answer(reader)
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    return FloodResult(sent, answer, cut_short)
