"""A service as a child process whose stderr (JSON logs) is read line by line, so tests wait on log events."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Self

from orchestrator.processes import free_port

__all__ = ["Child"]


class Child:
    """`python -m <module> --host 127.0.0.1 --port <free> --config <path>`; killed on exit if still running."""

    def __init__(self, module: str, config: Path, env: Mapping[str, str]) -> None:
        self.module, self.config = module, config
        self.env = {**os.environ, "LOG_LEVEL": "info", "PYTHONUNBUFFERED": "1", **env}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[bytes] = []
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", self.module, "--host", "127.0.0.1", "--port", str(self.port),
            "--config", str(self.config), env=self.env, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read())
        await self.logged(b"Uvicorn running on")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            await self._reader

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        async for line in self.proc.stderr:
            async with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    async def logged(self, needle: bytes, count: int = 1) -> None:
        """Wait until `needle` has appeared in `count` log lines (bounded, so a broken test fails)."""
        async with asyncio.timeout(30), self._changed:
            await self._changed.wait_for(lambda: sum(needle in line for line in self.lines) >= count)

    async def exit_code(self, sig: int) -> int:
        """Send `sig` and wait (bounded) for the exit status."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        async with asyncio.timeout(30):
            return await self.proc.wait()

    def log(self) -> str:
        return b"".join(self.lines).decode("utf-8", "replace")
