"""CopywriterAgent (`copywriter`): headline, each planned section's copy, and the call to action."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from orchestrator.agents.base import Agent, AgentInputs, AgentOutput
from orchestrator.agents.strategist import PagePlan

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

    def schema(self, inputs: AgentInputs) -> dict[str, Any]:
        """PageCopy's schema with exactly one copy per planned section, in plan order, keyed by the plan's id.

        The gateway validates the answer against it (and a model with structured output follows it), so the copy
        can never name a section the strategist did not plan, skip one, or repeat one. `sections` is a tuple
        (`prefixItems` with the lengths pinned) and has no `items`: llama.cpp's grammar, which Ollama uses too,
        builds an array from `items` alone when both are there, so the ids would not be constrained.
        """
        schema = super().schema(inputs)
        plan = self._earlier(inputs)["strategist"]
        if not isinstance(plan, PagePlan):
            raise TypeError(f"copywriter agent: the strategist output is {type(plan).__name__}, not PagePlan")
        section = schema["$defs"].pop("SectionCopy")
        keyed = [
            {**section, "properties": {**section["properties"], "section_id": {"const": planned.id}}}
            for planned in plan.sections
        ]
        sections = schema["properties"]["sections"]
        sections.pop("items")
        sections.update(prefixItems=keyed, minItems=len(keyed), maxItems=len(keyed))
        if not schema["$defs"]:
            del schema["$defs"]
        return schema
