"""media_gateway package: the one door for images (workflows, providers, jobs, image store)."""

from __future__ import annotations

from .app import create_app
from .config import MediaConfig, load_media_config

__all__ = ["MediaConfig", "create_app", "load_media_config"]
