"""Build provider instances from the YAML `providers` section: import path → class → Settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service_common.config import convert_section
from service_common.plugins import import_class

from .base import MediaProvider

__all__ = ["load_providers"]


def load_providers(specs: Mapping[str, Mapping[str, Any]]) -> dict[str, MediaProvider]:
    """One instance per YAML entry; an unknown class or a bad setting names its YAML key."""
    providers: dict[str, MediaProvider] = {}
    for name, spec in specs.items():
        where = f"providers.{name}"
        settings_raw = {k: v for k, v in spec.items() if k != "class"}
        cls: type[MediaProvider] = import_class(str(spec.get("class", "")), MediaProvider, where=f"{where}.class")
        settings = convert_section(settings_raw, cls.Settings, path=where)
        providers[name] = cls(name, settings)
    return providers
