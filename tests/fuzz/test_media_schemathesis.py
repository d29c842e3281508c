"""schemathesis against the Media Gateway's own `/openapi.json`: every operation, generated requests, real HTTP.

The app runs under uvicorn in a thread on 127.0.0.1 in mock mode (see `_schemathesis` for the checks).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from media_gateway.app import create_app
from media_gateway.config import load_media_config

from ._schemathesis import check_every_operation, serve_in_thread

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = load_media_config(REPO / "config" / "media_gateway.yaml",
                               {"GENERATOR_MODE": "mock", "MEDIA_STORE_DIR": str(tmp_path_factory.mktemp("media"))})
    config = msgspec.structs.replace(config, jobs=msgspec.structs.replace(config.jobs, shutdown_grace_s=0.0))
    yield from serve_in_thread(create_app(config))


def test_every_operation_holds_to_its_openapi_description(base_url: str) -> None:
    check_every_operation(base_url, at_least=10)
