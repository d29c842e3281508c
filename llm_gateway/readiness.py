"""What `GET /readyz` answers when the gateway is ready."""

from __future__ import annotations

from typing import Any

import msgspec

from .guards import ProviderStatus

__all__ = ["Readiness"]


class Readiness(msgspec.Struct, kw_only=True):
    """`GET /readyz` when ready: the mode and every guarded provider's breaker and backpressure."""

    status: str
    mode: str
    providers: dict[str, ProviderStatus]
    # Per instance of a pooled provider (e.g. several Ollama servers), by provider then base URL: `up`,
    # `in_flight`, `max_in_flight`, `models_loaded`, `error`. Absent providers have one upstream.
    instances: dict[str, dict[str, dict[str, Any]]] = {}
