"""HTTP clients of the two gateways; the only way the orchestrator reaches a model."""

from __future__ import annotations

from ._gateway import GatewayClient
from .llm import Generated, LLMGatewayClient, generate_request, response_schema
from .media import MediaGatewayClient

__all__ = [
    "GatewayClient",
    "Generated",
    "LLMGatewayClient",
    "MediaGatewayClient",
    "generate_request",
    "response_schema",
]
