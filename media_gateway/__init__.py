"""media_gateway package."""

from __future__ import annotations

__all__: list[str] = []
