"""Outbound HTTP to cloud APIs, shared by both gateways' cloud providers.

One `UpstreamClient` per provider instance owns one pooled aiohttp session. Every call is bounded by
an absolute deadline (`asyncio.timeout_at`), transport failures become gateway errors naming the
provider, and a vendor-specific `ErrorMapper` turns non-200 answers into the error tree.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from types import TracebackType
from typing import Annotated, Any, ClassVar, NamedTuple

import aiohttp
import msgspec

from shared_contracts.errors import GatewayError, ProviderUnavailable, UpstreamError, UpstreamTimeout

from .config import ConfigError

__all__ = [
    "ErrorMapper",
    "KeyedSettings",
    "PooledSession",
    "SseEvent",
    "UpstreamClient",
    "UpstreamOwner",
    "keyed_client",
    "masked_repr",
    "merge_extra",
    "read_sse",
    "require_key",
    "retry_after_seconds",
    "upstream_call",
]

ErrorMapper = Callable[[str, int, bytes, Mapping[str, str]], GatewayError]
"""`(provider name, HTTP status, raw body, response headers) -> the error to raise`."""

_encode = msgspec.json.Encoder().encode


class SseEvent(NamedTuple):
    """One Server-Sent Event: its `event:` name (`message` when absent) and its joined `data:` lines."""

    event: str
    data: str


def require_key(section: str, api_key: str | None, env_name: str) -> None:
    """Refuse an active provider without a key, naming the YAML section and the env variable to set."""
    if not (api_key or "").strip():
        raise ConfigError(f"{section}.api_key: empty; set the environment variable {env_name}")


def masked_repr(struct: msgspec.Struct, secret_fields: tuple[str, ...] = ("api_key",)) -> str:
    """A Struct's repr with secrets shown as `***` (or `''` when unset), so keys never reach logs."""
    parts = []
    for field in struct.__struct_fields__:
        value = getattr(struct, field)
        shown = ("'***'" if value else "''") if field in secret_fields else repr(value)
        parts.append(f"{field}={shown}")
    return f"{type(struct).__name__}({', '.join(parts)})"


class KeyedSettings(msgspec.Struct, kw_only=True, frozen=True):
    """YAML keys of every keyed cloud provider, mixed into each gateway's ProviderSettings.

    `api_key` comes from `${VAR}` in YAML; `api_key_env` names VAR for the start-up error. An unset
    variable reads as YAML null, kept as None so that error can still name it.
    """

    base_url: str
    api_key: str | None = None
    api_key_env: str
    # False only for keyless OpenAI-compatible servers (a local vLLM or llama.cpp server).
    key_required: bool = True
    max_connections: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 16

    def __repr__(self) -> str:
        return masked_repr(self)


def keyed_client(
    name: str,
    settings: KeyedSettings,
    *,
    headers: Callable[[str], Mapping[str, str]],
    on_error: ErrorMapper,
) -> UpstreamClient:
    """Check the key (a ConfigError names the variable) and build the client whose `headers(key)` carry it."""
    if settings.key_required:
        require_key(f"providers.{name}", settings.api_key, settings.api_key_env)
    key = settings.api_key or ""
    return UpstreamClient(
        name, headers=headers(key), on_error=on_error, max_connections=settings.max_connections, secret=key
    )


def merge_extra(body: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`body` with a route's YAML extras laid over it; nested objects are merged one level deep.

    >>> merge_extra({"a": {"x": 1}}, {"a": {"y": 2}, "b": 3})
    {'a': {'x': 1, 'y': 2}, 'b': 3}
    """
    for key, value in extra.items():
        current = body.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            body[key] = {**current, **value}
        else:
            body[key] = value
    return body


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (delta-seconds); None if absent or a date."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            seconds = float(raw) * scale
        except ValueError:
            continue
        if seconds >= 0:
            return seconds
    return None


def upstream_call(name: str, deadline: float) -> _UpstreamCall:
    """Bound the block by `deadline` and turn transport failures into errors naming provider `name`."""
    return _UpstreamCall(name, deadline)


def _transport_error(name: str, exc: BaseException | None) -> GatewayError | None:
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(f"{name}: no answer before the deadline", details={"provider": name})
    if isinstance(exc, aiohttp.ClientPayloadError):
        return UpstreamError(f"{name}: the answer broke off", details={"provider": name})
    if isinstance(exc, aiohttp.ClientError):
        return ProviderUnavailable(f"{name}: {type(exc).__name__}", details={"provider": name})
    return None


class _UpstreamCall:
    """`async with upstream_call(...)`: a plain class, not a generator, since it wraps every upstream read."""

    __slots__ = ("_name", "_timeout")

    def __init__(self, name: str, deadline: float) -> None:
        self._name = name
        self._timeout = asyncio.timeout_at(deadline)

    async def __aenter__(self) -> None:
        await self._timeout.__aenter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            # Turns the cancel of an expired deadline into TimeoutError.
            await self._timeout.__aexit__(exc_type, exc, tb)
        except TimeoutError as expired:
            exc = expired
        error = _transport_error(self._name, exc)
        if error is not None:
            raise error from exc


async def read_sse(resp: aiohttp.ClientResponse, *, name: str, deadline: float) -> AsyncIterator[SseEvent]:
    """The events of a `text/event-stream` body (LF or CRLF line ends), each read bounded by `deadline`."""
    event, data = "", list[str]()
    while True:
        # The timeout wraps each read, never a `yield`, so it cannot fire inside the consumer's code.
        async with upstream_call(name, deadline):
            raw = await resp.content.readline()
        if not raw:
            break
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield SseEvent(event or "message", "\n".join(data))
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
    if data:
        yield SseEvent(event or "message", "\n".join(data))


class PooledSession:
    """The one pooled aiohttp session of one upstream: opened by `start()` in the lifespan, closed by `close()`.

    Deadlines come per call (`upstream_call`), so aiohttp's 300 s total default is switched off;
    `connect_timeout`, when set, caps connecting on its own.
    """

    def __init__(self, name: str, *, max_connections: int, connect_timeout: float | None = None) -> None:
        self.name = name
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the session; a second call keeps the open one."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout),
            )

    async def close(self) -> None:
        """Close the session; safe to call twice."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The open session; ProviderUnavailable before `start()`."""
        if self._session is None:
            raise ProviderUnavailable(f"{self.name}: not started", details={"provider": self.name})
        return self._session


class UpstreamClient(PooledSession):
    """One pooled session to one cloud API: JSON calls and SSE streams under a deadline.

    `headers` (which carry the key) stay private to the instance; error messages are scrubbed of
    `secret` in case an upstream echoes it.
    """

    def __init__(
        self,
        name: str,
        *,
        headers: Mapping[str, str],
        on_error: ErrorMapper,
        max_connections: int,
        secret: str = "",
    ) -> None:
        super().__init__(name, max_connections=max_connections)
        self._headers = {"content-type": "application/json", **headers}
        self._on_error = on_error
        self._secret = secret

    async def post_json(self, url: str, body: Mapping[str, Any], *, deadline: float) -> bytes:
        """POST `body` as JSON; the raw 200 body, or the mapped error."""
        async with upstream_call(self.name, deadline):
            async with self.session.post(url, data=_encode(body), headers=self._headers) as resp:
                raw = await resp.read()
        if resp.status != 200:
            raise self._error(resp.status, raw, resp.headers)
        return raw

    async def get(self, url: str, *, deadline: float) -> bytes:
        """GET `url`; the raw 200 body, or the mapped error."""
        async with upstream_call(self.name, deadline):
            async with self.session.get(url, headers=self._headers) as resp:
                raw = await resp.read()
        if resp.status != 200:
            raise self._error(resp.status, raw, resp.headers)
        return raw

    async def post_sse(self, url: str, body: Mapping[str, Any], *, deadline: float) -> AsyncIterator[SseEvent]:
        """POST `body` and yield the answer's Server-Sent Events; a non-200 answer raises the mapped error."""
        headers = {**self._headers, "accept": "text/event-stream"}
        async with upstream_call(self.name, deadline):
            resp = await self.session.post(url, data=_encode(body), headers=headers)
        try:
            if resp.status != 200:
                async with upstream_call(self.name, deadline):
                    raw = await resp.read()
                raise self._error(resp.status, raw, resp.headers)
            async for event in read_sse(resp, name=self.name, deadline=deadline):
                yield event
        finally:
            resp.release()

    def error(self, status: int, raw: bytes) -> GatewayError:
        """The mapped error for an error body that arrived inside a 200 stream."""
        return self._error(status, raw, {})

    def _error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> GatewayError:
        err = self._on_error(self.name, status, raw, headers)
        if self._secret and self._secret in err.message:
            scrubbed = err.message.replace(self._secret, "***")
            err = type(err)(scrubbed, details=err.details, retry_after=err.retry_after)
        return err


class UpstreamOwner(abc.ABC):
    """Mixin of a provider that talks to one keyed cloud API (LLM or image alike).

    `attach_client` (called from the provider's constructor) checks the key, so a missing one stops
    start-up, and builds `client`; `start`/`close` open and close it with the provider.
    """

    # A staticmethod, so the mapper is not bound to the provider instance.
    error_mapper: ClassVar[staticmethod[[str, int, bytes, Mapping[str, str]], GatewayError]]
    client: UpstreamClient
    base_url: str

    def attach_client(self, name: str, settings: KeyedSettings) -> None:
        """Build `client` for provider `name`; raises ConfigError when an active provider has no key."""
        self.base_url = settings.base_url.rstrip("/")
        self.client = keyed_client(name, settings, headers=self.auth_headers, on_error=type(self).error_mapper)

    @abc.abstractmethod
    def auth_headers(self, key: str) -> Mapping[str, str]:
        """The headers every request carries: the key and, where the API wants one, its version."""

    async def start(self) -> None:
        await self.client.start()

    async def close(self) -> None:
        await self.client.close()
