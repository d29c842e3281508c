"""No model name configured in config/*.yaml may appear in a non-test .py file: models live in YAML only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

REPO_ROOT = Path(__file__).resolve().parent.parent
# Folders that are not our code (virtualenvs, build output) or are tests, which may name models freely.
SKIP_DIRS = {"tests", ".git", "build", "dist", "node_modules", "__pycache__", ".mypy_cache", ".pytest_cache"}


def _model_values(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "model" and isinstance(value, str):
                yield value
            yield from _model_values(value)
    elif isinstance(node, list):
        for item in node:
            yield from _model_values(item)


def configured_models() -> set[str]:
    """Every `model:` value in config/*.yaml (env references like `${X}` are not names)."""
    names: set[str] = set()
    for path in sorted((REPO_ROOT / "config").glob("*.yaml")):
        doc = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
        names.update(v for v in _model_values(doc) if v.strip() and "${" not in v)
    return names


def _skipped(name: str) -> bool:
    return name in SKIP_DIRS or name.startswith(".venv") or name.endswith(".egg-info")


def source_files() -> Iterator[Path]:
    for folder, dirs, files in os.walk(REPO_ROOT):
        dirs[:] = [d for d in dirs if not _skipped(d)]  # pruned in place, so os.walk never enters them
        yield from (Path(folder) / f for f in files if f.endswith(".py"))


def test_yaml_configures_models() -> None:
    # Guards the scan below: if the YAML parse found nothing, the real test would pass vacuously.
    assert {"qwen2.5:7b", "qwen2.5:14b"} <= configured_models()


def test_no_configured_model_name_in_python_code() -> None:
    models = configured_models()
    offenders = [
        f"{path.relative_to(REPO_ROOT)}: {name}"
        for path in source_files()
        for name in models
        if name in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert offenders == [], "model names belong in config/*.yaml:\n" + "\n".join(offenders)


def test_the_scan_sees_the_gateway_code() -> None:
    found = {p.relative_to(REPO_ROOT).as_posix() for p in source_files()}
    assert "llm_gateway/gateway.py" in found and "llm_gateway/providers/ollama.py" in found
    assert not any(f.startswith("tests/") for f in found)
