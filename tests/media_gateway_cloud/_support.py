"""Helpers for the cloud image provider tests: a render call and a progress recorder."""

from __future__ import annotations

from typing import Any, Literal

from media_gateway.providers.base import RenderCall


def render_call(options: dict[str, Any] | None = None, **params: Any) -> RenderCall:
    """A product-shot job with every standard parameter set; `params` overrides them."""
    full: dict[str, Any] = {
        "prompt": "Aurora kettle, studio product photo",
        "negative_prompt": "text, watermark",
        "width": 1216,
        "height": 832,
        "seed": 42,
        "count": 1,
    }
    full.update(params)
    return RenderCall(job_id="job-1", workflow="cloud_shot", params=full, options=options or {})


class Progress:
    """Records every progress report, to assert the job moved forward."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, float]] = []

    def __call__(self, status: Literal["queued", "running"], fraction: float) -> None:
        self.reports.append((status, fraction))
