"""The LLM Gateway's provider instances: every YAML section, plus the mock provider when the YAML lists none.

Adding a provider is a new module plus a YAML section; nothing here names a provider.
"""

from __future__ import annotations

from service_common.providers import build_providers as build_from_yaml

from .config import GatewayConfig
from .providers.base import Provider

__all__ = ["MOCK_PROVIDER_CLASS", "build_providers"]

# Mock mode must work with a YAML that lists only live providers, so this one default is named here.
MOCK_PROVIDER_CLASS = "llm_gateway.providers.mock:MockProvider"


def build_providers(config: GatewayConfig) -> dict[str, Provider]:
    """One instance per YAML section, plus the mock provider when the YAML does not list it."""
    specs = dict(config.providers)
    specs.setdefault(config.mock_provider, {"class": MOCK_PROVIDER_CLASS})
    return build_from_yaml(specs, Provider)  # type: ignore[type-abstract]  # an ABC: the YAML names the subclass
