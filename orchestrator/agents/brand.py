"""BrandAgent (`brand`): the brand's positioning and voice for this product."""

from __future__ import annotations

from typing import Annotated

import msgspec

from orchestrator.agents.base import Agent, AgentOutput

__all__ = ["BrandAgent", "BrandProfile"]

Line = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
Word = Annotated[str, msgspec.Meta(min_length=1, max_length=60)]


class BrandProfile(AgentOutput):
    """How the brand speaks about this product."""

    positioning: Line
    personality: Annotated[list[Word], msgspec.Meta(min_length=1, max_length=5)]
    tone_of_voice: Annotated[list[Word], msgspec.Meta(min_length=1, max_length=5)]
    do: Annotated[list[Line], msgspec.Meta(min_length=1, max_length=5)]
    dont: Annotated[list[Line], msgspec.Meta(min_length=1, max_length=5)]
    tagline: Annotated[str, msgspec.Meta(min_length=1, max_length=120)]


class BrandAgent(Agent[BrandProfile]):
    """Turns the product's brand name and voice into a usable brand profile."""

    role = "brand"
    task = "brand_profile"
    output_type = BrandProfile
