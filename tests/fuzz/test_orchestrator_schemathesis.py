"""schemathesis against the orchestrator's own `/openapi.json`, with its gateways unreachable.

Generated runs then fail at their first step (`provider_unavailable`), so every answer is quick; the
checks are the same as for the gateways: no 5xx, documented statuses, content types and schemas.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from orchestrator.app import create_app
from orchestrator.config import load_orchestrator_config
from orchestrator.tools.processes import free_port

from ._schemathesis import check_every_operation, serve_in_thread

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    closed = f"http://127.0.0.1:{free_port()}"
    environ = {"LLM_GATEWAY_URL": closed, "MEDIA_GATEWAY_URL": closed,
               "ORCHESTRATOR_RUNS_DIR": str(tmp_path_factory.mktemp("runs"))}
    config = load_orchestrator_config(REPO / "config" / "orchestrator.yaml", environ)
    config = msgspec.structs.replace(config, runs=msgspec.structs.replace(config.runs, shutdown_grace_s=0.0))
    yield from serve_in_thread(create_app(config))


def test_every_operation_holds_to_its_openapi_description(base_url: str) -> None:
    check_every_operation(base_url, at_least=7, may_be_unready=("/readyz",))
