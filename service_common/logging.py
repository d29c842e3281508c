"""structlog set-up: one JSON object per line, with the request's context (request and trace ids) on every line.

The request's context lives in one context variable holding a small dict (`bind_log_context`), merged
into each event by `merge_log_context`. structlog's own `contextvars` module keeps one variable per key
and scans the whole context on every line; on the request path that cost more than the rest of the line.

`configure_logging` keeps structlog's API (`structlog.get_logger(...).info(event, **fields)`) but its
bound logger renders and writes a line itself: context, fields, level, timestamp, one msgspec encode, one
write to the file descriptor. structlog's processor chain for the same line cost several times as much,
and every request logs one.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar, Token
from typing import Any, TextIO

import msgspec
import structlog
from structlog.typing import EventDict, WrappedLogger

__all__ = [
    "EventLog",
    "bind_request_context",
    "JsonLineLogger",
    "JsonLineRenderer",
    "LineWriter",
    "bind_log_context",
    "bound_log_context",
    "configure_logging",
    "get_logger",
    "log_context",
    "merge_log_context",
    "reset_log_context",
]

_NOTHING: Mapping[str, Any] = {}
# Never mutated in place: binding sets a new dict, so a task that copied the context keeps its own view.
_log_context: ContextVar[Mapping[str, Any]] = ContextVar("pdp_log_context", default=_NOTHING)


def bind_log_context(**fields: Any) -> Token[Mapping[str, Any]]:
    """Add `fields` to every log line of the current context (a request and the tasks it spawns).

    Returns the token for `reset_log_context`, which restores exactly what was bound before.
    """
    return _log_context.set({**_log_context.get(), **fields})


def bind_request_context(
    request_id: str, trace_id: str, span_id: str, parent_span_id: str | None, trace_flags: str
) -> Token[Mapping[str, Any]]:
    """`bind_log_context` of a request's ids and trace context: the keys every line of the request carries."""
    outer = _log_context.get()
    fields = {
        "request_id": request_id, "trace_id": trace_id, "span_id": span_id, "parent_span_id": parent_span_id,
        "trace_flags": trace_flags,
    }
    return _log_context.set({**outer, **fields} if outer else fields)


def reset_log_context(token: Token[Mapping[str, Any]]) -> None:
    """Undo the `bind_log_context` call that returned `token`."""
    _log_context.reset(token)


@contextlib.contextmanager
def bound_log_context(**fields: Any) -> Iterator[None]:
    """`bind_log_context` for the duration of a `with` block."""
    token = bind_log_context(**fields)
    try:
        yield
    finally:
        reset_log_context(token)


def log_context() -> Mapping[str, Any]:
    """What is bound for the current context (read-only; empty outside a request)."""
    return _log_context.get()


def merge_log_context(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the bound context, under the event's own keys (those win)."""
    bound = _log_context.get()
    return {**bound, **event_dict} if bound else event_dict


def _fallback(obj: Any) -> Any:
    # What structlog's JSONRenderer does with a value JSON has no type for: __structlog__(), else repr().
    hook = getattr(obj, "__structlog__", None)
    return hook() if hook is not None else repr(obj)


_LEVELS = {"warn": "warning", "err": "error", "exception": "error", "msg": "info", "fatal": "critical"}


class JsonLineRenderer:
    """The final processor: level, UTC ISO timestamp, formatted exception, then one JSON object (msgspec).

    One fused step instead of four structlog processors and the stdlib encoder; the keys are the same
    (`level`, `timestamp`, `exception`). A value msgspec cannot encode goes through the stdlib encoder.
    """

    def __init__(self, *, service: str) -> None:
        self.service = service
        self._encode = msgspec.json.Encoder(enc_hook=_fallback).encode
        # The timestamp's whole seconds, formatted once per second.
        self._second = -1
        self._prefix = ""

    def _timestamp(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((now - second) * 1_000_000):06d}Z"

    def render(self, event_dict: EventDict, method_name: str) -> bytes:
        """One line (no line end) for `event_dict` logged at `method_name`."""
        event_dict.setdefault("service", self.service)
        event_dict["level"] = _LEVELS.get(method_name, method_name)
        event_dict["timestamp"] = self._timestamp()
        if "exc_info" in event_dict:
            event_dict = structlog.processors.format_exc_info(None, method_name, event_dict)
        try:
            return self._encode(event_dict)
        except (TypeError, ValueError, OverflowError):
            return json.dumps(event_dict, default=_fallback).encode()

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> str:
        return self.render(event_dict, method_name).decode()


class LineWriter:
    """Writes whole lines to a stream's file descriptor: the lines logged in one turn of the event loop go out
    together, in one system call, as soon as that turn ends (off the request's path, not seconds later).

    Outside a running loop (threads, the command line) a line is written at once; at exit nothing is left.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        try:
            self._fd: int | None = stream.fileno()
        except (AttributeError, OSError, ValueError):
            self._fd = None  # an in-memory stream (tests): written as text
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        # The loop whose next turn writes what is pending (a flush scheduled on it); None: nothing scheduled.
        self._flushing_on: asyncio.AbstractEventLoop | None = None
        atexit.register(self.flush)

    def write(self, line: bytes) -> None:
        """Write `line` and a line end (now, or at the end of the event loop's current turn)."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            self._pending.append(line)
            if loop is None:
                self._write()
                return
            # A flush scheduled on another loop (one closed before its turn ended) must not hold these lines.
            if self._flushing_on is loop:
                return
            self._flushing_on = loop
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what is pending."""
        with self._lock:
            self._write()

    def _write(self) -> None:
        self._flushing_on = None
        if not self._pending:
            return
        self._pending.append(b"")
        data = b"\n".join(self._pending)
        self._pending.clear()
        if self._fd is None:
            self._stream.write(data.decode())
            self._stream.flush()
            return
        # Text written to the stream by others (uvicorn's logging) goes out first, then these lines.
        self._stream.flush()
        while data:
            data = data[os.write(self._fd, data) :]


_METHOD_LEVELS = {
    "debug": logging.DEBUG, "info": logging.INFO, "msg": logging.INFO, "warning": logging.WARNING,
    "warn": logging.WARNING, "error": logging.ERROR, "err": logging.ERROR, "exception": logging.ERROR,
    "critical": logging.CRITICAL, "fatal": logging.CRITICAL,
}  # fmt: skip


class JsonLineLogger(structlog.BoundLoggerBase):
    """structlog's bound logger, rendering and writing each line itself (see the module docstring).

    `configure_logging` makes the subclass that knows the minimal level, the renderer and the writer. When
    the processors are not the ones it was made with (a test's `structlog.testing.capture_logs()`), the line
    goes through structlog's processor chain as usual.
    """

    min_level: int = logging.INFO
    renderer: JsonLineRenderer
    writer: LineWriter
    chain: list[Any]

    def _emit(self, method_name: str, event: str | None, args: tuple[Any, ...], fields: dict[str, Any]) -> None:
        if _METHOD_LEVELS[method_name] < self.min_level:
            return
        if args:
            event = event % args if event is not None else event
        if self._processors is not self.chain:
            self._proxy_to_logger(method_name, event, **fields)
            return
        if method_name == "exception":
            fields.setdefault("exc_info", True)
        bound = _log_context.get()
        line = {**bound, **self._context, **fields, "event": event} if bound else {**self._context, **fields,
                                                                                  "event": event}
        self.writer.write(self.renderer.render(line, method_name))

    def debug(self, event: str | None = None, *args: Any, **kw: Any) -> None:
        self._emit("debug", event, args, kw)

    def info(self, event: str | None = None, *args: Any, **kw: Any) -> None:
        self._emit("info", event, args, kw)

    def warning(self, event: str | None = None, *args: Any, **kw: Any) -> None:
        self._emit("warning", event, args, kw)

    def error(self, event: str | None = None, *args: Any, **kw: Any) -> None:
        self._emit("error", event, args, kw)

    def critical(self, event: str | None = None, *args: Any, **kw: Any) -> None:
        self._emit("critical", event, args, kw)

    def exception(self, event: str | None = None, *args: Any, **kw: Any) -> None:
        self._emit("exception", event, args, kw)

    msg = info
    warn = warning
    err = error
    fatal = critical

    def log(self, level: int, event: str | None = None, *args: Any, **kw: Any) -> None:
        """Log at a numeric `logging` level."""
        name = logging.getLevelName(level).lower()
        self._emit(name if name in _METHOD_LEVELS else "info", event, args, kw)


class EventLog:
    """The per-request log line of a hot endpoint: its fields come as one dict and go straight to the line.

    Once `configure_logging` has run, a line skips structlog's layers (the lazy proxy, keyword packing,
    method dispatch): the bound context, `component`, the fields and the event are rendered and written as
    `JsonLineLogger` would. Before that (tests, tools) it goes through structlog like any other line.
    """

    def __init__(self, component: str) -> None:
        self.component = component
        self._structlog = structlog.get_logger(component=component)
        self._direct: type[JsonLineLogger] | None = None

    def write(self, method_name: str, event: str, fields: dict[str, Any]) -> None:
        """Log `event` with `fields` at `method_name` (`info`, `warning`, ...)."""
        direct = self._direct
        if direct is None:
            wrapper = structlog.get_config()["wrapper_class"]
            if not (isinstance(wrapper, type) and issubclass(wrapper, JsonLineLogger) and hasattr(wrapper, "chain")):
                getattr(self._structlog, method_name)(event, **fields)
                return
            direct = self._direct = wrapper
        if _METHOD_LEVELS[method_name] < direct.min_level:
            return
        bound = _log_context.get()
        line = {**bound, "component": self.component, **fields, "event": event}
        direct.writer.write(direct.renderer.render(line, method_name))


def configure_logging(*, level: str = "INFO", service: str) -> None:
    """Send JSON lines to stderr; each names `service` and carries what `bind_log_context` bound."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    renderer = JsonLineRenderer(service=service)
    chain: list[Any] = [merge_log_context, renderer]
    wrapper = type(
        "JsonLineLogger",
        (JsonLineLogger,),
        {"min_level": numeric, "renderer": renderer, "writer": LineWriter(sys.stderr), "chain": chain},
    )
    structlog.configure(
        processors=chain,
        wrapper_class=wrapper,
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A logger bound to a component name."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(component=name)
    return logger
