"""check-config: every schema problem listed with its YAML path; the service loader has the last word."""

from __future__ import annotations

import io
from pathlib import Path

import msgspec

from service_common.checkconfig import config_problems, run_check_config
from service_common.config import ConfigError, load_config


class Target(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    provider: str
    model: str


class Timeouts(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    mock: float = 5.0
    live: float = 180.0


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    mode: str = "mock"
    timeouts: Timeouts = Timeouts()
    rules: list[Target] = []
    providers: dict[str, Target] = {}
    default: Target | None = None


def test_every_problem_is_named_by_its_path() -> None:
    raw = {
        "typo": 1,
        "timeouts": {"mock": "fast", "live": 1},
        "rules": [{"provider": "a", "model": "m"}, {"model": "m", "extra": True}],
        "providers": {"ok": {"provider": "a", "model": "m"}, "bad": {"provider": 3, "model": "m"}},
        "default": {"provider": "a"},
    }
    assert config_problems(raw, Config) == [
        "typo: unknown field",
        "timeouts.mock: Expected `float`, got `str`",
        "rules[1].extra: unknown field",
        "rules[1].provider: missing required field",
        "providers.bad.provider: Expected `str`, got `int`",
        "default.model: missing required field",
    ]


def test_a_valid_document_has_no_problem() -> None:
    assert config_problems({"rules": [{"provider": "a", "model": "m"}]}, Config) == []


def test_a_wrong_whole_value_keeps_msgspec_message() -> None:
    assert config_problems({"rules": "nope"}, Config) == ["rules: Expected `array`, got `str`"]


def _load(path: Path) -> Config:
    config = load_config(path, Config, {})
    for i, rule in enumerate(config.rules):
        if rule.provider not in config.providers:
            raise ConfigError(f"{path}: rules[{i}].provider: unknown provider {rule.provider!r}")
    return config


def _run(path: Path) -> tuple[int, str]:
    out = io.StringIO()
    code = run_check_config([str(path)], prog="svc", config_type=Config, load=_load, environ={}, out=out)
    return code, out.getvalue()


def test_cli_ok_exits_zero(tmp_path: Path) -> None:
    path = tmp_path / "good.yaml"
    path.write_text("providers: {p: {provider: x, model: m}}\nrules: [{provider: p, model: m}]\n")
    assert _run(path) == (0, f"{path}: ok\n")


def test_cli_lists_schema_problems_and_exits_non_zero(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("typo: 1\ntimeouts: {mock: fast}\n")
    code, out = _run(path)
    assert code == 1
    assert out.splitlines() == [
        f"{path}: typo: unknown field",
        f"{path}: timeouts.mock: Expected `float`, got `str`",
        f"{path}: 2 problem(s)",
    ]


def test_cli_reports_the_loaders_reference_check(tmp_path: Path) -> None:
    path = tmp_path / "ref.yaml"
    path.write_text("rules: [{provider: olama, model: m}]\n")
    code, out = _run(path)
    assert code == 1
    assert f"{path}: rules[0].provider: unknown provider 'olama'" in out.splitlines()


def test_cli_reports_unreadable_and_broken_files(tmp_path: Path) -> None:
    code, out = _run(tmp_path / "missing.yaml")
    assert code == 1 and "cannot read config" in out
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [\n")
    code, out = _run(broken)
    assert code == 1 and "invalid YAML" in out
