"""A small run of the load test (bench/load/llm_load.py) inside `make test`: under mixed faults nothing is lost."""

from __future__ import annotations

import pytest

from bench.load.llm_load import run_load

pytestmark = pytest.mark.slow


async def test_concurrent_requests_under_upstream_faults_are_all_answered_within_the_deadline() -> None:
    report = await run_load(requests=80, concurrency=20, deadline_s=1.0)
    assert report.sent == 80 and report.lost == 0, report.render()
    assert report.ok, report.render()
    assert set(report.by_status) <= {200, 429, 502, 503, 504}, report.render()
    # The faults really happened and the fallback really answered some of them. A stalled primary no longer
    # ends in 504: its try runs out of its share of the deadline and the fallback answers inside it.
    assert report.by_code["ok:backup"] > 0, report.render()
