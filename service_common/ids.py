"""Random ids for requests, responses and trace spans.

They name and correlate, they guard nothing: they come from `random.getrandbits` (Python's Mersenne
Twister, seeded from the OS at start and again in a forked child), not from `os.urandom`, whose system
call on every id cost more than the rest of making it. Anything that must not be guessed (the console's
session secret) uses `secrets`.
"""

from __future__ import annotations

import random

__all__ = ["new_hex", "new_id"]

# The version (4) and variant (RFC 4122) bits of a UUID4, as in `uuid.uuid4()`.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_id() -> str:
    """A random id shaped like `uuid.uuid4().hex` (version and variant bits set), without a UUID object."""
    return f"{(random.getrandbits(128) & _UUID4_CLEAR) | _UUID4_SET:032x}"


def new_hex(nbytes: int) -> str:
    """`nbytes` random bytes as lower-case hex (a W3C trace or span id)."""
    return f"{random.getrandbits(nbytes * 8):0{nbytes * 2}x}"
