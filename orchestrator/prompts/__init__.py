"""Prompt templates of the six agents (`<role>.system.md`, `<role>.user.md`), read with importlib.resources.

Placeholders use `string.Template` syntax: `$product`, `$product_name`, `$language`, and one per earlier
output the agent needs (`$brand`, `$brief`, `$strategist`, `$copywriter`).
"""

from __future__ import annotations

__all__: list[str] = []
