"""Runs: where run documents and their images are kept (`store`, `images`), what drives a run to its end
(`runner`), and what its followers are told (`events`)."""

from __future__ import annotations

from .events import RunFeed, events_between, run_event_stream
from .images import FileRunImageStore, ImageKeeper, RunImageStore, is_digest, run_image, run_image_url
from .runner import OnRestart, RunRunner
from .store import FileRunStore, RunStore, is_run_id, new_run_id, summary_of

__all__ = [
    "FileRunImageStore",
    "FileRunStore",
    "ImageKeeper",
    "OnRestart",
    "RunFeed",
    "RunImageStore",
    "RunRunner",
    "RunStore",
    "events_between",
    "is_digest",
    "is_run_id",
    "new_run_id",
    "run_event_stream",
    "run_image",
    "run_image_url",
    "summary_of",
]
