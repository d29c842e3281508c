"""Fixtures of the fault suite shared across its files: the fake ComfyUI comes from the media gateway's tests."""

from __future__ import annotations

from tests.media_gateway.conftest import fake

__all__ = ["fake"]
