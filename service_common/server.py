"""The command line every service shares (`--host --port --config`), its YAML `server:` section, then uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import math
import os
import re
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Annotated

import msgspec
import uvicorn
from starlette.types import ASGIApp

from .config import Section
from .protocol import EdgeLimits, EdgeStats, GuardedHttpToolsProtocol, guarded_protocol

__all__ = ["ServeArgs", "ServerSettings", "parse_serve_args", "serve"]

# uvicorn's own exit status when the server could not start (e.g. the port is taken).
_STARTUP_FAILURE = 3
# An origin as a browser sends it: scheme, host, optional port; no path, no trailing slash.
_ORIGIN = re.compile(r"^https?://[^/\s:]+(:[0-9]{1,5})?$")
_DEFAULTS = EdgeLimits()


class ServerSettings(Section, frozen=True):
    """YAML `server:` of every service: what a client may hold at the HTTP edge, whom to believe, who may call.

    The limits apply before any app code (and before the API-key check): see `service_common.protocol`.
    `trusted_proxies` lists the peers (IP addresses or networks, or `"*"` alone) whose `X-Forwarded-For`
    and `X-Forwarded-Proto` are believed; none by default, so a client cannot set its own address or
    scheme (which the media gateway's image URLs are built from). `cors_origins` lists the browser
    origins (`https://shop.example`, or `"*"`) allowed to call cross-origin; none by default. Both take
    a YAML list or one comma-separated string (from the environment); read them as `proxies`/`origins`.
    """

    max_header_bytes: Annotated[int, msgspec.Meta(ge=1_024, le=1_048_576)] = _DEFAULTS.max_header_bytes
    max_headers: Annotated[int, msgspec.Meta(ge=8, le=1_000)] = _DEFAULTS.max_headers
    header_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = _DEFAULTS.header_timeout_s
    body_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=3_600)] = _DEFAULTS.body_timeout_s
    max_connections: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = _DEFAULTS.max_connections
    trusted_proxies: list[str] | str | None = None
    cors_origins: list[str] | str | None = None

    def __post_init__(self) -> None:
        proxies, origins = self.proxies, self.origins
        for index, entry in enumerate(proxies):
            _check_proxy(entry, index, alone=len(proxies) == 1)
        for index, origin in enumerate(origins):
            if not (origin == "*" and len(origins) == 1) and not _ORIGIN.match(origin):
                raise ValueError(
                    f"cors_origins[{index}]: {origin!r} is not an origin like https://shop.example[:port] "
                    "(or '*' alone)"
                )

    @property
    def proxies(self) -> list[str]:
        """`trusted_proxies` as a list."""
        return _items(self.trusted_proxies)

    @property
    def origins(self) -> list[str]:
        """`cors_origins` as a list."""
        return _items(self.cors_origins)

    def edge_limits(self) -> EdgeLimits:
        """The protocol's limits."""
        return EdgeLimits(
            max_header_bytes=self.max_header_bytes,
            max_headers=self.max_headers,
            header_timeout_s=self.header_timeout_s,
            body_timeout_s=self.body_timeout_s,
            max_connections=self.max_connections,
        )


def _items(value: list[str] | str | None) -> list[str]:
    parts = value.split(",") if isinstance(value, str) else (value or [])
    return [part.strip() for part in parts if part.strip()]


def _check_proxy(entry: str, index: int, *, alone: bool) -> None:
    if entry == "*" and alone:
        return
    try:
        # strict: "10.0.0.1/8" (host bits set) is a typo, not the network 10.0.0.0/8.
        ipaddress.ip_network(entry, strict=True)
    except ValueError:
        raise ValueError(
            f"trusted_proxies[{index}]: {entry!r} is not an IP address or network like 10.0.0.0/8 (or '*' alone)"
        ) from None


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
    """uvicorn's server, plus: a finished graceful shutdown exits 0, and the edge's deadlines are checked.

    uvicorn re-raises a caught SIGTERM once its graceful shutdown is done, so the process would die by the
    signal (status -15); here it is a clean exit. Once a second (uvicorn's tick) every connection whose
    client is late with a head or a body is closed, and the edge's refusals are logged.
    """

    def __init__(self, config: uvicorn.Config, *, stats: EdgeStats, on_exit: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self.edge_stats = stats
        self._on_exit = on_exit

    async def on_tick(self, counter: int) -> bool:
        if counter % 10 == 0:
            now = asyncio.get_running_loop().time()
            for connection in list(self.server_state.connections):
                if isinstance(connection, GuardedHttpToolsProtocol):
                    connection.expire_if_late(now)
            self.edge_stats.report()
        return await super().on_tick(counter)

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
    settings: ServerSettings | None = None,
    on_exit: Callable[[], None] | None = None,
) -> None:
    """Run `app` under uvicorn (uvloop, httptools with the edge limits of `settings`), no access log.

    SIGTERM stops accepting, lets in-flight requests finish for up to `graceful_s`, runs the lifespan's
    shutdown and exits 0. `on_exit` is called once on the event loop as soon as the signal arrives (before
    that wait), so an app can answer its long-waiting requests itself. `X-Forwarded-*` is believed only
    from `settings.trusted_proxies`.
    """
    settings = settings if settings is not None else ServerSettings()
    stats = EdgeStats()
    proxies = settings.proxies
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="auto",
        http=guarded_protocol(settings.edge_limits(), stats),
        log_level=log_level.lower(),
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=math.ceil(graceful_s),
        server_header=False,
        # uvicorn's default believes X-Forwarded-* from 127.0.0.1 (or $FORWARDED_ALLOW_IPS); we only from
        # the configured proxies.
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies,
    )
    server = _Server(config, stats=stats, on_exit=on_exit)
    server.run()
    if not server.started:
        raise SystemExit(_STARTUP_FAILURE)
