"""The three services as real processes in mock mode for the browser tests; the orchestrator's LLM calls may
pass a gate (tests/orchestrator/gated.py) so a test can hold a run mid-flight and watch it live."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator.tools.processes import ServiceGroup, ServiceProcess, gateway_specs
from tests.e2e.run_e2e import orchestrator_spec
from tests.orchestrator.gated import Gate, gated

__all__ = ["ARTIFACTS", "Stack", "stack"]

REPO_ROOT = Path(__file__).resolve().parents[2]
# Screenshots and other artefacts of the browser tests (var/ is git-ignored).
ARTIFACTS = REPO_ROOT / "var" / "test-artifacts" / "browser"
_SCRUBBED = ("MEDIA_PUBLIC_BASE_URL", "LLM_GATEWAY_URL", "MEDIA_GATEWAY_URL", "OLLAMA_BASE_URL", "COMFYUI_BASE_URL",
             "LLM_GATEWAY_CONFIG", "MEDIA_GATEWAY_CONFIG", "ORCHESTRATOR_CONFIG", "ORCHESTRATOR_API_KEYS")


@dataclass
class Stack:
    """Where the services answer, the gate in front of the LLM Gateway, and the processes themselves."""

    url: str
    gate: Gate
    llm: ServiceProcess
    media: ServiceProcess
    orchestrator: ServiceProcess
    runs: Path


@contextlib.asynccontextmanager
async def stack(work: Path, *, orchestrator_env: Mapping[str, str] | None = None) -> AsyncIterator[Stack]:
    """Start the gateways and the orchestrator (GENERATOR_MODE=mock, folders under `work`); stop them after."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env.update(GENERATOR_MODE="mock", LOG_LEVEL="info", MEDIA_STORE_DIR=str(work / "media"),
               ORCHESTRATOR_RUNS_DIR=str(work / "runs"))
    async with ServiceGroup(log_dir=work / "logs", base_env=env) as group:
        llm, media = await group.start(gateway_specs())
        async with gated(llm.url) as (gate_url, gate):
            [orchestrator] = await group.start([orchestrator_spec(gate_url, media.url, orchestrator_env)])
            yield Stack(url=orchestrator.url, gate=gate, llm=llm, media=media, orchestrator=orchestrator,
                        runs=work / "runs")
            await group.aclose()  # before the gate goes: nothing may call through a closed gate
