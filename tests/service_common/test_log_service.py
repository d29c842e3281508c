"""Every service's JSON log lines name it by its console script (`llm-gateway`, `media-gateway`, `orchestrator`)."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path
from typing import Any

import pytest

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
SCRIPTS: dict[str, str] = tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]


class _Configured(Exception):
    """Stops `main` once logging is configured, before anything is served."""


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_service_field_is_the_console_script_name(
    script: str, monkeypatch: pytest.MonkeyPatch, repo_root: Path
) -> None:
    module = importlib.import_module(SCRIPTS[script].split(":")[0])
    seen: list[dict[str, Any]] = []

    def configure_logging(**kwargs: Any) -> None:
        seen.append(kwargs)
        raise _Configured

    monkeypatch.setattr(module, "configure_logging", configure_logging)
    monkeypatch.setattr(module, "serve", lambda app, **kwargs: None)
    for variable in ("GENERATOR_MODE", "LLM_GATEWAY_CONFIG", "MEDIA_GATEWAY_CONFIG", "ORCHESTRATOR_CONFIG"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(repo_root)
    with pytest.raises(_Configured):
        module.main([])
    assert [kwargs["service"] for kwargs in seen] == [script]
