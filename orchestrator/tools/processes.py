"""Child service processes on free loopback ports: used by the P0 script, `make e2e` and `make samples`.

Each child is `python -m <package> --host 127.0.0.1 --port <free> --config <yaml>`, its output goes to a
log file, and it counts as started once `GET /healthz` answers 200.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from service_common.client import HttpClient
from shared_contracts.errors import GatewayError

__all__ = [
    "REPO_ROOT",
    "ServiceGroup",
    "ServiceProcess",
    "ServiceSpec",
    "ServiceStartError",
    "free_port",
    "gateway_specs",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
_LOOPBACK = "127.0.0.1"


class ServiceStartError(RuntimeError):
    """A child did not become healthy; the message ends with the tail of its log."""


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """How to start one service: its name, its package (run with `-m`), its YAML and extra environment."""

    name: str
    module: str
    config: Path
    env: Mapping[str, str] = field(default_factory=dict)


def gateway_specs(env: Mapping[str, str] | None = None, *, root: Path = REPO_ROOT) -> list[ServiceSpec]:
    """The LLM and Media Gateways with the repository's YAML; `env` (e.g. GENERATOR_MODE) is added to both."""
    extra = dict(env or {})
    return [
        ServiceSpec("llm-gateway", "llm_gateway", root / "config" / "llm_gateway.yaml", extra),
        ServiceSpec("media-gateway", "media_gateway", root / "config" / "media_gateway.yaml", extra),
    ]


def free_port() -> int:
    """A port the OS just handed out on loopback (free now; a start retries if another process wins it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


class ServiceProcess:
    """One running child service."""

    def __init__(self, spec: ServiceSpec, *, log_dir: Path, base_env: Mapping[str, str] | None = None) -> None:
        self.spec = spec
        self.log_path = log_dir / f"{spec.name}.log"
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`."""
        return f"http://{_LOOPBACK}:{self.port}"

    def _spawn(self) -> None:
        self.port = free_port()
        argv = [sys.executable, "-m", self.spec.module, "--host", _LOOPBACK, "--port", str(self.port)]
        argv += ["--config", str(self.spec.config)]
        env = {**self.base_env, **self.spec.env, "PYTHONUNBUFFERED": "1"}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    async def start(self, *, timeout_s: float = 30.0, tries: int = 3) -> None:
        """Spawn and wait for `/healthz`; a child that exits early (e.g. lost its port) is retried."""
        for attempt in range(1, tries + 1):
            self._spawn()
            if await self._wait_healthy(timeout_s):
                return
            await self.stop()
            if attempt == tries:
                break
        raise ServiceStartError(f"{self.spec.name} did not become healthy\n{self.log_tail()}")

    async def _wait_healthy(self, timeout_s: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        client = HttpClient(self.spec.name, base_url=self.url, max_connections=1)
        await client.start()
        try:
            while loop.time() < deadline:
                if self.proc is None or self.proc.poll() is not None:
                    return False
                try:
                    reply = await client.request("GET", "/healthz", deadline=min(deadline, loop.time() + 1.0))
                    if reply.status == 200:
                        return True
                except GatewayError:
                    pass
                # Polling a child's health endpoint: there is no event to wait on across processes.
                await asyncio.sleep(0.05)
        finally:
            await client.close()
        return False

    async def stop(self, *, timeout_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within `timeout_s`."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)

    def log_tail(self, lines: int = 40) -> str:
        """The last lines the child wrote."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return f"(no log at {self.log_path})"
        return "\n".join(text.splitlines()[-lines:])


class ServiceGroup:
    """Children started together and stopped together (in reverse order), also when something fails."""

    def __init__(self, *, log_dir: Path, base_env: Mapping[str, str] | None = None, timeout_s: float = 30.0) -> None:
        self.log_dir = log_dir
        self.base_env = base_env
        self.timeout_s = timeout_s
        self.services: list[ServiceProcess] = []

    async def start(self, specs: Sequence[ServiceSpec]) -> list[ServiceProcess]:
        """Start `specs` concurrently; all of them are healthy when this returns.

        When one fails, the others' starts are cancelled before its error is raised, so none of them can
        spawn a process after `aclose()` has stopped the group.
        """
        started = [ServiceProcess(spec, log_dir=self.log_dir, base_env=self.base_env) for spec in specs]
        self.services.extend(started)
        try:
            async with asyncio.TaskGroup() as group:
                for service in started:
                    group.create_task(service.start(timeout_s=self.timeout_s))
        except* ServiceStartError as failed:
            raise failed.exceptions[0] from None
        return started

    async def aclose(self) -> None:
        """Stop every child."""
        for service in reversed(self.services):
            await service.stop()
        self.services.clear()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
