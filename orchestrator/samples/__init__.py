"""Sample products (JSON) for the P0 flow, in Korean and English; `--product` takes any of them."""

from __future__ import annotations

__all__: list[str] = []
