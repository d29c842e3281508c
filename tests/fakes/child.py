"""A service as a child process whose stderr (JSON logs) is read line by line, so tests wait on log events.

One reader task drains stderr for the child's whole life (a full pipe would block the child) and wakes
the waiters of `logged()`, so a test waits for a named log line instead of racing the reader. The child
binds port 0 and the real port is taken from uvicorn's start-up line, so no other process can take it
between choosing and binding.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Self

__all__ = ["Child"]

_STARTED = re.compile(rb"Uvicorn running on http://[^:\s]+:(\d+)")
# Generous: a loaded 2-core machine may take a while to import a service; a broken test still fails.
_WAIT_S = 30.0
# A log line with a long traceback must not overrun the reader's buffer (asyncio's default is 64 KiB).
_LINE_LIMIT = 4 * 1024 * 1024


class Child:
    """`<command> --host 127.0.0.1 --port 0 [--config <path>]`; killed on exit if still running.

    `command` defaults to `python -m <module>` (pass a console script to test that instead); `unset`
    names environment variables the child must not inherit.
    """

    def __init__(
        self,
        module: str,
        config: Path | None,
        env: Mapping[str, str],
        *,
        command: Sequence[str] | None = None,
        cwd: Path | None = None,
        unset: Iterable[str] = (),
    ) -> None:
        self.module, self.config, self.cwd = module, config, cwd
        self.command = list(command) if command is not None else [sys.executable, "-m", module]
        merged = {**os.environ, "LOG_LEVEL": "info", "PYTHONUNBUFFERED": "1", **env}
        self.env = {k: v for k, v in merged.items() if k not in set(unset)}
        self.port = 0
        self.url = ""
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[bytes] = []
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None
        self._eof = False

    async def __aenter__(self) -> Self:
        config = [] if self.config is None else ["--config", str(self.config)]
        self.proc = await asyncio.create_subprocess_exec(
            *self.command, "--host", "127.0.0.1", "--port", "0", *config,
            env=self.env, cwd=self.cwd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            limit=_LINE_LIMIT,
        )
        self._reader = asyncio.create_task(self._read())
        try:
            await self.logged(b"Uvicorn running on")
        except BaseException:
            await self.__aexit__()
            raise
        started = next(m for m in map(_STARTED.search, self.lines) if m is not None)
        self.port = int(started.group(1))
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        await self._drained()

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        try:
            async for line in self.proc.stderr:
                async with self._changed:
                    self.lines.append(line)
                    self._changed.notify_all()
        finally:
            # End of file wakes the waiters too: a line that never came fails at once, not after the timeout.
            async with self._changed:
                self._eof = True
                self._changed.notify_all()

    async def _drained(self) -> None:
        # After the child exits its last lines may still sit in the pipe: read up to end of file.
        if self._reader is not None:
            async with asyncio.timeout(_WAIT_S):
                await self._reader

    async def logged(self, needle: bytes, count: int = 1) -> None:
        """Wait until `needle` has appeared in `count` log lines (bounded, so a broken test fails)."""
        try:
            async with asyncio.timeout(_WAIT_S), self._changed:
                await self._changed.wait_for(
                    lambda: self._eof or sum(needle in line for line in self.lines) >= count
                )
        except TimeoutError:
            raise AssertionError(f"{needle!r} not logged {count}x within {_WAIT_S:g}s:\n{self.log()}") from None
        if sum(needle in line for line in self.lines) < count:
            raise AssertionError(f"{needle!r} not logged {count}x before stderr closed:\n{self.log()}")

    async def exit_code(self, sig: int | None) -> int:
        """Send `sig` (None: it was sent already) and wait, bounded, for the exit status and the whole log."""
        assert self.proc is not None
        if sig is not None:
            self.proc.send_signal(sig)
        async with asyncio.timeout(_WAIT_S):
            code = await self.proc.wait()
        await self._drained()
        return code

    def log(self) -> str:
        """Everything the child logged so far."""
        return b"".join(self.lines).decode("utf-8", "replace")
