"""Providers that call one keyed cloud API over HTTPS: the key is checked when the provider is built.

A provider mixes this in before its gateway's provider base, names its vendor's error mapper and says
which headers carry the key:

    class OpenAIProvider(KeyedProvider, Provider):
        Settings = OpenAISettings
        error_mapper = staticmethod(openai_error)
        def auth_headers(self, key: str) -> Mapping[str, str]:
            return {"authorization": f"Bearer {key}"}
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar

from ..client import ErrorMapper, HttpClient
from .settings import KeyedSettings, ProviderSettings, require_key

__all__ = ["KeyedProvider"]


class KeyedProvider(abc.ABC):
    """Builds `client` (one pooled HttpClient with the key in its headers) and opens/closes it with the provider.

    An active provider whose key is empty refuses to be built: the ConfigError names the YAML section and
    the environment variable to set.
    """

    Settings: ClassVar[type[ProviderSettings]]
    # A staticmethod, so the mapper is not bound to the provider instance.
    error_mapper: ClassVar[staticmethod[[str, int, bytes, Mapping[str, str]], Any]]
    client: HttpClient
    base_url: str

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        if not isinstance(settings, KeyedSettings):
            raise TypeError(
                f"{type(self).__name__} needs {type(self).Settings.__name__}, got {type(settings).__name__}"
            )
        super().__init__(name, settings)  # type: ignore[call-arg]  # the gateway's provider base, next in the MRO
        if settings.key_required:
            require_key(f"providers.{name}", settings.api_key, settings.api_key_env)
        key = settings.api_key or ""
        mapper: ErrorMapper = type(self).error_mapper
        self.base_url = settings.base_url.rstrip("/")
        self.client = HttpClient(
            name,
            headers=self.auth_headers(key),
            on_error=mapper,
            max_connections=settings.max_connections,
            secret=key,
            # A generation (text or image) changes nothing upstream: a request dropped unanswered may go again.
            replayable=True,
        )

    @abc.abstractmethod
    def auth_headers(self, key: str) -> Mapping[str, str]:
        """The headers every request carries: the key and, where the API wants one, its version."""

    async def start(self) -> None:
        await self.client.start()

    async def close(self) -> None:
        await self.client.close()
