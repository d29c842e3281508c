"""The LLM Gateway's own series: tokens per provider and model, every attempt as an upstream call, breakers.

A count the provider did not report is not added as 0: the answer is counted in `pdp_llm_usage_unreported`
instead, so a dashboard can tell "no tokens" from "no numbers".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry

from service_common.metrics import CounterSeries, Metrics, label_request
from shared_contracts.errors import GatewayError
from shared_contracts.llm import Attempt, GenerateRequest, GenerateResponse

__all__ = ["LLMMetrics"]

_BREAKER_STATES = ("closed", "half_open", "open")


class LLMMetrics(Metrics):
    """LLM Gateway: tokens in and out per provider and model, and every attempt as an upstream call."""

    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry=registry)
        self.tokens = CounterSeries(
            "pdp_llm_tokens", "Tokens the providers reported (estimated in mock mode); direction is in or out.",
            ("provider", "model", "direction"), self.registry,
        )
        self.unreported = CounterSeries(
            "pdp_llm_usage_unreported", "Answers whose provider reported no token count; direction is in or out.",
            ("provider", "model", "direction"), self.registry,
        )

    def count_tokens(self, provider: str, model: str, *, input_tokens: int | None, output_tokens: int | None) -> None:
        """Add one answer's usage; an unknown count (None) is counted as unreported, never as 0 tokens."""
        if input_tokens is None:
            self.unreported.inc((provider, model, "in"))
        else:
            self.tokens.inc((provider, model, "in"), input_tokens)
        if output_tokens is None:
            self.unreported.inc((provider, model, "out"))
        else:
            self.tokens.inc((provider, model, "out"), output_tokens)

    def observe_generation(
        self, request: GenerateRequest | None, response: GenerateResponse | None, error: GatewayError | None
    ) -> None:
        """Label the current request by route and answer, count tokens, and time each attempt upstream."""
        role, task = (request.role, request.task) if request is not None else ("", "")
        if response is not None:
            label_request(role=role, task=task, provider=response.provider, model=response.model)
            self.count_tokens(response.provider, response.model, input_tokens=response.usage.input_tokens,
                              output_tokens=response.usage.output_tokens)
            attempts: Iterable[Any] = response.attempts
        else:
            attempts = (error.details.get("attempts") or []) if error is not None else []
            last = attempts[-1] if attempts else None
            label_request(role=role, task=task, provider=getattr(last, "provider", ""),
                          model=getattr(last, "model", ""), outcome=error.code if error is not None else None)
        for attempt in attempts:
            if isinstance(attempt, Attempt):
                self.observe_upstream(attempt.provider, attempt.model, attempt.outcome, attempt.latency_ms / 1000)

    def track_breakers(self, read: Callable[[], Mapping[str, str]]) -> None:
        """Report `read()` ({provider: breaker state}) as `pdp_breaker_state` whenever the registry is scraped."""

        def states() -> dict[tuple[str, ...], float]:
            return {
                (provider, state): 1.0 if state == current else 0.0
                for provider, current in read().items()
                for state in _BREAKER_STATES
            }

        self.track(
            "pdp_breaker_state", "Circuit breaker per provider: 1 on its current state (closed, half_open, open).",
            ("provider", "state"), states,
        )
