"""The mock provider and the text synthesis only it uses (schema-valid documents, product prose)."""

from __future__ import annotations

from .provider import MockProvider, MockSettings, estimate_tokens

__all__ = ["MockProvider", "MockSettings", "estimate_tokens"]
