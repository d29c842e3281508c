"""Run the P0 "product detail + 1 image" flow once, save its JSON document and images, and export its page.

    python -m orchestrator.tools.run_p0 [--product FILE] [--out DIR] [--export DIR]

Without LLM_GATEWAY_URL / MEDIA_GATEWAY_URL it starts both gateways as child processes on free loopback
ports, in the mode GENERATOR_MODE names (mock when unset), and stops them afterwards. The run goes to
`<out>/<run_id>.json` with its images kept in `<out>/images/` (the orchestrator's layout: an orchestrator
on that runs folder shows it), and its page to `<export>/<run_id>/index.html`, which opens from disk.
Exit code 0 when the run succeeded, 1 when it failed, 2 on a usage or start-up problem.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import msgspec

from orchestrator.runs import FileRunImageStore, FileRunStore
from orchestrator.tools.export import export_run
from orchestrator.tools.processes import REPO_ROOT, ServiceStartError
from orchestrator.tools.standalone import config_for, format_summary, load_product, open_gateways, run_flow
from service_common.config import ConfigError
from service_common.logging import configure_logging

DEFAULT_PRODUCT = REPO_ROOT / "orchestrator" / "samples" / "ko_tumbler.json"


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.tools.run_p0", description=__doc__.splitlines()[0])
    parser.add_argument("--product", type=Path, default=DEFAULT_PRODUCT, help="product JSON file")
    parser.add_argument("--out", type=Path, default=Path("var/runs"), help="folder for <run_id>.json and images/")
    parser.add_argument("--export", type=Path, default=Path("var/exports"), help="the page goes to EXPORT/<run_id>/")
    parser.add_argument("--config", type=Path, default=REPO_ROOT / "config" / "orchestrator.yaml")
    return parser.parse_args(argv)


async def _main(args: argparse.Namespace) -> int:
    environ = dict(os.environ)
    product = load_product(args.product)
    with tempfile.TemporaryDirectory(prefix="p0-logs-") as logs:
        async with open_gateways(environ, log_dir=Path(logs)) as urls:
            where = "started here" if urls.started else "from the environment"
            print(f"gateways ({where}): llm={urls.llm} media={urls.media}")
            images = FileRunImageStore(args.out / "images")
            doc = await run_flow(product, config_for(args.config, environ, urls), images=images)
    store = FileRunStore(args.out)
    await store.save(doc)
    index = await export_run(doc, images, args.export)
    print(format_summary(doc))
    print(f"saved {store.path_of(doc.run_id)}")
    print(f"export: {index}  (open it in a browser; it needs no server)")
    return 0 if doc.status == "succeeded" else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parse(argv)
    configure_logging(level=os.environ.get("LOG_LEVEL", "WARNING"), service="p0-script")
    try:
        return asyncio.run(_main(args))
    except (OSError, msgspec.ValidationError, msgspec.DecodeError, ConfigError, ServiceStartError) as exc:
        print(f"run_p0: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
