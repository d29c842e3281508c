"""Caps on what one generate request may carry, beyond the body's byte cap: message count and total characters.

Both are answered with 413 `payload_too_large`, like the byte cap, with `details.field`, `details.limit`
and `details.actual`, so a caller can tell which cap it hit.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from shared_contracts.errors import PayloadTooLarge
from shared_contracts.llm import GenerateRequest

__all__ = ["RequestLimits", "check_request"]


class RequestLimits(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """YAML `limits:`: most messages per request, and most characters over all message contents."""

    max_messages: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 256
    max_chars: Annotated[int, msgspec.Meta(ge=1, le=64 * 1024 * 1024)] = 500_000


def check_request(request: GenerateRequest, limits: RequestLimits) -> None:
    """Raise PayloadTooLarge when `request` has too many messages or characters."""
    messages = request.messages
    if len(messages) > limits.max_messages:
        raise PayloadTooLarge(
            f"{len(messages)} messages exceed the limit of {limits.max_messages}",
            details={"field": "messages", "limit": limits.max_messages, "actual": len(messages)},
        )
    chars = sum([len(m.content) for m in messages])
    if chars > limits.max_chars:
        raise PayloadTooLarge(
            f"messages hold {chars} characters, over the limit of {limits.max_chars}",
            details={"field": "messages[].content", "limit": limits.max_chars, "actual": chars},
        )
