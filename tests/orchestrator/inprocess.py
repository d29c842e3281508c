"""The real gateway apps in mock mode for in-process tests; `serve_app` (tests/fakes/serving.py) serves them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from starlette.types import ASGIApp

from tests.fakes.serving import serve_app

__all__ = ["REPO_ROOT", "mock_gateway_apps", "serve_app"]

REPO_ROOT = Path(__file__).resolve().parents[2]


def mock_gateway_apps(store_dir: Path, environ: Mapping[str, str] | None = None) -> tuple[ASGIApp, ASGIApp]:
    """The real LLM and Media Gateway apps from the repository's YAML, in mock mode."""
    from llm_gateway.app import create_app as create_llm_app
    from llm_gateway.config import load_gateway_config
    from media_gateway.app import create_app as create_media_app
    from media_gateway.config import load_media_config

    env = {"GENERATOR_MODE": "mock", "MEDIA_STORE_DIR": str(store_dir), **(environ or {})}
    llm = create_llm_app(load_gateway_config(REPO_ROOT / "config" / "llm_gateway.yaml", environ=env), environ=env)
    media = create_media_app(load_media_config(REPO_ROOT / "config" / "media_gateway.yaml", env))
    return llm, media
