"""`make e2e` as a test: the three services as real processes in mock mode, one P0 run through the API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.run_e2e import DEFAULT_PRODUCT, ROLES, run_e2e

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


async def test_the_p0_flow_runs_through_three_service_processes(tmp_path: Path) -> None:
    result = await run_e2e(DEFAULT_PRODUCT, work=tmp_path)
    assert result.failures == []
    assert result.doc is not None and result.doc.status == "succeeded" and result.doc.mode == "mock"
    assert list(result.doc.outputs) == ROLES
    assert result.png_size == (result.doc.images[0].width, result.doc.images[0].height)
    # The run was stored where the orchestrator process was told to keep runs, its image with it.
    assert (tmp_path / "runs" / f"{result.doc.run_id}.json").is_file()
    assert (tmp_path / "runs" / "images" / result.doc.images[0].sha256[:2] / result.doc.images[0].sha256).is_file()
    # The export is left on disk.
    assert result.export_index == tmp_path / "exports" / result.doc.run_id / "index.html"
    assert result.export_index.is_file()


def test_the_p0_script_starts_the_gateways_itself_and_saves_the_run(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "GENERATOR_MODE": "mock", "MEDIA_STORE_DIR": str(tmp_path / "media")}
    product = ROOT / "orchestrator" / "samples" / "en_headphones.json"
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.tools.run_p0", "--product", str(product), "--out", str(tmp_path / "out")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [saved] = (tmp_path / "out").glob("*.json")
    assert f"saved {saved}" in done.stdout
    for role in ROLES:
        assert f"  {role} " in done.stdout
    assert "gateways (started here)" in done.stdout
    # The page is exported where the script says, with the image it needs, after the gateways stopped.
    index = tmp_path / "var" / "exports" / saved.stem / "index.html"
    assert f"export: var/exports/{saved.stem}/index.html" in done.stdout and index.is_file()
    assert len(list((index.parent / "images").glob("*.png"))) == 1
    assert len(list((tmp_path / "out" / "images").rglob("*"))) == 2  # <aa>/<sha256>
