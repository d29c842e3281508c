"""BriefAgent (`brief`): the creative brief the page is written and reviewed against."""

from __future__ import annotations

from typing import Annotated

import msgspec

from orchestrator.agents.base import Agent, AgentOutput

__all__ = ["BriefAgent", "CreativeBrief"]

Line = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]


class CreativeBrief(AgentOutput):
    """What the page must achieve, for whom, and with which messages."""

    objective: Line
    target_audience: Line
    key_messages: Annotated[list[Line], msgspec.Meta(min_length=1, max_length=5)]
    unique_selling_point: Line
    proof_points: Annotated[list[Line], msgspec.Meta(min_length=1, max_length=5)]
    constraints: Annotated[list[Line], msgspec.Meta(max_length=5)]


class BriefAgent(Agent[CreativeBrief]):
    """Writes the brief from the product and the brand profile."""

    role = "brief"
    task = "creative_brief"
    output_type = CreativeBrief
    needs = ("brand",)
