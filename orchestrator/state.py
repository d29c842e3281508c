"""What the service's lifespan shares with every request handler."""

from __future__ import annotations

from typing import TypedDict

from starlette.requests import Request

from orchestrator.clients import LLMGatewayClient, MediaGatewayClient
from orchestrator.config import OrchestratorConfig
from orchestrator.pages.render import PageRenderer
from orchestrator.pages.session import ConsoleSessions
from orchestrator.runs import RunFeed, RunImageStore, RunRunner, RunStore

__all__ = ["AppState", "app_state"]


class AppState(TypedDict):
    """What the lifespan puts on `request.state`."""

    config: OrchestratorConfig
    llm: LLMGatewayClient
    media: MediaGatewayClient
    runner: RunRunner
    store: RunStore
    images: RunImageStore
    feed: RunFeed
    pages: PageRenderer
    sessions: ConsoleSessions


def app_state(request: Request) -> AppState:
    """The lifespan's state, typed."""
    s = request.state
    return AppState(
        config=s.config, llm=s.llm, media=s.media, runner=s.runner, store=s.store, images=s.images, feed=s.feed,
        pages=s.pages, sessions=s.sessions,
    )
