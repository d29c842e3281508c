"""Fixture files of record and replay, shared by both gateways: keys, safe names, checked reads, no secrets.

A fixture is one readable JSON file (UTF-8, indented, keys in a fixed order) whose name comes from its key,
the SHA-256 of the canonical JSON of what was routed, never from a client's string as it is: names made
of a client's role or task are reduced to `[a-z0-9_-]`, and every path is checked to stay inside the root.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import msgspec

from .config import ConfigError

__all__ = [
    "FixtureFiles",
    "REDACTED",
    "canonical_key",
    "differences",
    "redact",
    "secrets_of",
    "slug",
]

REDACTED = "***"
_canonical = msgspec.json.Encoder(order="sorted")
_UNSAFE = re.compile(r"[^a-z0-9_-]+")
_KEY = re.compile(r"^[0-9a-f]{64}$")
# Setting names whose values are credentials (api_key, access_token, client_secret, password, ...).
_SECRET_NAME = re.compile(r"key|token|secret|password|credential", re.IGNORECASE)
# Shorter values are not treated as secrets: replacing "abc" everywhere would garble the answers.
_MIN_SECRET = 8


def canonical_key(parts: Any) -> str:
    """The SHA-256 (hex) of `parts` as canonical JSON: object keys sorted, no whitespace."""
    return hashlib.sha256(_canonical.encode(parts)).hexdigest()


def is_key(text: str) -> bool:
    """Whether `text` is a fixture key (64 lowercase hex digits)."""
    return bool(_KEY.match(text))


def slug(text: str, *, limit: int = 48) -> str:
    """`text` as a safe file-name part: lowercase `[a-z0-9_-]`, never empty, never `.` or `..`.

    >>> slug("Copy Writer/../x")
    'copy_writer_x'
    """
    cleaned = _UNSAFE.sub("_", text.lower()).strip("_")[:limit]
    return cleaned or "_"


def secrets_of(sections: Mapping[str, Mapping[str, Any]]) -> tuple[str, ...]:
    """Every credential in provider settings: values of `*key*`, `*token*`, `*secret*`, ... and of `headers`."""
    found: set[str] = set()

    def walk(value: Any, name: str) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                # Every value of a `headers` mapping may carry a credential, whatever the header's name.
                walk(item, "headers" if name == "headers" else str(key))
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item, name)
        elif isinstance(value, str) and len(value) >= _MIN_SECRET and (name == "headers" or _SECRET_NAME.search(name)):
            found.add(value)
            # An Authorization header's token alone may appear in an echo too.
            scheme, _, token = value.partition(" ")
            if token and len(token) >= _MIN_SECRET and scheme.lower() in ("bearer", "basic", "token"):
                found.add(token)

    for section in sections.values():
        walk(section, "")
    return tuple(sorted(found, key=len, reverse=True))


def redact(value: Any, secrets: Sequence[str]) -> Any:
    """`value` (plain JSON) with every occurrence of a secret replaced by `***`."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, Mapping):
        return {key: redact(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item, secrets) for item in value]
    return value


def differences(recorded: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """Where two requests differ, as paths: `options`, `messages[1]`, `messages (2 recorded, 3 asked)`."""
    found: list[str] = []
    for key in sorted(set(recorded) | set(wanted)):
        left, right = recorded.get(key), wanted.get(key)
        if left == right:
            continue
        if isinstance(left, list) and isinstance(right, list):
            found.extend(f"{key}[{i}]" for i, (a, b) in enumerate(zip(left, right, strict=False)) if a != b)
            if len(left) != len(right):
                found.append(f"{key} ({len(left)} recorded, {len(right)} asked)")
        else:
            found.append(key)
    return found


class FixtureFiles:
    """One fixture folder: safe paths inside it, atomic writes, and every file of a kind for loading."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, *parts: str) -> Path:
        """`root/<parts...>`; each part must already be a safe name (see `slug`), and the result stays inside."""
        for part in parts:
            if not part or part in (".", "..") or "/" in part or "\\" in part or "\x00" in part:
                raise ValueError(f"unsafe fixture path part {part!r}")
        path = self.root.joinpath(*parts)
        root = self.root.resolve()
        if not path.resolve().is_relative_to(root):
            raise ValueError(f"fixture path {path} leaves {root}")
        return path

    def files(self, suffix: str) -> Iterator[Path]:
        """Every regular file ending in `suffix` under the root (one folder deep), skipping links that leave it."""
        if not self.root.is_dir():
            return
        root = self.root.resolve()
        for path in sorted([*self.root.glob(f"*{suffix}"), *self.root.glob(f"*/*{suffix}")]):
            if path.is_file() and path.resolve().is_relative_to(root):
                yield path

    def writable(self) -> str | None:
        """Why fixtures cannot be written here (None when they can): the folder is made if missing."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=".probe-", dir=self.root)
            os.close(handle)
            Path(temporary).unlink()
        except OSError as exc:
            return f"{self.root}: {exc.strerror or exc}"
        return None


def pretty(doc: Any) -> bytes:
    """`doc` as indented UTF-8 JSON ending in a newline: readable, and a diff shows what changed."""
    return msgspec.json.format(msgspec.json.encode(doc), indent=2) + b"\n"


class Recorded(Protocol):
    """A decoded fixture: its key and the routed request the key was made from."""

    @property
    def key(self) -> str: ...

    @property
    def request(self) -> Any: ...


R = TypeVar("R", bound=Recorded)


def read_fixture(path: Path, decoder: msgspec.json.Decoder[R]) -> R:
    """The fixture in `path`, its key checked against its request; ValueError naming the file if not."""
    try:
        fixture = decoder.decode(path.read_bytes())
    except (OSError, msgspec.DecodeError) as exc:
        raise ValueError(f"fixture {path}: {exc}") from exc
    if fixture.key != canonical_key(fixture.request):
        raise ValueError(f"fixture {path}: its key does not match its request (edited by hand?)")
    return fixture


class FixtureSet(Protocol):
    """A gateway's fixtures: their folder and `load()` (which raises ValueError on a broken file)."""

    @property
    def files(self) -> FixtureFiles: ...

    @property
    def root(self) -> Path: ...

    def load(self) -> None: ...


S = TypeVar("S", bound=FixtureSet)


def opened_fixtures(fixtures: S, *, mode: str, folder_variable: str) -> S:
    """`fixtures` read at start-up and checked for `mode`: writable to record, an existing folder to replay.

    Every problem is a ConfigError naming `fixtures_dir`, so a broken fixture fails start-up, not a request.
    """
    if mode == "record":
        problem = fixtures.files.writable()
        if problem is not None:
            raise ConfigError(f"fixtures_dir: record mode cannot write fixtures: {problem}")
    elif mode == "replay" and not fixtures.root.is_dir():
        raise ConfigError(
            f"fixtures_dir: {fixtures.root} is not a folder; replay mode answers only from recorded fixtures "
            f"(record them with GENERATOR_MODE=record, or set {folder_variable})"
        )
    try:
        fixtures.load()
    except ValueError as exc:
        raise ConfigError(f"fixtures_dir: {exc}") from exc
    return fixtures


__all__ += ["FixtureSet", "Recorded", "is_key", "opened_fixtures", "pretty", "read_fixture"]
