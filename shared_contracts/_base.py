"""Base classes every wire type inherits, so the options are set once and explained once."""

from __future__ import annotations

import msgspec

__all__ = ["Inbound", "Outbound"]


class Inbound(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    """Base for bodies clients send us: an unknown key is a client bug, so it is rejected by name.

    `omit_defaults` keeps what a client encodes small; decoding fills the defaults back in.
    """


class Outbound(msgspec.Struct, kw_only=True):
    """Base for bodies we answer with: every field is always present, and readers ignore new ones."""
