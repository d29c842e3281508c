"""Media providers: one module each; `base` holds the interface, `loader` builds them from YAML."""

from __future__ import annotations

from .base import MediaProvider, ProgressCallback, ProviderSettings, RenderCall, RenderedImage
from .loader import load_providers

__all__ = ["MediaProvider", "ProgressCallback", "ProviderSettings", "RenderCall", "RenderedImage", "load_providers"]
