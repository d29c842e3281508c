"""CopywriterAgent (`copywriter`): headline, each planned section's copy, and the call to action."""

from __future__ import annotations

from typing import Annotated

import msgspec

from orchestrator.agents.base import Agent, AgentOutput

__all__ = ["CallToAction", "CopywriterAgent", "PageCopy", "SectionCopy"]


class SectionCopy(AgentOutput):
    """The copy of one planned section, keyed by the strategist's section id."""

    section_id: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=1_200)]
    bullets: Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=200)]], msgspec.Meta(max_length=6)]


class CallToAction(AgentOutput):
    """The button label and the line next to it."""

    label: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    supporting_text: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class PageCopy(AgentOutput):
    """All the words on the page."""

    headline: Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
    subheadline: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    sections: Annotated[list[SectionCopy], msgspec.Meta(min_length=1, max_length=8)]
    cta: CallToAction


class CopywriterAgent(Agent[PageCopy]):
    """Writes the page's copy section by section, in the brand's voice."""

    role = "copywriter"
    task = "page_copy"
    output_type = PageCopy
    needs = ("brand", "brief", "strategist")
