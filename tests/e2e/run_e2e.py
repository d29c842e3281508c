"""End to end in mock (or replay) mode: the three services as separate processes on loopback, a P0 run through them.

    python tests/e2e/run_e2e.py [--product FILE | --all]        (or: make e2e)
    GENERATOR_MODE=replay make e2e                              (answers from the recorded fixtures in fixtures/)

Starts the LLM and Media Gateways, then the orchestrator pointed at them (free ports, GENERATOR_MODE=mock, or
replay when the environment says so, a temporary image store), POSTs a sample product (every sample with
`--all`), checks the document (six outputs, the mode, the image kept with the run and served by the
orchestrator as a PNG, the run stored, its page), downloads the first run's export, prints the summary,
stops all three. Exit code 0 = pass. Replay mode reads fixtures/llm and fixtures/media unless
LLM_FIXTURES_DIR / MEDIA_FIXTURES_DIR say otherwise.

`make e2e` leaves its results to look at: the run in `var/runs/` (where `make run-orchestrator` finds it;
`var/e2e/runs/` when an orchestrator is using that folder) and the export in `var/exports/<run_id>/`,
whose index.html opens from disk. Both paths are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import msgspec
from PIL import Image

from orchestrator.runs import FileRunStore
from orchestrator.tools.processes import REPO_ROOT, ServiceGroup, ServiceSpec, ServiceStartError, gateway_specs
from orchestrator.tools.standalone import format_summary
from service_common.config import ConfigError
from shared_contracts.flows import RunDocument

__all__ = ["E2EResult", "ROLES", "SAMPLES", "orchestrator_spec", "run_e2e"]

ROLES = ["brand", "brief", "strategist", "copywriter", "vision", "reviewer"]
DEFAULT_PRODUCT = REPO_ROOT / "orchestrator" / "samples" / "ko_tumbler.json"
SAMPLES = sorted((REPO_ROOT / "orchestrator" / "samples").glob("*.json"))
# The modes e2e runs in: both need no model (replay answers from the fixtures recorded from one).
MODES = ("mock", "replay")
RUNS_PATH = "/api/v1/flows/p0-product-detail/runs"
_PNG = b"\x89PNG\r\n\x1a\n"


def orchestrator_spec(llm_url: str, media_url: str, env: Mapping[str, str] | None = None) -> ServiceSpec:
    """The orchestrator pointed at the two gateways."""
    extra = {**(env or {}), "LLM_GATEWAY_URL": llm_url, "MEDIA_GATEWAY_URL": media_url}
    return ServiceSpec("orchestrator", "orchestrator", REPO_ROOT / "config" / "orchestrator.yaml", extra)


@dataclass
class E2EResult:
    """What the run produced and every check that failed (empty = pass)."""

    doc: RunDocument | None = None
    # Every run's document, in the order the products were given (`doc` is the first).
    docs: list[RunDocument] = field(default_factory=list)
    mode: str = "mock"
    failures: list[str] = field(default_factory=list)
    total_s: float = 0.0
    png_size: tuple[int, int] | None = None
    runs_dir: Path | None = None
    export_index: Path | None = None

    @property
    def passed(self) -> bool:
        return self.doc is not None and not self.failures


def _mock_env(environ: Mapping[str, str], work: Path, runs: Path) -> dict[str, str]:
    env = {k: v for k, v in environ.items() if k not in ("LLM_GATEWAY_URL", "MEDIA_GATEWAY_URL")}
    mode = env.get("GENERATOR_MODE") or "mock"
    if mode not in MODES:
        raise ValueError(f"e2e runs in mock or replay mode, not GENERATOR_MODE={mode}")
    env.update(
        GENERATOR_MODE=mode,
        MEDIA_STORE_DIR=str(work / "media"),
        ORCHESTRATOR_RUNS_DIR=str(runs),
        LOG_LEVEL=env.get("LOG_LEVEL", "warning"),
    )
    if mode == "replay":
        env.setdefault("LLM_FIXTURES_DIR", str(REPO_ROOT / "fixtures" / "llm"))
        env.setdefault("MEDIA_FIXTURES_DIR", str(REPO_ROOT / "fixtures" / "media"))
    return env


async def run_e2e(
    products: Path | Sequence[Path],
    *,
    work: Path,
    runs: Path | None = None,
    exports: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> E2EResult:
    """Start the three services, run the flow for each product through the orchestrator's API, check every
    result, stop them.

    Logs and the media store go under `work`; the runs folder and the first run's export to `runs` and
    `exports` (default: under `work` too). The mode is the environment's GENERATOR_MODE (mock or replay).
    """
    started = time.monotonic()
    result = E2EResult(runs_dir=runs or work / "runs")
    assert result.runs_dir is not None
    env = _mock_env(os.environ if environ is None else environ, work, result.runs_dir)
    result.mode = env["GENERATOR_MODE"]
    paths = [products] if isinstance(products, Path) else list(products)
    async with ServiceGroup(log_dir=work / "logs", base_env=env) as group:
        llm, media = await group.start(gateway_specs())
        [orchestrator] = await group.start([orchestrator_spec(llm.url, media.url)])
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for path in paths:
                await _check(session, orchestrator.url, msgspec.json.decode(path.read_bytes()), result)
            result.doc = result.docs[0] if result.docs else None
            if result.doc is not None:
                await _export(session, orchestrator.url, result.doc, exports or work / "exports", result)
    result.total_s = time.monotonic() - started
    return result


async def _check(session: aiohttp.ClientSession, base: str, product: object, result: E2EResult) -> None:
    fail = result.failures.append
    async with session.get(f"{base}/readyz") as resp:
        if resp.status != 200:
            fail(f"orchestrator /readyz answered {resp.status}: {await resp.text()}")
    async with session.post(base + RUNS_PATH, json={"product": product, "wait": True}) as resp:
        body = await resp.read()
        if resp.status != 200:
            fail(f"POST {RUNS_PATH} answered {resp.status}: {body[:500]!r}")
            return
    doc = msgspec.json.decode(body, type=RunDocument)
    result.docs.append(doc)
    if doc.status != "succeeded":
        fail(f"run status is {doc.status} (failed step {doc.failed_step}: {doc.error})")
    if doc.mode != result.mode:
        fail(f"run mode is {doc.mode}, expected {result.mode}")
    missing = [role for role in ROLES if not doc.outputs.get(role)]
    if missing:
        fail(f"outputs missing for {', '.join(missing)}")
    if not doc.images:
        fail("no image in the run document")
    else:
        image = doc.images[0]
        if image.url != f"/runs/{doc.run_id}/images/{image.id}" or not image.source_url:
            fail(f"the image is not kept with the run: url {image.url}, source_url {image.source_url}")
        async with session.get(base + image.url) as resp:
            png = await resp.read()
            if resp.status != 200 or resp.content_type != "image/png" or not png.startswith(_PNG):
                fail(f"image URL {image.url} answered {resp.status} {resp.content_type}, not a PNG")
            else:
                with Image.open(io.BytesIO(png)) as image:
                    result.png_size = image.size
                if result.png_size != (doc.images[0].width, doc.images[0].height):
                    fail(f"PNG is {result.png_size}, the document says {doc.images[0].width}x{doc.images[0].height}")
    async with session.get(f"{base}/api/v1/runs/{doc.run_id}") as resp:
        if resp.status != 200:
            fail(f"GET /api/v1/runs/{doc.run_id} answered {resp.status}")
    async with session.get(f"{base}/runs/{doc.run_id}", headers={"accept": "text/html"}) as resp:
        page = await resp.text()
        if resp.status != 200 or 'id="headline"' not in page:
            fail(f"the run's page /runs/{doc.run_id} answered {resp.status}")


async def _export(
    session: aiohttp.ClientSession, base: str, doc: RunDocument, exports: Path, result: E2EResult
) -> None:
    """Download the run's export and unpack it under `exports/<run_id>/`."""
    async with session.get(f"{base}/runs/{doc.run_id}/export") as resp:
        data = await resp.read()
        if resp.status != 200 or resp.content_type != "application/zip":
            result.failures.append(f"GET /runs/{doc.run_id}/export answered {resp.status} {resp.content_type}")
            return
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        # Entries are `<run_id>/...`, as the orchestrator names them (checked: nothing may land elsewhere).
        if any(not name.startswith(f"{doc.run_id}/") or ".." in name for name in archive.namelist()):
            result.failures.append("the export has entries outside its folder")
            return
        archive.extractall(exports)
    index = exports / doc.run_id / "index.html"
    if not index.is_file() or not any((exports / doc.run_id / "images").glob("*.png")):
        result.failures.append(f"the export in {index.parent} lacks index.html or the image")
    result.export_index = index


async def _free(folder: Path) -> bool:
    """Whether no orchestrator process holds `folder` (one process per runs folder)."""
    store = FileRunStore(folder)
    try:
        await store.open()
    except ConfigError:
        return False
    await store.close()
    return True


def _shown(path: Path) -> str:
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for `make e2e`; returns the exit code."""
    parser = argparse.ArgumentParser(prog="run_e2e")
    parser.add_argument("--product", type=Path, default=DEFAULT_PRODUCT)
    parser.add_argument("--all", action="store_true", help="run every sample product in orchestrator/samples/")
    args = parser.parse_args(argv)
    var = REPO_ROOT / "var"
    runs = var / "runs" if asyncio.run(_free(var / "runs")) else var / "e2e" / "runs"
    with tempfile.TemporaryDirectory(prefix="pdp-e2e-") as tmp:
        try:
            products = SAMPLES if args.all else [args.product]
            result = asyncio.run(run_e2e(products, work=Path(tmp), runs=runs, exports=var / "exports"))
        except (ServiceStartError, ValueError) as exc:
            print(f"e2e: FAIL: {exc}", file=sys.stderr)
            return 1
    for doc in result.docs:
        print(format_summary(doc))
    if result.png_size is not None:
        print(f"  image fetched: PNG {result.png_size[0]}x{result.png_size[1]}")
    for failure in result.failures:
        print(f"e2e: check failed: {failure}", file=sys.stderr)
    if result.doc is not None:
        print(f"  run stored in {_shown(runs)}/ (its image kept with it in {_shown(runs)}/images/)")
        hint = "" if runs == var / "runs" else f"ORCHESTRATOR_RUNS_DIR={_shown(runs)} "
        print(f"  page: {hint}make run-orchestrator, then open http://127.0.0.1:8300/runs/{result.doc.run_id}")
    if result.export_index is not None:
        print(f"  export: {_shown(result.export_index)}  (open it in a browser; it needs no server)")
    verdict = "PASS" if result.passed else "FAIL"
    duration = f"{result.doc.duration_ms:.0f} ms" if result.doc and result.doc.duration_ms is not None else "-"
    print(f"e2e: {verdict}  ({result.mode} mode, {len(result.docs)} run(s); first flow {duration}, "
          f"whole e2e incl. start-up and shutdown {result.total_s:.1f} s)")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
