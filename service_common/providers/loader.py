"""Provider instances from YAML: import each `class` by path, convert its section to the class's `Settings`.

Both gateways build their providers here, so adding one is a module plus YAML; every failure is a
ConfigError naming the YAML key, raised before the service serves anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from ..config import ConfigError, convert_section
from ..plugins import import_class
from .settings import ProviderSettings

__all__ = ["ProviderClass", "build_providers"]


class ProviderClass(Protocol):
    """What the loader needs of a provider class: its Settings type and `cls(name, settings)`."""

    Settings: type[ProviderSettings]

    def __init__(self, name: str, settings: ProviderSettings) -> None: ...


P = TypeVar("P")


def build_providers(specs: Mapping[str, Mapping[str, Any]], base: type[P], *, where: str = "providers") -> dict[str, P]:
    """One instance of `base` (a subclass named by `class`) per YAML entry.

    `{"ollama": {"class": "llm_gateway.providers.ollama:OllamaProvider", "base_url": ...}}` → `{"ollama": <...>}`
    """
    built: dict[str, P] = {}
    for name, spec in specs.items():
        at = f"{where}.{name}"
        raw = {key: value for key, value in spec.items() if key != "class"}
        if not isinstance(spec.get("class"), str):
            raise ConfigError(f"{at}.class: required, as 'package.module:ClassName'")
        cls = import_class(str(spec["class"]), base, where=f"{at}.class")
        settings = convert_section(raw, cls.Settings, path=at)
        try:
            built[name] = cls(name, settings)
        except (ValueError, TypeError, NotImplementedError) as exc:
            # A provider that cannot work with these settings says so now, not on the first request.
            raise ConfigError(f"{at}: {exc}") from exc
    return built
