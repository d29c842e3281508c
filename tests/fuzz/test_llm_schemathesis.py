"""schemathesis against the LLM Gateway's own `/openapi.json`: every operation, generated requests, real HTTP.

The app runs under uvicorn in a thread on 127.0.0.1 in mock mode (see `_schemathesis` for the checks).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llm_gateway.app import create_app
from llm_gateway.config import parse_gateway_config

from ._schemathesis import check_every_operation, serve_in_thread


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    raw = {"mode": "mock", "llm_routing": {"default": {"provider": "mock", "model": "fuzz-model"}}}
    yield from serve_in_thread(create_app(parse_gateway_config(raw)))


def test_every_operation_holds_to_its_openapi_description(base_url: str) -> None:
    check_every_operation(base_url, at_least=9, examples=15)
