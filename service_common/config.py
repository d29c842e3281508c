"""YAML loading shared by the three services: `${VAR:-default}` expansion, then a typed, frozen convert.

Only this module reads the environment for configuration; everything below gets plain values. Every
service's config is a tree of `Section`s loaded by `load_config(path, Type, environ, check=...)`.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

__all__ = [
    "CONFIG_DIR_VAR",
    "ConfigError",
    "Section",
    "config_file",
    "convert_section",
    "explain_config_error",
    "expand_env",
    "load_config",
    "read_yaml",
]

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
    return _VAR.sub(lambda match: _value(match, environ), text)


def _value(match: re.Match[str], environ: Mapping[str, str]) -> str:
    name, default = match.group(1), match.group(2)
    value = environ.get(name)
    if value is None or (value == "" and default is not None):
        return default or ""
    return value


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
    raw = {} if (loaded := read_yaml(path, env)) is None else loaded
    with config_file(path, environ):
        try:
            config = convert_section(raw, type_, path="")
        except ConfigError as exc:
            raise ConfigError(_name_the_key(raw, type_, str(exc))) from exc
        return check(config) if check is not None else config


def _name_the_key(raw: Any, type_: Any, message: str) -> str:
    # msgspec writes a mapping's key as `[...]` ("workflows[...].file"); the field-by-field walk of
    # check-config names it. Imported here because checkconfig builds on this module.
    if "[...]" not in message:
        return message
    from .checkconfig import config_problems

    problems = config_problems(raw, type_)
    return problems[0] if problems else message


@contextlib.contextmanager
def config_file(path: Path, environ: Mapping[str, str]) -> Iterator[None]:
    """Make every ConfigError raised inside name `path` (and an empty `${VAR}` behind the value it blames).

    Wrap whatever turns the file into objects: the loader, and the building of providers or workflows
    that reads sections the schema leaves open, so their errors say which file too.
    """
    try:
        yield
    except ConfigError as exc:
        explained = explain_config_error(path, str(exc), environ)
        if explained == str(exc):
            raise
        raise ConfigError(explained) from exc


def explain_config_error(path: Path, message: str, environ: Mapping[str, str]) -> str:
    """`message` prefixed with the file, plus the variable when the value it blames came from an empty `${VAR}`.

    With `api_key: ${CLOUD_KEY}` in gw.yaml and the variable unset, `providers.cloud.api_key: Expected
    `str`, got `null`` becomes `gw.yaml: providers.cloud.api_key: Expected `str`, got `null` (${CLOUD_KEY}
    is not set)`. Idempotent: a message that already starts with the file comes back unchanged.
    """
    prefix = f"{path}: "
    if message.startswith(prefix):
        return message
    for where, notes in _empty_substitutions(path, environ).items():
        note = f" ({'; '.join(notes)})"
        if message.startswith(f"{where}: ") and not message.endswith(note):
            return f"{prefix}{message}{note}"
    return prefix + message


# An empty substitution is replaced by this marker to find which key's value it ended up in.
_MARK = "__pdp_empty_{}__"
_MARKED = re.compile(r"__pdp_empty_(\d+)__")


def _empty_substitutions(path: Path, environ: Mapping[str, str]) -> dict[str, list[str]]:
    # Only on the error path: read the file again with every empty substitution marked, then collect the
    # YAML path of each value holding a mark. Anything unreadable simply explains nothing.
    env = {**environ, CONFIG_DIR_VAR: str(path.resolve().parent)}
    notes: list[str] = []

    def _sub(match: re.Match[str]) -> str:
        value = _value(match, env)
        if value:
            return value
        name, default = match.group(1), match.group(2)
        if default is not None:
            notes.append(f"${{{name}:-}} gave an empty value")
        elif name in env:
            notes.append(f"${{{name}}} is set but empty")
        else:
            notes.append(f"${{{name}}} is not set")
        return _MARK.format(len(notes) - 1)

    try:
        marked = YAML(typ="safe", pure=True).load(io.StringIO(_VAR.sub(_sub, path.read_text(encoding="utf-8"))))
    except (OSError, YAMLError, ValueError):
        return {}
    found: dict[str, list[str]] = {}
    _collect(marked, "", notes, found)
    return found


def _collect(node: Any, where: str, notes: list[str], found: dict[str, list[str]]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _collect(value, f"{where}.{key}" if where else str(key), notes, found)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            _collect(item, f"{where}[{index}]", notes, found)
    elif isinstance(node, str):
        for mark in _MARKED.finditer(node):
            found.setdefault(where, []).append(notes[int(mark.group(1))])


def _with_path(prefix: str, message: str) -> str:
    # msgspec says "... - at `$.routing.rules[0].provider`"; we say "routing.rules[0].provider: ...".
    match = re.search(r" - at `\$(.*)`$", message)
    where = match.group(1).lstrip(".") if match else ""
    text = message[: match.start()] if match else message
    # A section's own check (`__post_init__`) names the field inside it: "cors_origins[0]: not an origin".
    inner = _INNER_PATH.match(text) if match else None
    if inner:
        where, text = ".".join(p for p in (where, inner.group(1)) if p), inner.group(2)
    full = ".".join(p for p in (prefix, where) if p).replace(".[", "[")
    return f"{full}: {text}" if full else text


_INNER_PATH = re.compile(r"^([A-Za-z_]\w*(?:\[\d+\])*(?:\.[A-Za-z_]\w*(?:\[\d+\])*)*): (.+)$", re.DOTALL)
