"""The current run's deadline, carried by a context variable from the HTTP request to every gateway call.

The flow runs its agents in tasks (copywriter ∥ vision); tasks copy the context, so each gateway call sees
the deadline of the run it belongs to without it being passed through every agent.

    with run_deadline(loop.time() + 30):
        await flow.run(...)        # every Transport call sends X-Request-Timeout: <seconds left>
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

__all__ = ["current_deadline", "run_deadline"]

_deadline: ContextVar[float | None] = ContextVar("orchestrator_run_deadline", default=None)


@contextlib.contextmanager
def run_deadline(deadline: float) -> Iterator[None]:
    """Within the block, gateway calls end by `deadline` (a `loop.time()`), an earlier one kept if set."""
    outer = _deadline.get()
    token = _deadline.set(deadline if outer is None else min(outer, deadline))
    try:
        yield
    finally:
        _deadline.reset(token)


def current_deadline() -> float | None:
    """The deadline of the run this code belongs to, or None outside a run."""
    return _deadline.get()
