"""Config errors name the file, the YAML key path and, when an empty `${VAR}` is behind the value, the variable."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from service_common.config import ConfigError, Section, config_file, convert_section, explain_config_error, load_config


class Target(Section, frozen=True):
    base_url: str
    api_key: str = "x"


class Config(Section, frozen=True):
    mode: str = "mock"
    targets: list[Target] = []
    by_name: dict[str, Target] = {}


def _error(path: Path, text: str, environ: dict[str, str]) -> str:
    path.write_text(text, "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, Config, environ)
    return str(caught.value)


def test_an_unset_variable_is_named_with_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "svc.yaml"
    message = _error(path, "by_name:\n  cloud:\n    base_url: ${CLOUD_URL}\n", {})
    assert message == f"{path}: by_name.cloud.base_url: Expected `str`, got `null` (${{CLOUD_URL}} is not set)"


def test_a_variable_set_but_empty_says_so(tmp_path: Path) -> None:
    path = tmp_path / "svc.yaml"
    message = _error(path, "mode: ${MODE}\n", {"MODE": ""})
    assert message == f"{path}: mode: Expected `str`, got `null` (${{MODE}} is set but empty)"


def test_an_empty_default_is_named_too(tmp_path: Path) -> None:
    path = tmp_path / "svc.yaml"
    message = _error(path, "targets: [{base_url: x}, {base_url: '${URL:-}', api_key: 3}]\n", {})
    # The empty default is not what is wrong here (api_key is), so nothing is blamed on it.
    assert message == f"{path}: targets[1].api_key: Expected `str`, got `int`"
    message = _error(path, "targets: [{base_url: x}, {base_url: ${URL:-}}]\n", {})
    assert message == f"{path}: targets[1].base_url: Expected `str`, got `null` (${{URL:-}} gave an empty value)"


def test_a_variable_inside_a_longer_value_is_found(tmp_path: Path) -> None:
    path = tmp_path / "svc.yaml"
    path.write_text("by_name:\n  a: {base_url: 'http://${HOST}:8'}\n", "utf-8")
    message = explain_config_error(path, "by_name.a.base_url: no host in 'http://:8'", {})
    assert message == f"{path}: by_name.a.base_url: no host in 'http://:8' (${{HOST}} is not set)"


def test_a_value_that_came_from_no_variable_names_none(tmp_path: Path) -> None:
    path = tmp_path / "svc.yaml"
    message = _error(path, "mode: ${MODE}\ntargets: [{base_url: 1}]\n", {})
    assert message == f"{path}: mode: Expected `str`, got `null` (${{MODE}} is not set)"
    message = _error(path, "mode: ${MODE:-mock}\ntargets: [{}]\n", {})
    assert message == f"{path}: targets[0]: Object missing required field `base_url`"


def test_errors_raised_after_loading_get_the_file_once(tmp_path: Path) -> None:
    # E.g. a provider section converted when the providers are built, after the file was loaded.
    path = tmp_path / "svc.yaml"
    path.write_text("by_name:\n  cloud: {base_url: '${CLOUD_URL}', kep_alive: 5}\n", "utf-8")
    raw = {"base_url": "", "kep_alive": 5}
    with pytest.raises(ConfigError) as caught, config_file(path, {}):
        with config_file(path, {}):  # nested: the file is not named twice
            convert_section(raw, Target, path="by_name.cloud")
    assert str(caught.value) == f"{path}: by_name.cloud: Object contains unknown field `kep_alive`"


def test_explaining_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "svc.yaml"
    path.write_text("mode: ${MODE}\n", "utf-8")
    once = explain_config_error(path, "mode: Expected `str`, got `null`", {})
    assert explain_config_error(path, once, {}) == once


def test_an_unreadable_file_still_gets_its_name(tmp_path: Path) -> None:
    path = tmp_path / "gone.yaml"
    assert explain_config_error(path, "mode: bad", {}) == f"{path}: mode: bad"


class Checked(Section, frozen=True):
    origins: list[str] = []

    def __post_init__(self) -> None:
        if "bad" in self.origins:
            raise ValueError(f"origins[{self.origins.index('bad')}]: not an origin")


class Outer(Section, frozen=True):
    server: Checked = Checked()


def test_a_sections_own_check_names_the_field_inside_it() -> None:
    with pytest.raises(ConfigError, match=r"^server\.origins\[1\]: not an origin$"):
        convert_section({"server": {"origins": ["ok", "bad"]}}, Outer, path="")
    assert msgspec.convert({"server": {"origins": ["ok"]}}, Outer).server.origins == ["ok"]
