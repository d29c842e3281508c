"""ReviewerAgent (`reviewer`): scores the copy against the brief, lists concrete issues, gives a verdict."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from orchestrator.agents.base import Agent, AgentInputs, AgentOutput
from orchestrator.agents.copywriter import PageCopy

__all__ = ["Review", "ReviewIssue", "ReviewScores", "ReviewerAgent", "Verdict"]

Score = Annotated[int, msgspec.Meta(ge=1, le=5)]
Line = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
Verdict = Literal["approve", "revise", "reject"]


class ReviewScores(AgentOutput):
    """1 (poor) to 5 (excellent) on each axis."""

    brief_fit: Score
    clarity: Score
    brand_voice: Score
    persuasiveness: Score


class ReviewIssue(AgentOutput):
    """One concrete problem in the copy, where it is, and how to fix it."""

    section_id: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    severity: Literal["minor", "major", "critical"]
    problem: Line
    suggestion: Line


class Review(AgentOutput):
    """The reviewer's judgement of the page copy."""

    scores: ReviewScores
    issues: Annotated[list[ReviewIssue], msgspec.Meta(max_length=8)]
    verdict: Verdict
    summary: Line


class ReviewerAgent(Agent[Review]):
    """Checks the copy against the brief, the plan and the brand."""

    role = "reviewer"
    task = "copy_review"
    output_type = Review
    needs = ("brand", "brief", "strategist", "copywriter")

    def schema(self, inputs: AgentInputs) -> dict[str, Any]:
        """Review's schema with each issue's `section_id` limited to the sections the copy has."""
        schema = super().schema(inputs)
        copy = self._earlier(inputs)["copywriter"]
        if not isinstance(copy, PageCopy):
            raise TypeError(f"reviewer agent: the copywriter output is {type(copy).__name__}, not PageCopy")
        schema["$defs"]["ReviewIssue"]["properties"]["section_id"] = {
            "enum": list(dict.fromkeys(s.section_id for s in copy.sections))
        }
        return schema
