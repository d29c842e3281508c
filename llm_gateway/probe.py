"""`llm-gateway check-config --probe PATH`: after the file checks out, ask each provider a live route uses
whether it answers there (its readiness check, e.g. `GET /v1/models`), and print what each one said.

A file can be valid and still point at the wrong place: an OpenAI-compatible server that answers 404 on
`/v1/models` says so here, with the URL and what `base_url` should look like.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from .app import build_gateway
from .config import load_gateway_config

__all__ = ["PROBE_FLAG", "probe_providers", "split_probe_flag"]

PROBE_FLAG = "--probe"


def split_probe_flag(args: Sequence[str]) -> tuple[list[str], bool]:
    """`args` without `--probe`, and whether it was there (only after `check-config`)."""
    rest = list(args)
    if rest[:1] != ["check-config"] or PROBE_FLAG not in rest:
        return rest, False
    rest.remove(PROBE_FLAG)
    return rest, True


def probe_providers(path: Path, environ: Mapping[str, str], *, out: TextIO) -> int:
    """Run every live-routed provider's readiness check; print one line per provider; 1 when any failed."""
    config = load_gateway_config(path, environ=environ)
    gateway = build_gateway(config)

    async def check() -> dict[str, str]:
        await gateway.start()
        try:
            return await gateway.check_ready(timeout=config.health_timeout, mode="live")
        finally:
            await gateway.close()

    failing = asyncio.run(check())
    for name in sorted(gateway.router.provider_names()):
        print(f"{path}: providers.{name}: {failing.get(name, 'answers')}", file=out)
    return 1 if failing else 0
