"""structlog set-up: one JSON object per line, with the request's context (request and trace ids) on every line.

The request's context lives in one context variable holding a small dict (`bind_log_context`), merged
into each event by `merge_log_context`. structlog's own `contextvars` module keeps one variable per key
and scans the whole context on every line; on the request path that cost more than the rest of the line.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextvars import ContextVar, Token
from typing import Any

import msgspec
import structlog
from structlog.typing import EventDict, WrappedLogger

__all__ = [
    "JsonLineRenderer",
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


_LEVELS = {"warn": "warning", "exception": "error"}
_UTC = datetime.UTC


class JsonLineRenderer:
    """The final processor: level, UTC ISO timestamp, formatted exception, then one JSON object (msgspec).

    One fused step instead of four structlog processors and the stdlib encoder; the keys are the same
    (`level`, `timestamp`, `exception`). A value msgspec cannot encode goes through the stdlib encoder.
    """

    def __init__(self, *, service: str) -> None:
        self.service = service
        self._encode = msgspec.json.Encoder(enc_hook=_fallback).encode

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> str:
        event_dict.setdefault("service", self.service)
        event_dict["level"] = _LEVELS.get(method_name, method_name)
        event_dict["timestamp"] = datetime.datetime.now(_UTC).isoformat().replace("+00:00", "Z")
        if "exc_info" in event_dict:
            event_dict = structlog.processors.format_exc_info(logger, method_name, event_dict)
        try:
            return self._encode(event_dict).decode()
        except (TypeError, ValueError, OverflowError):
            return json.dumps(event_dict, default=_fallback)


def configure_logging(*, level: str = "INFO", service: str) -> None:
    """Send JSON lines to stderr; each names `service` and carries what `bind_log_context` bound."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    structlog.configure(
        processors=[merge_log_context, JsonLineRenderer(service=service)],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A logger bound to a component name."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(component=name)
    return logger
