"""schemathesis against the Media Gateway's own `/openapi.json`: every operation, generated requests, real HTTP.

The app runs under uvicorn in a thread on 127.0.0.1 in mock mode. Checks: no 5xx, documented status
codes and content types, and bodies that match the documented schemas.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
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

from media_gateway.app import create_app
from media_gateway.config import load_media_config

REPO = Path(__file__).resolve().parents[2]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_in_thread(app: Any) -> Iterator[str]:
    """Run `app` under uvicorn in a daemon thread until the generator is closed; yields its base URL."""
    port = _port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                           ws="none", access_log=False))
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
    thread.join(20)


def check_every_operation(
    base_url: str, *, at_least: int, examples: int = 10, may_be_unready: tuple[str, ...] = ()
) -> None:
    """Generate requests for each operation in the served document and validate the answers.

    Paths in `may_be_unready` (a `/readyz` whose dependencies are down on purpose) may answer their
    documented 503; every other check still applies to them.
    """
    document = requests.get(f"{base_url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= at_least
    with requests.Session() as session:
        for operation in operations:
            checks = CHECKS[1:] if operation.path in may_be_unready else CHECKS
            _checker(operation, base_url, session, checks, examples)()


def _checker(operation: Any, base_url: str, session: requests.Session, checks: list[Any], examples: int) -> Any:
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=operation.as_strategy())
    def check(case: Any) -> None:
        case.call_and_validate(base_url=base_url, session=session, checks=checks, timeout=30)

    return check


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = load_media_config(REPO / "config" / "media_gateway.yaml",
                               {"GENERATOR_MODE": "mock", "MEDIA_STORE_DIR": str(tmp_path_factory.mktemp("media"))})
    config = msgspec.structs.replace(config, jobs=msgspec.structs.replace(config.jobs, shutdown_grace_s=0.0))
    yield from serve_in_thread(create_app(config))


def test_every_operation_holds_to_its_openapi_description(base_url: str) -> None:
    check_every_operation(base_url, at_least=10)
