"""Build provider instances from the YAML `providers` section: import path → class → Settings."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from service_common.config import ConfigError, convert_section

from .base import MediaProvider

__all__ = ["load_providers"]


def _import_class(path: str, where: str) -> type[MediaProvider]:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"{where}.class: expected 'package.module:Class', got {path!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{where}.class: cannot import {module_name!r}: {exc}") from exc
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, MediaProvider)):
        raise ConfigError(f"{where}.class: {path!r} is not a MediaProvider subclass")
    return cls


def load_providers(specs: Mapping[str, Mapping[str, Any]]) -> dict[str, MediaProvider]:
    """One instance per YAML entry; an unknown class or a bad setting names its YAML key."""
    providers: dict[str, MediaProvider] = {}
    for name, spec in specs.items():
        where = f"providers.{name}"
        settings_raw = {k: v for k, v in spec.items() if k != "class"}
        cls = _import_class(str(spec.get("class", "")), where)
        settings = convert_section(settings_raw, cls.Settings, path=where)
        providers[name] = cls(name, settings)
    return providers
