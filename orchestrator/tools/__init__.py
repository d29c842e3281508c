"""Tools around the orchestrator that are not part of the service: the P0 script, sample regeneration,
and the child-process launcher they share."""

from __future__ import annotations

__all__: list[str] = []
