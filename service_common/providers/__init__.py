"""Provider plumbing both gateways share: the settings base, the YAML class loader, keyed cloud clients,
and the cloud vendors' wire types and error mapping. The only place in `service_common` that names a vendor."""

from __future__ import annotations

from .keyed import KeyedProvider
from .loader import build_providers
from .settings import KeyedSettings, ProviderSettings, masked_repr, require_key

__all__ = ["KeyedProvider", "KeyedSettings", "ProviderSettings", "build_providers", "masked_repr", "require_key"]
