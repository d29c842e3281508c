"""YAML loading shared by the three services: `${VAR:-default}` expansion, then a typed, frozen convert.

Only this module reads the environment for configuration; everything below gets plain values. Every
service's config is a tree of `Section`s loaded by `load_config(path, Type, environ, check=...)`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

__all__ = ["CONFIG_DIR_VAR", "ConfigError", "Section", "convert_section", "expand_env", "load_config", "read_yaml"]

T = TypeVar("T")

# `${CONFIG_DIR}` in a YAML file is the folder that holds it, so relative data paths need no cwd.
CONFIG_DIR_VAR = "CONFIG_DIR"

# ${NAME}, ${NAME:-default}; the default may be empty and may not contain '}'.
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """A configuration problem, with the YAML path that holds it: `providers.local.base_url: ...`."""


class Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Base of every YAML section of every service: a typo is a start-up error naming its path."""


def expand_env(text: str, environ: Mapping[str, str]) -> str:
    """Replace `${VAR}` and `${VAR:-default}`; an unset variable without default becomes empty.

    >>> expand_env("url: ${HOST:-localhost}:8", {})
    'url: localhost:8'
    """

    def _sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = environ.get(name)
        if value is None or (value == "" and default is not None):
            return default or ""
        return value

    return _VAR.sub(_sub, text)


def read_yaml(path: Path, environ: Mapping[str, str]) -> Any:
    """Parse `path` after env expansion; a missing or broken file is a ConfigError naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from exc
    try:
        return YAML(typ="safe", pure=True).load(io.StringIO(expand_env(text, environ)))
    except YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc


def convert_section(raw: Any, type_: type[T], *, path: str) -> T:
    """`msgspec.convert` with the error rewritten to name the YAML path (`path` is the section's own)."""
    try:
        return msgspec.convert(raw, type=type_, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_with_path(path, str(exc))) from exc


def load_config(
    path: Path, type_: type[T], environ: Mapping[str, str], *, check: Callable[[T], T] | None = None
) -> T:
    """Read, expand (`${CONFIG_DIR}` included) and convert a whole service config file.

    `check` validates what a schema cannot (references between sections) and may fill in derived values;
    its ConfigError, like the schema's, is prefixed with the file.
    """
    env = {**environ, CONFIG_DIR_VAR: str(path.resolve().parent)}
    raw = read_yaml(path, env)
    try:
        config = convert_section({} if raw is None else raw, type_, path="")
        return check(config) if check is not None else config
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _with_path(prefix: str, message: str) -> str:
    # msgspec says "... - at `$.routing.rules[0].provider`"; we say "routing.rules[0].provider: ...".
    match = re.search(r" - at `\$(.*)`$", message)
    where = match.group(1).lstrip(".") if match else ""
    text = message[: match.start()] if match else message
    full = ".".join(p for p in (prefix, where) if p).replace(".[", "[")
    return f"{full}: {text}" if full else text
