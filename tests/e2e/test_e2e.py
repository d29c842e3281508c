"""`make e2e` as a test: the three services as real processes in mock mode, one P0 run through the API; and in
replay mode, every sample product answered from the shipped fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.run_e2e import DEFAULT_PRODUCT, ROLES, SAMPLES, run_e2e

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


async def test_replay_runs_every_sample_product_as_recorded(tmp_path: Path) -> None:
    """`GENERATOR_MODE=replay make e2e --all`: the shipped fixtures answer each sample's whole run, no model."""
    environ = {k: v for k, v in os.environ.items() if not k.endswith("_FIXTURES_DIR")}
    result = await run_e2e(SAMPLES, work=tmp_path, environ={**environ, "GENERATOR_MODE": "replay"})
    assert result.failures == [] and len(result.docs) == len(SAMPLES) == 4
    for doc in result.docs:
        assert doc.status == "succeeded" and doc.mode == "replay"
        # It reads as a live run: the live route's provider and model on every step, the workflow's image.
        assert {step.provider for step in doc.steps.values()} == {"ollama"}
        assert doc.steps["vision"].media is not None and doc.steps["vision"].media.provider == "comfyui"
        copy, brief = doc.outputs["copywriter"], doc.outputs["brief"]
        assert brief["target_audience"] == doc.product.target_customer
        words = " ".join([copy["headline"], *(s["body"] for s in copy["sections"])])
        hangul = sum("\uac00" <= ch <= "\ud7a3" for ch in words)
        assert (hangul > len(words) // 3) if doc.product.language == "ko" else hangul == 0
        plan_ids = [s["id"] for s in doc.outputs["strategist"]["sections"]]
        assert [s["section_id"] for s in copy["sections"]] == plan_ids
        review = doc.outputs["reviewer"]
        assert {issue["section_id"] for issue in review["issues"]} <= set(plan_ids)
        assert review["verdict"] in ("approve", "revise")
