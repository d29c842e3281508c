"""schemathesis against the LLM Gateway's own `/openapi.json`: every operation, generated requests, real HTTP.

The app runs under uvicorn in a thread on 127.0.0.1 in mock mode. Checks: no 5xx, documented status
codes and content types, and bodies that match the documented schemas.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from llm_gateway.app import create_app
from llm_gateway.config import parse_gateway_config

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    raw = {"mode": "mock", "llm_routing": {"default": {"provider": "mock", "model": "fuzz-model"}}}
    port = _port()
    config = uvicorn.Config(create_app(parse_gateway_config(raw)), host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on", ws="none", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()
    for _ in range(1000):  # wait for the server's own "started" flag, bounded at 10 s
        if server.started or not thread.is_alive():
            break
        started.wait(0.01)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _operations(base_url: str) -> list[Any]:
    document = requests.get(f"{base_url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(document)
    return [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]


def test_every_operation_holds_to_its_openapi_description(base_url: str) -> None:
    operations = _operations(base_url)
    assert len(operations) >= 9
    with requests.Session() as session:
        for operation in operations:

            @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            @given(case=operation.as_strategy())
            def check(case: Any) -> None:
                case.call_and_validate(base_url=base_url, session=session, checks=CHECKS, timeout=20)

            check()
