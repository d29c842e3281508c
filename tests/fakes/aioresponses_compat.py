"""aioresponses for aiohttp 3.14: one place for the patch every recorded-payload test needs.

aiohttp 3.14 made `stream_writer` a required argument of ClientResponse that aioresponses 0.7.9
does not pass (pnuckowski/aioresponses#289); a finished request's writer only reports its size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import aioresponses.core as aioresponses_core
import pytest
from aiohttp import ClientResponse
from aioresponses import aioresponses

__all__ = ["CompatResponse", "patched_aioresponses"]


class _Written:
    output_size = 0


class CompatResponse(ClientResponse):
    """ClientResponse that supplies the writer aioresponses leaves out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", _Written())
        super().__init__(*args, **kwargs)


@contextmanager
def patched_aioresponses(monkeypatch: pytest.MonkeyPatch, *, passthrough: Sequence[str] = ()) -> Iterator[aioresponses]:
    """aioresponses intercepting every aiohttp request, except `passthrough` URL prefixes."""
    monkeypatch.setattr(aioresponses_core, "ClientResponse", CompatResponse)
    with aioresponses(passthrough=list(passthrough)) as mocked:
        yield mocked
