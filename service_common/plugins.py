"""Plug-in classes named in YAML by import path (`"package.module:ClassName"`), resolved at start-up.

Both gateways build their providers this way, so adding one is a module plus YAML; every failure is a
ConfigError naming the YAML key, raised before the service serves anything.
"""

from __future__ import annotations

import importlib
from typing import Any

from .config import ConfigError

__all__ = ["import_class"]


def import_class(spec: str, base: type, *, where: str) -> type[Any]:
    """`"package.module:ClassName"` -> that class, which must subclass `base` (often an ABC).

    >>> import_class("collections:OrderedDict", dict, where="providers.x.class").__name__
    'OrderedDict'
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{where}: expected 'package.module:ClassName', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{where}: cannot import {module_name!r}: {exc}") from exc
    cls = getattr(module, attr, None)
    if not isinstance(cls, type) or not issubclass(cls, base):
        raise ConfigError(f"{where}: {spec!r} is not a {base.__name__} subclass")
    return cls
