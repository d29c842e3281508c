"""Media providers: one module each; `base` holds the interface (`service_common.providers` builds them from YAML)."""

from __future__ import annotations

from .base import MediaProvider, ProgressCallback, ProviderSettings, RenderCall, RenderedImage

__all__ = ["MediaProvider", "ProgressCallback", "ProviderSettings", "RenderCall", "RenderedImage"]
