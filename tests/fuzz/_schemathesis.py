"""schemathesis against a service's own `/openapi.json`, served by uvicorn in a thread on 127.0.0.1.

Checks for every documented operation: no 5xx, documented status codes and content types, and
bodies that match the documented schemas.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

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

__all__ = ["CHECKS", "check_every_operation", "serve_in_thread"]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def serve_in_thread(app: Any) -> Iterator[str]:
    """Run `app` under uvicorn in a daemon thread until the generator is closed; yields its base URL.

    The socket is bound here and handed to uvicorn, so no other process can take the port in between.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", ws="none", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    started = threading.Event()
    for _ in range(1000):  # wait for the server's own "started" flag, bounded at 10 s
        if server.started or not thread.is_alive():
            break
        started.wait(0.01)
    try:
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()


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
