"""Random ids for requests and responses."""

from __future__ import annotations

import os

__all__ = ["new_id"]


def new_id() -> str:
    """A random id shaped like `uuid.uuid4().hex` (version and variant bits set), without a UUID object.

    Same format and randomness as `uuid.uuid4().hex` at about a quarter of its cost; it is made twice per request.
    """
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return raw.hex()
