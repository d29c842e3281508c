"""The orchestrator's own series: flow runs and each agent step, by final status."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

from service_common.metrics import LATENCY_BUCKETS, Metrics
from shared_contracts.flows import RunDocument

__all__ = ["FlowMetrics"]


class FlowMetrics(Metrics):
    """Orchestrator: flow runs and each agent step, by final status."""

    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry=registry)
        self.step_duration = Histogram(
            "pdp_flow_step_duration_seconds", "One agent step of a flow, by role and final status.",
            ("flow", "role", "status"), buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.run_duration = Histogram(
            "pdp_flow_run_duration_seconds", "A whole flow run, by final status.",
            ("flow", "status"), buckets=LATENCY_BUCKETS, registry=self.registry,
        )

    def observe_run(self, doc: RunDocument) -> None:
        """A run ended: its duration, and each step that ran, with the gateway call it made."""
        self.run_duration.labels(doc.flow, doc.status).observe((doc.duration_ms or 0.0) / 1000)
        for role, step in doc.steps.items():
            if step.latency_ms is None:
                continue
            self.step_duration.labels(doc.flow, role, step.status).observe(step.latency_ms / 1000)
            outcome = "ok" if step.error is None else step.error.code
            # A step is one LLM Gateway call, then (vision) one waited Media Gateway job: split it so.
            media_ms = (step.media.latency_ms or 0.0) if step.media is not None else 0.0
            if step.media is not None:
                self.observe_upstream("media_gateway", step.media.workflow, outcome, media_ms / 1000)
            self.observe_upstream("llm_gateway", step.model or "", outcome, max(0.0, step.latency_ms - media_ms) / 1000)
