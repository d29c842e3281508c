"""Build provider instances from YAML: import each `class` by path, convert its section to the class's Settings.

Adding a provider is a new module plus a YAML section; nothing here names a provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service_common.config import ConfigError, convert_section
from service_common.plugins import import_class

from .config import GatewayConfig
from .providers.base import Provider

__all__ = ["MOCK_PROVIDER_CLASS", "build_providers", "import_provider_class"]

# Mock mode must work with a YAML that lists only live providers, so this one default is named here.
MOCK_PROVIDER_CLASS = "llm_gateway.providers.mock:MockProvider"


def import_provider_class(spec: str, *, where: str) -> type[Provider]:
    """`"package.module:ClassName"` -> the class; every failure is a ConfigError naming `where`."""
    return import_class(spec, Provider, where=where)


def _build_one(name: str, section: Mapping[str, Any]) -> Provider:
    where = f"providers.{name}"
    settings_raw = dict(section)
    cls = import_provider_class(str(settings_raw.pop("class", "")), where=f"{where}.class")
    settings = convert_section(settings_raw, cls.Settings, path=where)
    try:
        return cls(name, settings)
    except (ValueError, NotImplementedError) as exc:
        # A provider that cannot work with these settings says so now, not on the first request.
        raise ConfigError(f"{where}: {exc}") from exc


def build_providers(config: GatewayConfig) -> dict[str, Provider]:
    """One instance per YAML section, plus the mock provider when the YAML does not list it."""
    providers = {name: _build_one(name, section) for name, section in config.providers.items()}
    if config.mock_provider not in providers:
        providers[config.mock_provider] = _build_one(config.mock_provider, {"class": MOCK_PROVIDER_CLASS})
    return providers
