"""`<service> check-config PATH`: validate a config file without starting anything, naming every problem.

The service's own loader is the judge (it also checks references: providers, workflows, nodes). When it
refuses the file, the schema is walked field by field so that every problem is listed with its YAML
path, not only the first one msgspec meets.
"""

from __future__ import annotations

import argparse
import os
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import msgspec

from .config import CONFIG_DIR_VAR, ConfigError, convert_section, explain_config_error, read_yaml

__all__ = ["CHECK_CONFIG", "check_config_command", "config_problems", "run_check_config"]

CHECK_CONFIG = "check-config"


def _join(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _strip(type_: Any) -> Any:
    while typing.get_origin(type_) is typing.Annotated:
        type_ = typing.get_args(type_)[0]
    return type_


def _members(type_: Any) -> tuple[Any, ...]:
    type_ = _strip(type_)
    if typing.get_origin(type_) in (typing.Union, types.UnionType):
        return tuple(_strip(member) for member in typing.get_args(type_))
    return (type_,)


def _struct_problems(raw: Mapping[str, Any], struct: type[msgspec.Struct], path: str) -> list[str]:
    problems: list[str] = []
    fields = {field.encode_name: field for field in msgspec.structs.fields(struct)}
    if struct.__struct_config__.forbid_unknown_fields:
        problems += [f"{_join(path, key)}: unknown field" for key in raw if key not in fields]
    for key, field in fields.items():
        if key not in raw:
            if field.required:
                problems.append(f"{_join(path, key)}: missing required field")
            continue
        problems += config_problems(raw[key], field.type, path=_join(path, key))
    return problems


def config_problems(raw: Any, type_: Any, *, path: str = "") -> list[str]:
    """Every schema problem of `raw` as `type_`, each as `yaml.path: message`; empty when it converts."""
    try:
        convert_section(raw, type_, path=path)
        return []
    except ConfigError as exc:
        first = str(exc)
    problems: list[str] = []
    for member in _members(type_):
        origin = typing.get_origin(member)
        if isinstance(member, type) and issubclass(member, msgspec.Struct) and isinstance(raw, Mapping):
            problems = _struct_problems(raw, member, path)
        elif origin is list and isinstance(raw, list):
            (item_type,) = typing.get_args(member) or (Any,)
            problems = [p for i, item in enumerate(raw) for p in config_problems(item, item_type, path=_join(path, i))]
        elif origin is dict and isinstance(raw, Mapping):
            value_type = (typing.get_args(member) or (Any, Any))[1]
            problems = [p for k, v in raw.items() for p in config_problems(v, value_type, path=_join(path, k))]
        if problems:
            return problems
    # The value as a whole is wrong (a type, a constraint, a cross-field check): msgspec's one message says it.
    return [first]


def run_check_config(
    argv: Sequence[str],
    *,
    prog: str,
    config_type: type[Any],
    load: Callable[[Path], object],
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> int:
    """Parse `check-config PATH`, validate the file, print `ok` or every problem; return the exit code."""
    parser = argparse.ArgumentParser(prog=f"{prog} check-config", description="Validate a config file and exit.")
    parser.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    stream = out if out is not None else sys.stdout
    env = os.environ if environ is None else environ
    try:
        load(args.path)
    except (ConfigError, NotImplementedError) as exc:
        problems = _describe(args.path, config_type, exc, env)
        for problem in problems:
            # The file first, and the variable when an empty `${VAR}` is behind the value.
            print(explain_config_error(args.path, problem, env), file=stream)
        print(f"{args.path}: {len(problems)} problem(s)", file=stream)
        return 1
    print(f"{args.path}: ok", file=stream)
    return 0


def _describe(path: Path, config_type: type[Any], exc: Exception, environ: Mapping[str, str]) -> list[str]:
    loader_says = str(exc).removeprefix(f"{path}: ")
    try:
        raw = read_yaml(path, {**environ, CONFIG_DIR_VAR: str(path.resolve().parent)})
    except ConfigError:
        return [loader_says]
    # The loader converts before it checks references, so when the schema walk finds problems its one
    # message is among them; when the walk finds none, the loader refused something only it can check.
    return config_problems({} if raw is None else raw, config_type) or [loader_says]


def check_config_command(
    argv: Sequence[str] | None, *, prog: str, config_type: type[Any], load: Callable[[Path], object]
) -> int | None:
    """The exit code of `<prog> check-config PATH`, or None when `argv` is not that subcommand."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] != [CHECK_CONFIG]:
        return None
    return run_check_config(args[1:], prog=prog, config_type=config_type, load=load)
