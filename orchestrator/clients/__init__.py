"""HTTP clients of the two gateways; the only way the orchestrator reaches a model."""

from __future__ import annotations

from ._transport import Reply, Transport, parse_retry_after
from .llm import Generated, LLMGatewayClient, generate_request, response_schema
from .media import MediaGatewayClient

__all__ = [
    "Generated",
    "LLMGatewayClient",
    "MediaGatewayClient",
    "Reply",
    "Transport",
    "generate_request",
    "parse_retry_after",
    "response_schema",
]
