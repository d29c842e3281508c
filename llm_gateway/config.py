"""The gateway's YAML, as frozen Structs: mode, timeouts, providers and the routing rules.

`load_gateway_config` is the one place that reads the file and the environment (`GENERATOR_MODE`
reaches `mode` through `${GENERATOR_MODE:-mock}` in the YAML, as in the Media Gateway's). Every problem
is a `ConfigError` naming the YAML path, e.g. `llm_routing.rules[2].provider: unknown provider 'olama'`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from service_common.auth import AuthSettings, key_hashes
from service_common.config import ConfigError, Section, convert_section, load_config
from service_common.modes import GeneratorMode
from service_common.retry import RetryPolicy
from service_common.server import ServerSettings

from .guards import ResilienceConfig
from .limits import RequestLimits

__all__ = [
    "DEFAULT_MOCK_PROVIDER",
    "GatewayConfig",
    "ModeTimeouts",
    "RouteSpec",
    "RoutingConfig",
    "RuleSpec",
    "SamplingDefaults",
    "TargetSpec",
    "TimeoutOverride",
    "load_gateway_config",
    "parse_gateway_config",
]

DEFAULT_MOCK_PROVIDER = "mock"

Seconds = Annotated[float, msgspec.Meta(gt=0, le=3600)]
Matcher = str | list[str] | None


class ModeTimeouts(Section, frozen=True):
    """Whole-call deadline per mode, fallbacks and repair included."""

    mock: Seconds = 5.0
    live: Seconds = 180.0


class TimeoutOverride(Section, frozen=True):
    """A rule's own deadline for one or both modes."""

    mock: Seconds | None = None
    live: Seconds | None = None


class SamplingDefaults(Section, frozen=True):
    """A route's default sampling options; a client's own options win field by field."""

    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=1, le=32_768)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    seed: int | None = None
    stop: list[str] | None = None


class TargetSpec(Section, frozen=True):
    """One provider instance + model; `extra` holds provider-specific knobs (e.g. Ollama's keep_alive)."""

    provider: str
    model: Annotated[str, msgspec.Meta(min_length=1)]
    options: SamplingDefaults | None = None
    extra: dict[str, Any] = {}


class RouteSpec(TargetSpec, frozen=True):
    """A primary target, its ordered fallbacks and an optional deadline override."""

    fallbacks: list[TargetSpec] = []
    # A bare number overrides the live deadline only; a mapping may set `mock` and/or `live`.
    timeout: Seconds | TimeoutOverride | None = None
    # Seconds each try (primary, retry or fallback) may take inside the deadline, same shapes as `timeout`;
    # absent = an equal share of what is left among the targets still to try.
    attempt_timeout: Seconds | TimeoutOverride | None = None
    # Tries per target before the next fallback; absent = the top-level `retry`.
    retry: RetryPolicy | None = None


class RuleSpec(RouteSpec, frozen=True):
    """A routing rule: matches `role`, `task` and `quality` (each a string, a list, or absent = any)."""

    name: str | None = None
    role: Matcher = None
    task: Matcher = None
    quality: Matcher = None


class RoutingConfig(Section, frozen=True):
    """Ordered rules (first match wins) and the route used when none matches."""

    rules: list[RuleSpec] = []
    default: RouteSpec | None = None


class GatewayConfig(Section, frozen=True):
    """The whole `config/llm_gateway.yaml`."""

    mode: GeneratorMode = "mock"
    allow_mode_header: bool = False
    # Record mode saves every live answer here; replay mode answers only from here (see llm_gateway/fixtures.py).
    fixtures_dir: str = "fixtures/llm"
    timeouts: ModeTimeouts = ModeTimeouts()
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    # Readiness checks of live providers; short so a hung upstream cannot hang /readyz.
    health_timeout: Seconds = 5.0
    # The provider instance that answers every route in mock mode; created with defaults when not listed.
    mock_provider: str = DEFAULT_MOCK_PROVIDER
    # name -> {class: "module:Class", ...that class's Settings}; checked when the registry builds them.
    providers: dict[str, dict[str, Any]] = {}
    llm_routing: RoutingConfig = RoutingConfig()
    # Embedding models, routed by role/task like generation (POST /api/v1/llm/embed, /v1/embeddings).
    embedding_routing: RoutingConfig = RoutingConfig()
    log_level: Literal["debug", "info", "warning", "error"] | None = None
    # Message count and character caps per request (413 payload_too_large), see llm_gateway/limits.py.
    limits: RequestLimits = RequestLimits()
    # Default retries of every route (a rule's own `retry` wins); 1 attempt = no retry.
    retry: RetryPolicy = RetryPolicy()
    # Circuit breaker and backpressure per provider instance, see llm_gateway/guards.py.
    resilience: ResilienceConfig = ResilienceConfig()
    # Optional API keys (Authorization: Bearer); none configured = open, see service_common/auth.py.
    auth: AuthSettings = AuthSettings()
    # The HTTP edge: header and body limits, trusted proxies, CORS origins, see service_common/server.py.
    server: ServerSettings = ServerSettings()


def parse_gateway_config(raw: Any) -> GatewayConfig:
    """Convert an already-expanded YAML document and check its references."""
    return _check_references(convert_section({} if raw is None else raw, GatewayConfig, path=""))


def load_gateway_config(path: Path, environ: Mapping[str, str]) -> GatewayConfig:
    """Read `path` with `${VAR:-default}` expansion (and `${CONFIG_DIR}`), then validate it."""
    return load_config(path, GatewayConfig, environ, check=_check_references)


def _check_references(config: GatewayConfig) -> GatewayConfig:
    known = set(config.providers) | {config.mock_provider}
    routes: list[tuple[str, RouteSpec]] = []
    for key, routing in (("llm_routing", config.llm_routing), ("embedding_routing", config.embedding_routing)):
        routes += [(f"{key}.rules[{i}]", r) for i, r in enumerate(routing.rules)]
        if routing.default is not None:
            routes.append((f"{key}.default", routing.default))
    for where, route in routes:
        targets = [(where, route), *((f"{where}.fallbacks[{j}]", fb) for j, fb in enumerate(route.fallbacks))]
        for target_where, target in targets:
            if target.provider not in known:
                names = ", ".join(sorted(known))
                raise ConfigError(f"{target_where}.provider: unknown provider {target.provider!r} (known: {names})")
        if isinstance(route, RuleSpec):
            for field in ("role", "task", "quality"):
                value = getattr(route, field)
                if isinstance(value, list) and not value:
                    raise ConfigError(f"{where}.{field}: an empty list matches nothing; omit it to match any")
    key_hashes(config.auth)  # a malformed hash fails here, naming auth.api_key_sha256[i]
    for name in config.resilience.providers:
        if name not in known:
            raise ConfigError(f"resilience.providers.{name}: unknown provider (known: {', '.join(sorted(known))})")
    for name, section in config.providers.items():
        if not isinstance(section.get("class"), str):
            raise ConfigError(f"providers.{name}.class: required, as 'package.module:ClassName'")
    return config
