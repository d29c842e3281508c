"""newman (from npm) runs the Postman collection against the three services as processes in mock mode: every
request's status, error code, answer shape and X-Generator-Mode, every mock scenario, a cancelled slow job.

The services are this test's own (not the package's replayed ones), so the observability tests count only
the Python replay's requests.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from orchestrator.tools.processes import ServiceGroup, gateway_specs
from tests.e2e.run_e2e import orchestrator_spec

from .conftest import _SCRUBBED, REQUESTS
from .postman import COLLECTION_PATH

if TYPE_CHECKING:
    from tests.upstreams.fixtures_engines import NodeTools

pytestmark = pytest.mark.slow


@pytest.fixture
async def bases(tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """The three services as processes in mock mode: the collection's base variables."""
    env = {key: value for key, value in os.environ.items() if key not in _SCRUBBED}
    env.update(GENERATOR_MODE="mock", LOG_LEVEL="warning", MEDIA_STORE_DIR=str(tmp_path / "media"),
               ORCHESTRATOR_RUNS_DIR=str(tmp_path / "runs"))
    async with ServiceGroup(log_dir=tmp_path / "logs", base_env=env) as group:
        llm, media = await group.start(gateway_specs())
        (orch,) = await group.start([orchestrator_spec(llm.url, media.url)])
        yield {"llm_base": llm.url, "media_base": media.url, "orch_base": orch.url}


def _failures(report: dict[str, Any]) -> list[str]:
    return [
        f"{failure['source'].get('name', '?')}: {failure['error'].get('test') or ''} {failure['error']['message']}"
        for failure in report["run"]["failures"]
    ]


async def test_newman_runs_the_collection_green(bases: dict[str, str], node_tools: NodeTools, tmp_path: Path) -> None:
    report_path = tmp_path / "newman.json"
    overrides = [arg for name, url in bases.items() for arg in ("--env-var", f"{name}={url}")]
    process = await asyncio.create_subprocess_exec(
        str(node_tools.newman), "run", str(COLLECTION_PATH), *overrides,
        "--reporters", "cli,json", "--reporter-json-export", str(report_path),
        "--timeout-request", "30000", "--disable-unicode", "--color", "off",
        env=node_tools.env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=300)
    report = json.loads(report_path.read_text())
    assert _failures(report) == [], output.decode(errors="replace")[-4000:]
    assert process.returncode == 0
    stats = report["run"]["stats"]
    assert stats["requests"] == {"total": len(REQUESTS), "pending": 0, "failed": 0}
    # Each request asserts more than its status: the code or the shape of what it got.
    assert stats["assertions"]["failed"] == 0 and stats["assertions"]["total"] >= 2 * len(REQUESTS)
    executed = {execution["item"]["name"] for execution in report["run"]["executions"]}
    assert {r.name for r in REQUESTS} <= executed
