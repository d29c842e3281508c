"""Regenerate docs/samples/: each agent's request (input) and output from one mock-mode P0 run.

    python -m orchestrator.tools.samples [--product FILE] [--out DIR]     (or: make samples)

Always starts both gateways as children in mock mode, so the samples never depend on a model.
Writes <NN>_<role>.input.json (the LLM Gateway request the agent sent), <NN>_<role>.output.json,
05_vision.media_input.json (the Media Gateway request) and run.json (the whole run document).
The random gateway port in image URLs is replaced by the default one so the files stay stable.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from orchestrator.agents import AgentInputs
from orchestrator.clients import LLMGatewayClient, MediaGatewayClient
from orchestrator.flow import P0ProductDetailFlow
from orchestrator.tools.processes import REPO_ROOT
from orchestrator.tools.standalone import config_for, format_summary, load_product, open_gateways, run_flow
from service_common.logging import configure_logging
from shared_contracts.flows import RunDocument
from shared_contracts.media import ImageRequest

DEFAULT_PRODUCT = REPO_ROOT / "orchestrator" / "samples" / "ko_tumbler.json"
STABLE_MEDIA_URL = "http://127.0.0.1:8200"
_encode = msgspec.json.Encoder().encode


def _write(path: Path, value: Any, media_url: str) -> None:
    text = msgspec.json.format(_encode(value), indent=2).decode("utf-8").replace(media_url, STABLE_MEDIA_URL)
    path.write_text(text + "\n", encoding="utf-8")


def write_samples(doc: RunDocument, flow: P0ProductDetailFlow, out: Path, media_url: str) -> list[Path]:
    """Rebuild each agent's request from the run's outputs (agents are deterministic) and write the files."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    agents = flow.agents
    for number, (role, agent) in enumerate(agents.items(), start=1):
        earlier = {need: msgspec.convert(doc.outputs[need], agents[need].output_type) for need in agent.needs}
        inputs = AgentInputs(product=doc.product, outputs=earlier, run_id=doc.run_id)
        for kind, value in (("input", agent.request(inputs)), ("output", doc.outputs[role])):
            path = out / f"{number:02d}_{role}.{kind}.json"
            _write(path, value, media_url)
            written.append(path)
    vision = doc.outputs["vision"]
    media_request = ImageRequest(
        role="vision",
        task="product_image",
        prompt=vision["prompt"],
        negative_prompt=vision["negative_prompt"],
        width=vision["width"],
        height=vision["height"],
        metadata={"run_id": doc.run_id},
    )
    for name, value in (("05_vision.media_input.json", media_request), ("run.json", doc)):
        _write(out / name, value, media_url)
        written.append(out / name)
    return written


async def _main(product_path: Path, out: Path) -> int:
    environ = {k: v for k, v in os.environ.items() if k not in ("LLM_GATEWAY_URL", "MEDIA_GATEWAY_URL")}
    environ["GENERATOR_MODE"] = "mock"
    product = load_product(product_path)
    with tempfile.TemporaryDirectory(prefix="samples-logs-") as logs:
        async with open_gateways(environ, log_dir=Path(logs)) as urls:
            config = config_for(REPO_ROOT / "config" / "orchestrator.yaml", environ, urls)
            doc = await run_flow(product, config)
    print(format_summary(doc))
    if doc.status != "succeeded":
        return 1
    # The agents only build requests here; the clients are never started.
    llm = LLMGatewayClient.from_config(config.llm_gateway)
    flow = P0ProductDetailFlow.build(llm, MediaGatewayClient.from_config(config.media_gateway), config.flow)
    for path in write_samples(doc, flow, out, urls.media):
        print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m orchestrator.tools.samples")
    parser.add_argument("--product", type=Path, default=DEFAULT_PRODUCT)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "samples")
    args = parser.parse_args(argv)
    configure_logging(level="WARNING", service="samples")
    return asyncio.run(_main(args.product, args.out))


if __name__ == "__main__":
    sys.exit(main())
