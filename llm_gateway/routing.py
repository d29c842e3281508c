"""The router: ordered YAML rules matched on role, task and quality; first match wins, else the default."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from service_common.retry import RetryPolicy
from shared_contracts.errors import NoRoute
from shared_contracts.llm import GenerateOptions, Mode, RouteInfo, RouteTarget, RouteTimeouts

from .config import ModeTimeouts, RouteSpec, RoutingConfig, RuleSpec, SamplingDefaults, TargetSpec, TimeoutOverride

__all__ = ["ResolvedRoute", "Router", "Target"]

# Client-chosen role/task strings are the cache key, so the cache stops growing at this size.
_CACHE_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class Target:
    """One provider instance + model, with the route's default options and provider extras."""

    provider: str
    model: str
    options: GenerateOptions | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ResolvedRoute:
    """What a request resolves to: targets in try order (primary first) and the deadline per mode."""

    name: str
    targets: tuple[Target, ...]
    timeouts: ModeTimeouts
    # The rule's own retries; None = the gateway's default.
    retry: RetryPolicy | None = None
    # The rule's per-try budget per mode; None (or a None mode) = a share of what is left of the deadline.
    attempt_timeouts: TimeoutOverride | None = None

    def timeout(self, mode: Mode) -> float:
        """Seconds the whole call may take in `mode`."""
        return self.timeouts.mock if mode == "mock" else self.timeouts.live

    def attempt_timeout(self, mode: Mode) -> float | None:
        """Seconds one try may take in `mode`, or None for an equal share of what is left."""
        if self.attempt_timeouts is None:
            return None
        return self.attempt_timeouts.mock if mode == "mock" else self.attempt_timeouts.live


def _as_set(value: str | list[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    return frozenset([value] if isinstance(value, str) else value)


def _options(spec: SamplingDefaults | None) -> GenerateOptions | None:
    if spec is None:
        return None
    return GenerateOptions(
        temperature=spec.temperature, max_tokens=spec.max_tokens, top_p=spec.top_p, seed=spec.seed, stop=spec.stop
    )


def _target(spec: TargetSpec) -> Target:
    return Target(provider=spec.provider, model=spec.model, options=_options(spec.options), extra=dict(spec.extra))


def _attempt_timeouts(spec: RouteSpec) -> TimeoutOverride | None:
    over = spec.attempt_timeout
    if isinstance(over, float | int):
        return TimeoutOverride(live=float(over))
    return over


def _timeouts(spec: RouteSpec, base: ModeTimeouts) -> ModeTimeouts:
    over = spec.timeout
    if over is None:
        return base
    if isinstance(over, float | int):
        return ModeTimeouts(mock=base.mock, live=float(over))
    return ModeTimeouts(mock=over.mock or base.mock, live=over.live or base.live)


@dataclass(frozen=True, slots=True)
class _Rule:
    roles: frozenset[str] | None
    tasks: frozenset[str] | None
    qualities: frozenset[str] | None
    route: ResolvedRoute

    def matches(self, role: str, task: str, quality: str | None) -> bool:
        if self.roles is not None and role not in self.roles:
            return False
        if self.tasks is not None and task not in self.tasks:
            return False
        return self.qualities is None or (quality is not None and quality in self.qualities)


class Router:
    """Resolves `(role, task, quality)` to a ResolvedRoute; raises NoRoute when no rule and no default apply."""

    def __init__(self, routing: RoutingConfig, timeouts: ModeTimeouts) -> None:
        self._specs = tuple(routing.rules)
        self._rules = tuple(
            _Rule(_as_set(spec.role), _as_set(spec.task), _as_set(spec.quality), self._route(spec, i, timeouts))
            for i, spec in enumerate(routing.rules)
        )
        self._default = None if routing.default is None else self._route(routing.default, None, timeouts)
        self._cache: dict[tuple[str, str, str | None], ResolvedRoute] = {}

    @staticmethod
    def _route(spec: RouteSpec, index: int | None, timeouts: ModeTimeouts) -> ResolvedRoute:
        if index is None:
            name = "default"
        else:
            name = spec.name if isinstance(spec, RuleSpec) and spec.name else f"rules[{index}]"
        targets = (_target(spec), *(_target(fb) for fb in spec.fallbacks))
        return ResolvedRoute(
            name=name,
            targets=targets,
            timeouts=_timeouts(spec, timeouts),
            retry=spec.retry,
            attempt_timeouts=_attempt_timeouts(spec),
        )

    def resolve(self, role: str, task: str, quality: str | None = None) -> ResolvedRoute:
        """The first matching rule's route, else the default route."""
        key = (role, task, quality)
        route = self._cache.get(key)
        if route is not None:
            return route
        route = self._match(role, task, quality)
        if len(self._cache) < _CACHE_LIMIT:
            self._cache[key] = route
        return route

    def _match(self, role: str, task: str, quality: str | None) -> ResolvedRoute:
        for rule in self._rules:
            if rule.matches(role, task, quality):
                return rule.route
        if self._default is not None:
            return self._default
        raise NoRoute(
            f"no routing rule matches role={role!r} task={task!r}",
            details={"role": role, "task": task, "quality": quality},
        )

    def provider_names(self) -> frozenset[str]:
        """Every provider instance some route may call (primary or fallback)."""
        routes = [rule.route for rule in self._rules]
        if self._default is not None:
            routes.append(self._default)
        return frozenset(t.provider for r in routes for t in r.targets)

    def describe(self) -> tuple[list[RouteInfo], RouteInfo | None]:
        """The rules and the default as wire types, in match order."""
        rules = [_info(rule.route, spec.role, spec.task, spec.quality) for rule, spec in zip(self._rules, self._specs)]
        default = None if self._default is None else _info(self._default, None, None, None)
        return rules, default


def _listed(value: str | list[str] | None) -> list[str] | None:
    return None if value is None else [value] if isinstance(value, str) else list(value)


def _info(
    route: ResolvedRoute,
    roles: str | list[str] | None,
    tasks: str | list[str] | None,
    qualities: str | list[str] | None,
) -> RouteInfo:
    primary, *fallbacks = route.targets
    return RouteInfo(
        name=route.name,
        role=_listed(roles),
        task=_listed(tasks),
        quality=_listed(qualities),
        provider=primary.provider,
        model=primary.model,
        fallbacks=[RouteTarget(provider=t.provider, model=t.model) for t in fallbacks],
        timeout_s=RouteTimeouts(mock=route.timeouts.mock, live=route.timeouts.live),
    )
