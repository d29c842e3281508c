"""What the cloud LLM providers share: key-bearing settings and the pooled upstream client's lifecycle."""

from __future__ import annotations

from service_common.upstream import KeyedSettings, UpstreamOwner

from .base import Provider, ProviderSettings

__all__ = ["CloudProvider", "CloudSettings"]


class CloudSettings(ProviderSettings, KeyedSettings, kw_only=True, frozen=True):
    """YAML section of a keyed cloud LLM provider (see `KeyedSettings` for the key fields)."""


class CloudProvider(UpstreamOwner, Provider):
    """An LLM reached over HTTPS with a key: refuses to be built without one, owns one UpstreamClient."""

    settings: CloudSettings

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        if not isinstance(settings, CloudSettings):
            raise TypeError(f"{type(self).__name__} needs {type(self).Settings.__name__}, got {type(settings).__name__}")
        super().__init__(name, settings)
        self.settings = settings
        self.attach_client(name, settings)
