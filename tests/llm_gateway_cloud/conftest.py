"""Fixtures of the cloud provider tests (helpers live in `_support`)."""

from __future__ import annotations

from ._support import upstream

__all__ = ["upstream"]
