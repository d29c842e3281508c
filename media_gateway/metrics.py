"""The Media Gateway's own series: job durations by final status, and the queue depth read at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Histogram

from service_common.metrics import LATENCY_BUCKETS, Metrics, ScrapedGauge
from shared_contracts.media import Job

__all__ = ["MediaMetrics"]


class MediaMetrics(Metrics):
    """Media Gateway: job durations by final status, and the queue depth read at scrape time."""

    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry=registry)
        self.job_duration = Histogram(
            "pdp_media_job_duration_seconds", "Image jobs from creation to their final status.",
            ("provider", "workflow", "status"), buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self._queue: ScrapedGauge | None = None
        self._instances: ScrapedGauge | None = None

    def observe_job(self, job: Job) -> None:
        """A job reached its final status; its own `latency_ms` is the duration."""
        self.job_duration.labels(job.provider, job.workflow, job.status).observe((job.latency_ms or 0.0) / 1000)

    def track_queue(self, read: Callable[[], Mapping[tuple[str, ...], float]]) -> None:
        """Report `read()` ({(provider, state): count}) as the queue depth whenever the registry is scraped.

        A later call replaces the source (an app whose lifespan runs again gets a new job runner).
        """
        if self._queue is None:
            self._queue = self.track(
                "pdp_media_queue_depth", "Image jobs queued or running, per provider.", ("provider", "state"), read
            )
        else:
            self._queue.read = read

    def track_instances(self, read: Callable[[], Mapping[tuple[str, ...], float]]) -> None:
        """Report each pooled upstream instance ({(provider, instance, "up"|"queue"): value}) when scraped.

        `up` is 1 while the instance's event socket is connected; `queue` is the prompts it says it holds.
        """
        if self._instances is None:
            self._instances = self.track(
                "pdp_media_instance", "Per upstream instance of a pool: up (1/0) and its own queue length.",
                ("provider", "instance", "what"), read,
            )
        else:
            self._instances.read = read
