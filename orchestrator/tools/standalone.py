"""Running the P0 flow without the orchestrator service: gateways from env URLs or started as children."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import msgspec

from orchestrator.clients import LLMGatewayClient, MediaGatewayClient
from orchestrator.config import OrchestratorConfig, load_orchestrator_config
from orchestrator.flow import P0ProductDetailFlow
from orchestrator.runs import RunImageStore, new_run_id
from orchestrator.tools.processes import ServiceGroup, gateway_specs
from service_common.logging import bound_log_context
from service_common.tracing import parse_traceparent
from shared_contracts.flows import Product, RunDocument

__all__ = ["GatewayURLs", "config_for", "format_summary", "load_product", "open_gateways", "run_flow"]

_URL_VARS = {"llm": "LLM_GATEWAY_URL", "media": "MEDIA_GATEWAY_URL"}


@dataclass(frozen=True, slots=True)
class GatewayURLs:
    """Where the two gateways answer, and whether this process started them."""

    llm: str
    media: str
    started: bool


def load_product(path: Path) -> Product:
    """A product JSON file, validated strictly (unknown keys are errors)."""
    return msgspec.json.decode(path.read_bytes(), type=Product)


@contextlib.asynccontextmanager
async def open_gateways(environ: Mapping[str, str], *, log_dir: Path) -> AsyncIterator[GatewayURLs]:
    """Use `LLM_GATEWAY_URL` / `MEDIA_GATEWAY_URL` when both are set; else start both gateways as children.

    Children inherit `environ`, so `GENERATOR_MODE` (and `OLLAMA_BASE_URL`, `COMFYUI_BASE_URL`…) pass through.
    """
    given = {key: environ.get(var, "").strip() for key, var in _URL_VARS.items()}
    if all(given.values()):
        yield GatewayURLs(llm=given["llm"], media=given["media"], started=False)
        return
    async with ServiceGroup(log_dir=log_dir, base_env=environ) as group:
        llm, media = await group.start(gateway_specs())
        yield GatewayURLs(llm=llm.url, media=media.url, started=True)


def config_for(path: Path, environ: Mapping[str, str], urls: GatewayURLs) -> OrchestratorConfig:
    """The orchestrator YAML with the gateway URLs in force."""
    return load_orchestrator_config(path, {**environ, "LLM_GATEWAY_URL": urls.llm, "MEDIA_GATEWAY_URL": urls.media})


async def run_flow(product: Product, config: OrchestratorConfig, *, images: RunImageStore | None = None) -> RunDocument:
    """One P0 run with fresh clients, closed afterwards; with `images`, its images are kept there.

    There is no inbound request here, so the run starts its own trace: every gateway call carries the run
    id as `X-Request-ID` and one `traceparent`, and the gateways' log lines for the run share a `trace_id`.
    """
    run_id = new_run_id()
    trace = parse_traceparent(None)
    with bound_log_context(
        request_id=run_id, trace_id=trace.trace_id, span_id=trace.span_id, trace_flags=trace.flags
    ):
        async with (
            LLMGatewayClient.from_config(config.llm_gateway) as llm,
            MediaGatewayClient.from_config(config.media_gateway) as media,
        ):
            flow = P0ProductDetailFlow.build(llm, media, config.flow, images=images)
            return await flow.run(product, run_id=run_id)


def format_summary(doc: RunDocument) -> str:
    """A short table: one line per step (status, provider/model, ms), then the run's outcome."""
    lines = [f"run {doc.run_id}  flow={doc.flow}  mode={doc.mode}  status={doc.status}"]
    for role, step in doc.steps.items():
        who = f"{step.provider}/{step.model}" if step.provider else "-"
        if step.media is not None:
            who += f" + {step.media.provider}/{step.media.workflow}"
        ms = f"{step.latency_ms:.0f} ms" if step.latency_ms is not None else "-"
        lines.append(f"  {role:<11} {step.status:<9} {who:<48} {ms:>9}")
    for image in doc.images:
        lines.append(f"  image       {image.width}x{image.height} {image.url}")
        if image.source_url and image.source_url != image.url:
            lines.append(f"              from {image.source_url}")
    if doc.error is not None:
        lines.append(f"  error       {doc.failed_step}: {doc.error.code}: {doc.error.message}")
    if doc.duration_ms is not None:
        lines.append(f"  flow duration {doc.duration_ms:.0f} ms")
    return "\n".join(lines)
