"""The three services as real processes in mock mode, started once for tests/deploy, after a Postman replay.

Every request of the collection is sent in order, with the ids earlier requests captured; the statuses
are kept for test_postman_replay, and the same running services answer the observability tests.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from orchestrator.tools.processes import ServiceGroup, gateway_specs
from tests.e2e.run_e2e import orchestrator_spec

from .postman import PostmanRequest, extract, load_collection, requests_of, substitute, variables_of

COLLECTION = load_collection()
REQUESTS = list(requests_of(COLLECTION))
TIMEOUT = aiohttp.ClientTimeout(total=30)
# Environment a developer may have set that would point the services elsewhere.
_SCRUBBED = ("MEDIA_PUBLIC_BASE_URL", "LLM_GATEWAY_URL", "MEDIA_GATEWAY_URL", "OLLAMA_BASE_URL", "COMFYUI_BASE_URL",
             "LLM_GATEWAY_CONFIG", "MEDIA_GATEWAY_CONFIG", "ORCHESTRATOR_CONFIG")


def request_key(request: PostmanRequest) -> str:
    """`Folder/name` of a collection item."""
    return f"{request.folder}/{request.name}"


@dataclass
class Services:
    """The running services, their logs, and what the replay saw."""

    bases: dict[str, str]
    logs: dict[str, Path]
    statuses: dict[str, tuple[int, str]]


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def services(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Services]:
    root = tmp_path_factory.mktemp("services")
    env = {key: value for key, value in os.environ.items() if key not in _SCRUBBED}
    env.update(GENERATOR_MODE="mock", LOG_LEVEL="info", MEDIA_STORE_DIR=str(root / "media"),
               ORCHESTRATOR_RUNS_DIR=str(root / "runs"))
    async with ServiceGroup(log_dir=root / "logs", base_env=env) as group:
        llm, media = await group.start(gateway_specs())
        (orch,) = await group.start([orchestrator_spec(llm.url, media.url)])
        bases = {"llm_base": llm.url, "media_base": media.url, "orch_base": orch.url}
        logs = {"llm": llm.log_path, "media": media.log_path, "orch": orch.log_path}
        services = Services(bases=bases, logs=logs, statuses={})
        await _replay(services)
        yield services


async def _replay(services: Services) -> None:
    variables = {**variables_of(COLLECTION), **services.bases}
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        for request in REQUESTS:
            url = substitute(request.url, variables)
            headers = {key: substitute(value, variables) for key, value in request.headers}
            body = substitute(request.body, variables).encode() if request.body is not None else None
            async with session.request(request.method, url, data=body, headers=headers) as response:
                raw = await response.read()
            services.statuses[request_key(request)] = (response.status, raw[:500].decode(errors="replace"))
            if response.status == request.expected_status:
                document = json.loads(raw) if request.captures else None
                for name, expression in request.captures:
                    variables[name] = extract(document, expression)
