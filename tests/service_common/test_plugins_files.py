"""Plug-in classes by import path, and atomic file writes: the pieces both gateways and the orchestrator share."""

from __future__ import annotations

import abc
import collections
from pathlib import Path

import pytest

from service_common.config import ConfigError
from service_common.files import write_atomically
from service_common.plugins import import_class


class _Base(abc.ABC):
    @abc.abstractmethod
    def run(self) -> None: ...


class Plugin(_Base):
    def run(self) -> None:
        return None


def test_import_class_returns_a_subclass_of_the_abc() -> None:
    assert import_class(f"{__name__}:Plugin", _Base, where="providers.p.class") is Plugin
    assert import_class("collections:OrderedDict", dict, where="x") is collections.OrderedDict


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_colon_here", r"providers\.p\.class: expected 'package\.module:ClassName', got 'no_colon_here'"),
        (":Plugin", r"expected 'package\.module:ClassName'"),
        ("tests.nothing_here:Plugin", r"providers\.p\.class: cannot import 'tests\.nothing_here'"),
        (f"{__name__}:Missing", r"is not a _Base subclass"),
        ("collections:OrderedDict", r"'collections:OrderedDict' is not a _Base subclass"),
        (f"{__name__}:pytest", r"is not a _Base subclass"),
    ],
)
def test_import_class_failures_name_the_yaml_key(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        import_class(spec, _Base, where="providers.p.class")


def test_write_atomically_creates_folders_and_replaces_whole(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "doc.json"
    write_atomically(target, b"first")
    write_atomically(target, b"second, longer")
    assert target.read_bytes() == b"second, longer"
    assert sorted(p.name for p in target.parent.iterdir()) == ["doc.json"]  # no temp file left behind


def test_write_atomically_leaves_no_temp_file_and_no_target_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "doc.json"
    with pytest.raises(TypeError):
        write_atomically(target, "not bytes")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
