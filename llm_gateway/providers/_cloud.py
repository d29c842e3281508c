"""What the cloud LLM providers share: key-bearing settings and the pooled upstream client's lifecycle."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Annotated, ClassVar

import msgspec

from service_common.upstream import ErrorMapper, UpstreamClient, masked_repr, require_key

from .base import Provider, ProviderSettings

__all__ = ["CloudProvider", "CloudSettings"]


class CloudSettings(ProviderSettings, kw_only=True):
    """YAML of a keyed cloud provider; `api_key` comes from `${VAR}`, `api_key_env` names VAR for errors."""

    base_url: str
    # `${VAR}` of an unset variable reads as YAML null: kept as None so the start-up error can name VAR.
    api_key: str | None = None
    api_key_env: str
    # False only for keyless OpenAI-compatible servers (a local vLLM or llama.cpp server).
    key_required: bool = True
    max_connections: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 16

    def __repr__(self) -> str:
        return masked_repr(self)


class CloudProvider(Provider):
    """A provider reached over HTTPS with a key: refuses to be built without one, owns one UpstreamClient."""

    settings: CloudSettings
    error_mapper: ClassVar[ErrorMapper]

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        if not isinstance(settings, CloudSettings):
            raise TypeError(f"{type(self).__name__} needs {type(self).Settings.__name__}, got {type(settings).__name__}")
        super().__init__(name, settings)
        self.settings = settings
        if settings.key_required:
            require_key(f"providers.{name}", settings.api_key, settings.api_key_env)
        self._api_key = settings.api_key or ""
        self.base_url = settings.base_url.rstrip("/")
        self.client = UpstreamClient(
            name,
            headers=self.auth_headers(),
            on_error=type(self).error_mapper,
            max_connections=settings.max_connections,
            secret=self._api_key,
        )

    @abc.abstractmethod
    def auth_headers(self) -> Mapping[str, str]:
        """The headers every request carries (key, API version)."""

    async def start(self) -> None:
        await self.client.start()

    async def close(self) -> None:
        await self.client.close()
