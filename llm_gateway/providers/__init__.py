"""LLM providers: one module each; `base` holds the interface."""

from __future__ import annotations

from .base import Delta, Provider, ProviderCall, ProviderResult, ProviderSettings

__all__ = ["Delta", "Provider", "ProviderCall", "ProviderResult", "ProviderSettings"]
