"""What both gateway clients share: one transport, its session's life, and the readiness probe."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import ClassVar, Self

from orchestrator.clients._transport import Sleep, Transport
from orchestrator.config import GatewayClientConfig

__all__ = ["GatewayClient"]


class GatewayClient:
    """A client of one gateway over a pooled `Transport`; `async with` opens and closes its session."""

    # The name errors and logs give this gateway ("llm", "media").
    gateway: ClassVar[str]

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    @classmethod
    def from_config(cls, config: GatewayClientConfig, *, sleep: Sleep = asyncio.sleep) -> Self:
        """A client with its own transport built from a config section."""
        return cls(Transport(cls.gateway, config, sleep=sleep))

    async def start(self) -> None:
        """Open the pooled session."""
        await self.transport.start()

    async def close(self) -> None:
        """Close the pooled session."""
        await self.transport.close()

    async def check_ready(self) -> None:
        """Raise a typed error unless the gateway's `/readyz` answers 2xx."""
        await self.transport.get_json_ok("/readyz")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
