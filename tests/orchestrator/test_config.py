"""config/orchestrator.yaml: defaults, env overrides, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import load_orchestrator_config
from service_common.config import ConfigError

YAML = Path(__file__).resolve().parents[2] / "config" / "orchestrator.yaml"


def test_the_shipped_yaml_loads_with_defaults() -> None:
    config = load_orchestrator_config(YAML, {})
    assert config.llm_gateway.base_url == "http://127.0.0.1:8100"
    assert config.media_gateway.base_url == "http://127.0.0.1:8200"
    assert config.runs.dir == "./var/runs"
    assert set(config.flow.image_sizes) == {"square", "portrait", "landscape"}


def test_environment_overrides_urls_timeouts_and_the_runs_folder() -> None:
    env = {
        "LLM_GATEWAY_URL": "http://llm:9000",
        "MEDIA_GATEWAY_URL": "http://media:9001",
        "LLM_GATEWAY_TIMEOUT_S": "5",
        "ORCHESTRATOR_RUNS_DIR": "/data/runs",
    }
    config = load_orchestrator_config(YAML, env)
    assert config.llm_gateway.base_url == "http://llm:9000"
    assert config.media_gateway.base_url == "http://media:9001"
    assert config.llm_gateway.timeout_s == 5.0
    assert config.runs.dir == "/data/runs"


def test_an_unknown_key_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "o.yaml"
    path.write_text(YAML.read_text() + "\nflow_typo: 1\n")
    with pytest.raises(ConfigError, match="flow_typo"):
        load_orchestrator_config(path, {})


def test_a_bad_value_is_an_error_naming_its_path(tmp_path: Path) -> None:
    path = tmp_path / "o.yaml"
    path.write_text("llm_gateway: {base_url: 'ftp://x'}\nmedia_gateway: {base_url: 'http://m'}\n")
    with pytest.raises(ConfigError, match=r"llm_gateway\.base_url"):
        load_orchestrator_config(path, {})
