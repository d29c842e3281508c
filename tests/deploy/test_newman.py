"""newman (from npm) runs the Postman collection against the three services as processes in mock mode: every
request's status, error code, answer shape and X-Generator-Mode, every mock scenario, a cancelled slow job."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .conftest import REQUESTS, Services
from .postman import COLLECTION_PATH

if TYPE_CHECKING:
    from tests.upstreams.fixtures_engines import NodeTools

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="package")]


def _failures(report: dict[str, Any]) -> list[str]:
    return [
        f"{failure['source'].get('name', '?')}: {failure['error'].get('test') or ''} {failure['error']['message']}"
        for failure in report["run"]["failures"]
    ]


async def test_newman_runs_the_collection_green(services: Services, node_tools: NodeTools, tmp_path: Path) -> None:
    report_path = tmp_path / "newman.json"
    overrides = [arg for name, url in services.bases.items() for arg in ("--env-var", f"{name}={url}")]
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
