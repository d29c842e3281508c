"""Config loading and validation: errors name the YAML path; GENERATOR_MODE sets the mode through the YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llm_gateway.app import build_gateway
from llm_gateway.config import load_gateway_config, parse_gateway_config
from llm_gateway.providers.mock import MockProvider
from llm_gateway.providers.ollama import OllamaProvider
from llm_gateway.providers.ollama_pool import OllamaPool
from llm_gateway.registry import build_providers
from service_common.config import ConfigError

OLLAMA_CLASS = "llm_gateway.providers.ollama:OllamaProvider"


def raw(rules: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"providers": {"ollama": {"class": OLLAMA_CLASS}}, "llm_routing": {"rules": rules}, **extra}


def test_shipped_config_loads_and_routes_the_six_roles(repo_root: Path) -> None:
    config = load_gateway_config(repo_root / "config" / "llm_gateway.yaml", environ={})
    gateway = build_gateway(config)
    assert config.mode == "mock" and config.timeouts.mock == 5 and config.timeouts.live == 180
    # A pool of one or more Ollama instances (OLLAMA_BASE_URL may list several); one instance is the plain provider.
    pool = gateway.providers["ollama"]
    assert isinstance(pool, OllamaPool) and [type(m.provider) for m in pool.members] == [OllamaProvider]
    assert isinstance(gateway.providers["mock"], MockProvider)
    models = {role: gateway.router.resolve(role, "any").targets[0].model for role in
              ("brand", "brief", "strategist", "copywriter", "vision", "reviewer")}
    assert models["strategist"] == models["copywriter"] != models["brand"]
    assert len({models[r] for r in ("brand", "brief", "vision", "reviewer")}) == 1


def test_ollama_base_url_comes_from_the_environment(repo_root: Path) -> None:
    path = repo_root / "config" / "llm_gateway.yaml"
    assert load_gateway_config(path, environ={}).providers["ollama"]["base_url"] == "http://localhost:11434"
    config = load_gateway_config(path, environ={"OLLAMA_BASE_URL": "http://10.0.0.5:11434"})
    assert config.providers["ollama"]["base_url"] == "http://10.0.0.5:11434"


def test_mock_fixtures_dir_is_relative_to_the_config_file(repo_root: Path) -> None:
    config = load_gateway_config(repo_root / "config" / "llm_gateway.yaml", environ={})
    assert Path(config.providers["mock"]["fixtures_dir"]) == repo_root / "config" / "mock" / "llm"


def test_seed_rule_shape_works_as_written() -> None:
    config = parse_gateway_config(raw([{"role": ["strategist", "copywriter"], "provider": "ollama", "model": "m-14"}]))
    assert config.llm_routing.rules[0].role == ["strategist", "copywriter"]


@pytest.mark.parametrize(("env", "mode"), [({}, "mock"), ({"GENERATOR_MODE": "live"}, "live")])
def test_generator_mode_env_sets_the_shipped_yaml_mode(repo_root: Path, env: dict[str, str], mode: str) -> None:
    config = load_gateway_config(repo_root / "config" / "llm_gateway.yaml", environ=env)
    assert config.mode == mode


def test_bad_generator_mode_is_a_config_error(repo_root: Path) -> None:
    with pytest.raises(ConfigError, match=r"llm_gateway\.yaml: mode: .*'fast'"):
        load_gateway_config(repo_root / "config" / "llm_gateway.yaml", environ={"GENERATOR_MODE": "fast"})


def test_unknown_provider_names_the_yaml_path() -> None:
    rules = [{"role": "a", "provider": "ollama", "model": "m"}] * 2 + [{"role": "c", "provider": "olama", "model": "m"}]
    with pytest.raises(ConfigError) as caught:
        parse_gateway_config(raw(rules))
    assert str(caught.value).startswith("llm_routing.rules[2].provider: unknown provider 'olama'")


def test_unknown_fallback_provider_names_the_yaml_path() -> None:
    rules = [{"role": "a", "provider": "ollama", "model": "m", "fallbacks": [{"provider": "nope", "model": "m"}]}]
    with pytest.raises(ConfigError, match=r"llm_routing\.rules\[0\]\.fallbacks\[0\]\.provider: unknown provider"):
        parse_gateway_config(raw(rules))


def test_missing_field_names_the_yaml_path() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_gateway_config(raw([{"role": "a", "provider": "ollama"}]))
    assert str(caught.value) == "llm_routing.rules[0]: Object missing required field `model`"


def test_typo_in_a_rule_is_rejected_by_name() -> None:
    with pytest.raises(ConfigError, match=r"llm_routing\.rules\[0\]: Object contains unknown field `modle`"):
        parse_gateway_config(raw([{"role": "a", "provider": "ollama", "modle": "m"}]))


def test_wrong_type_names_the_yaml_path() -> None:
    with pytest.raises(ConfigError, match=r"^timeouts\.live: Expected `float` >= 0|^timeouts\.live: "):
        parse_gateway_config(raw([], timeouts={"live": -3}))


def test_empty_matcher_list_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"llm_routing\.rules\[0\]\.task: an empty list"):
        parse_gateway_config(raw([{"task": [], "provider": "ollama", "model": "m"}]))


def test_provider_without_class_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"providers\.ollama\.class: required"):
        parse_gateway_config({"providers": {"ollama": {"base_url": "http://x"}}})


def test_unimportable_provider_class_names_the_yaml_path() -> None:
    config = parse_gateway_config({"providers": {"cloud": {"class": "llm_gateway.providers.nothing:Nope"}}})
    with pytest.raises(ConfigError, match=r"providers\.cloud\.class: cannot import 'llm_gateway\.providers\.nothing'"):
        build_providers(config)


def test_class_that_is_not_a_provider_is_refused() -> None:
    config = parse_gateway_config({"providers": {"x": {"class": "llm_gateway.routing:Router"}}})
    with pytest.raises(ConfigError, match=r"providers\.x\.class: 'llm_gateway\.routing:Router' is not a Provider"):
        build_providers(config)


def test_provider_settings_typo_names_the_yaml_path() -> None:
    config = parse_gateway_config({"providers": {"ollama": {"class": OLLAMA_CLASS, "base_ulr": "http://x"}}})
    with pytest.raises(ConfigError, match=r"providers\.ollama: Object contains unknown field `base_ulr`"):
        build_providers(config)


def test_provider_refusing_its_settings_is_a_config_error() -> None:
    config = parse_gateway_config({"providers": {"ollama": {"class": OLLAMA_CLASS, "base_url": "localhost"}}})
    with pytest.raises(ConfigError, match=r"providers\.ollama: base_url must start with http"):
        build_providers(config)


def test_config_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text("llm_routing:\n  rules:\n    - {role: x, provider: ghost, model: m}\n")
    with pytest.raises(ConfigError, match=r"gw\.yaml: llm_routing\.rules\[0\]\.provider: unknown provider 'ghost'"):
        load_gateway_config(path, environ={})
