"""The command line every service shares: `--host --port --config`, then uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

import uvicorn
from starlette.types import ASGIApp

__all__ = ["ServeArgs", "parse_serve_args", "serve"]

# uvicorn's own exit status when the server could not start (e.g. the port is taken).
_STARTUP_FAILURE = 3


class ServeArgs(argparse.Namespace):
    """Parsed command line."""

    host: str
    port: int
    config: Path
    log_level: str


def parse_serve_args(
    argv: Sequence[str] | None,
    *,
    prog: str,
    default_port: int,
    default_config: str,
    config_env: str,
    environ: dict[str, str] | None = None,
) -> ServeArgs:
    """Parse `--host --port --config --log-level`; the config path may also come from `config_env`."""
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--config", type=Path, default=Path(env.get(config_env) or default_config))
    parser.add_argument("--log-level", default=env.get("LOG_LEVEL", "info"))
    return parser.parse_args(argv, namespace=ServeArgs())


class _Server(uvicorn.Server):
    """uvicorn re-raises a caught SIGTERM once its graceful shutdown is done, so the process would die by
    the signal (status -15). Here a finished graceful shutdown is a clean exit: status 0."""

    def __init__(self, config: uvicorn.Config, *, on_exit: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self._on_exit = on_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        captured: list[int] = getattr(self, "_captured_signals", [])
        if sig == signal.SIGTERM and captured and captured[-1] == sig:
            captured.pop()
        if self._on_exit is not None:
            # A signal handler runs between two bytecodes of the loop's thread: hand the call to the loop.
            on_exit, self._on_exit = self._on_exit, None
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().call_soon_threadsafe(on_exit)


def serve(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    log_level: str = "info",
    graceful_s: float = 10.0,
    on_exit: Callable[[], None] | None = None,
) -> None:
    """Run `app` under uvicorn with uvloop/httptools, no access log (we log requests ourselves).

    SIGTERM stops accepting, lets in-flight requests finish for up to `graceful_s`, runs the lifespan's
    shutdown and exits 0. `on_exit` is called once on the event loop as soon as the signal arrives (before
    that wait), so an app can answer its long-waiting requests itself.
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="auto",
        http="auto",
        log_level=log_level.lower(),
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=math.ceil(graceful_s),
        server_header=False,
    )
    server = _Server(config, on_exit=on_exit)
    server.run()
    if not server.started:
        raise SystemExit(_STARTUP_FAILURE)
