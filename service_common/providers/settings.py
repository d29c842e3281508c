"""Provider settings: the base every provider's YAML section converts to, and the fields of keyed cloud APIs."""

from __future__ import annotations

from typing import Annotated

import msgspec

from ..config import ConfigError

__all__ = ["KeyedSettings", "ProviderSettings", "masked_repr", "require_key"]


class ProviderSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Base of each provider's YAML section (minus `class`); a typo in YAML is a start-up error."""


def require_key(section: str, api_key: str | None, env_name: str) -> None:
    """Refuse an active provider without a key, naming the YAML section and the env variable to set."""
    if not (api_key or "").strip():
        raise ConfigError(f"{section}.api_key: empty; set the environment variable {env_name}")


def masked_repr(struct: msgspec.Struct, secret_fields: tuple[str, ...] = ("api_key",)) -> str:
    """A Struct's repr with secrets shown as `***` (or `''` when unset), so keys never reach logs."""
    parts = []
    for field in struct.__struct_fields__:
        value = getattr(struct, field)
        shown = ("'***'" if value else "''") if field in secret_fields else repr(value)
        parts.append(f"{field}={shown}")
    return f"{type(struct).__name__}({', '.join(parts)})"


class KeyedSettings(ProviderSettings, kw_only=True, frozen=True):
    """YAML keys of every keyed cloud provider (LLM or image alike).

    `api_key` comes from `${VAR}` in YAML; `api_key_env` names VAR for the start-up error. An unset
    variable reads as YAML null, kept as None so that error can still name it.
    """

    base_url: str
    api_key: str | None = None
    api_key_env: str
    # False only for keyless OpenAI-compatible servers (a local vLLM or llama.cpp server).
    key_required: bool = True
    max_connections: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 16

    def __repr__(self) -> str:
        return masked_repr(self)
