"""A small run of bench/load/media_load.py inside `make test`: under ComfyUI faults nothing is lost or late."""

from __future__ import annotations

import pytest

from bench.load.media_load import run_media_load

pytestmark = pytest.mark.slow


async def test_concurrent_image_jobs_under_comfyui_faults_are_all_answered_within_the_deadline() -> None:
    report = await run_media_load(requests=60, concurrency=20, deadline_s=2.0)
    assert report.sent == 60 and report.lost == 0, report.render()
    assert report.ok, report.render()
    assert set(report.by_status) <= {200, 429, 502, 503, 504}, report.render()
    # The faults really happened, and healthy renders still got through them.
    assert report.by_code["ok:succeeded"] > 0 and report.by_code["upstream_error"] > 0, report.render()
