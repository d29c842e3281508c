"""Export a stored run as a folder that opens from disk: index.html, console.css, images/, run.json.

    python -m orchestrator.tools.export RUN_ID [--runs-dir var/runs] [--out var/exports]

Reads the run and its kept images from the runs folder (as the orchestrator keeps them); an image that was
never kept is fetched once from its `source_url` and checked against its sha256. Prints the path of
`index.html`. Exit code 0, or 2 when the run cannot be found or exported.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path

from orchestrator.flow import ROLES
from orchestrator.pages.export import export_files, write_export
from orchestrator.pages.render import PageRenderer
from orchestrator.runs import FileRunImageStore, FileRunStore, RunImageStore
from service_common.client import HttpClient
from shared_contracts.errors import GatewayError
from shared_contracts.flows import RunDocument, RunImage

__all__ = ["export_run", "main"]

_FETCH_S = 30.0


async def _image_bytes(images: RunImageStore, image: RunImage) -> bytes | None:
    data = await images.get(image.sha256)
    if data is not None or not image.source_url:
        return data
    client = HttpClient("media gateway", max_connections=1)
    await client.start()
    try:
        reply = await client.call("GET", image.source_url, deadline=asyncio.get_running_loop().time() + _FETCH_S)
    except GatewayError:
        return None
    finally:
        await client.close()
    if hashlib.sha256(reply.body).hexdigest() != image.sha256:
        return None
    await images.put(reply.body, sha256=image.sha256)
    return reply.body


async def export_run(doc: RunDocument, images: RunImageStore, out: Path) -> Path:
    """Write `doc`'s export to `out/<run_id>/`; returns the path of its index.html."""
    renderer = PageRenderer(roles=ROLES, samples={}, auth=False)

    async def image_bytes(image: RunImage) -> bytes | None:
        return await _image_bytes(images, image)

    files = await export_files(doc, renderer, image_bytes)
    return await asyncio.to_thread(write_export, files, out / doc.run_id)


async def _main(run_id: str, runs_dir: Path, out: Path) -> Path:
    doc = await FileRunStore(runs_dir).get(run_id)
    return await export_run(doc, FileRunImageStore(runs_dir / "images"), out)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m orchestrator.tools.export", description=__doc__.splitlines()[0])
    parser.add_argument("run_id")
    parser.add_argument("--runs-dir", type=Path, default=Path("var/runs"), help="the orchestrator's runs.dir")
    parser.add_argument("--out", type=Path, default=Path("var/exports"), help="exports go to OUT/<run_id>/")
    args = parser.parse_args(argv)
    try:
        index = asyncio.run(_main(args.run_id, args.runs_dir, args.out))
    except (GatewayError, OSError) as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 2
    print(f"export: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
