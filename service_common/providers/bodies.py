"""Request bodies of the cloud providers (LLM and image alike): YAML extras laid over what the provider built."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["merge_extra"]


def merge_extra(body: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`body` with a route's YAML extras laid over it; nested objects are merged one level deep.

    >>> merge_extra({"a": {"x": 1}}, {"a": {"y": 2}, "b": 3})
    {'a': {'x': 1, 'y': 2}, 'b': 3}
    """
    for key, value in extra.items():
        current = body.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            body[key] = {**current, **value}
        else:
            body[key] = value
    return body
