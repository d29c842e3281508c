"""Fixtures of the cloud image provider tests; aioresponses is patched as for the LLM cloud providers."""

from __future__ import annotations

from tests.llm_gateway_cloud._support import upstream

__all__ = ["upstream"]
