"""StrategistAgent (`strategist`): the page's section structure."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from orchestrator.agents.base import Agent, AgentOutput

__all__ = ["PagePlan", "SectionKind", "SectionPlan", "StrategistAgent"]

Line = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
SectionKind = Literal["hero", "benefits", "features", "how_to_use", "specs", "social_proof", "faq", "cta"]


class SectionPlan(AgentOutput):
    """One section of the page: its place, kind, purpose and the points it must make."""

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    kind: SectionKind
    purpose: Line
    key_points: Annotated[list[Line], msgspec.Meta(min_length=1, max_length=4)]


class PagePlan(AgentOutput):
    """The page's goal and its ordered sections; `image_focus` says what the main image must show."""

    page_goal: Line
    sections: Annotated[list[SectionPlan], msgspec.Meta(min_length=2, max_length=8)]
    image_focus: Line


class StrategistAgent(Agent[PagePlan]):
    """Plans the detail page's sections from the brief."""

    role = "strategist"
    task = "page_structure"
    output_type = PagePlan
    needs = ("brand", "brief")
