"""The orchestrator reaches models only through the gateways: no model SDK, no model name, no gateway import."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "orchestrator"
# Families any model name would start with; the YAML's own names are checked exactly as well.
# `model: qwen2.5:7b` in the LLM YAML, `...safetensors` checkpoints in the media YAML.
MODEL_LINE = re.compile(r"^\s*(?:model|default):\s*\"?([\w.\-]+:[\w.\-]+|[\w.\-]+\.safetensors)", re.M)
MODEL_FAMILY = re.compile(r"\b(qwen|llama\d|gpt-\d|gpt-4o|claude-|gemini-\d|mistral|sdxl|sd_xl|flux1)", re.IGNORECASE)


def package_files() -> list[Path]:
    return [p for p in PACKAGE.rglob("*") if p.is_file() and p.suffix in {".py", ".md", ".txt", ".yaml", ".json"}]


def configured_models() -> set[str]:
    names: set[str] = set()
    for name in ("llm_gateway.yaml", "media_gateway.yaml"):
        path = ROOT / "config" / name
        if path.exists():
            names.update(MODEL_LINE.findall(path.read_text()))
    return names


def test_no_model_sdk_and_no_gateway_package_is_imported() -> None:
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text("utf-8")
        assert not re.search(r"^\s*(import|from)\s+(ollama|openai|anthropic)\b", text, re.M), path
        assert not re.search(r"^\s*(import|from)\s+(llm_gateway|media_gateway)\b", text, re.M), path


def test_no_model_name_in_the_orchestrator() -> None:
    models = configured_models()
    for path in package_files():
        text = path.read_text("utf-8")
        assert not MODEL_FAMILY.search(text), f"{path}: {MODEL_FAMILY.search(text)}"
        for model in models:
            assert model not in text, f"{path} names {model}"
