"""The six agents of the P0 flow; each talks to the gateways only through the clients."""

from __future__ import annotations

from .base import Agent, AgentInputs, AgentOutput, AgentResult, PromptLibrary, language_name
from .brand import BrandAgent, BrandProfile
from .brief import BriefAgent, CreativeBrief
from .copywriter import CallToAction, CopywriterAgent, PageCopy, SectionCopy
from .reviewer import Review, ReviewerAgent, ReviewIssue, ReviewScores
from .strategist import PagePlan, SectionPlan, StrategistAgent
from .vision import ImagePrompt, VisionGeneratorAgent, VisionOutput

__all__ = [
    "Agent",
    "AgentInputs",
    "AgentOutput",
    "AgentResult",
    "BrandAgent",
    "BrandProfile",
    "BriefAgent",
    "CallToAction",
    "CopywriterAgent",
    "CreativeBrief",
    "ImagePrompt",
    "PageCopy",
    "PagePlan",
    "PromptLibrary",
    "Review",
    "ReviewIssue",
    "ReviewScores",
    "ReviewerAgent",
    "SectionCopy",
    "SectionPlan",
    "StrategistAgent",
    "VisionGeneratorAgent",
    "VisionOutput",
    "language_name",
]
