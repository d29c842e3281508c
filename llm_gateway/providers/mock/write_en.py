"""English sentences for mock answers, built from the product's facts and the earlier steps' outputs."""

from __future__ import annotations

import random
import re

from .plan import kind_of
from .writer import Writer, head

__all__ = ["EnglishWriter"]

_TRAITS = (
    ("confident", "confident"), ("clear", "clear"), ("practical", "practical"), ("friend", "friendly"),
    ("energetic", "energetic"), ("down-to-earth", "down-to-earth"), ("playful", "playful"), ("calm", "calm"),
    ("premium", "refined"), ("expert", "knowledgeable"), ("knows", "knowledgeable"), ("warm", "warm"),
    ("honest", "honest"), ("short", "concise"), ("simple", "simple"), ("bold", "bold"), ("trust", "trustworthy"),
)
_SUPERLATIVES = "'best', 'perfect', 'ultimate' or 'guaranteed'"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _low(text: str) -> str:
    return text if text[:2].isupper() else text[:1].lower() + text[1:]


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?" else f"{text}."


class EnglishWriter(Writer):
    """Writes each kind of field in English."""

    def fallback_points(self) -> list[str]:
        return ["a simple everyday routine", "easy care", "careful attention to detail"]

    # Brand profile.

    def positioning(self) -> str:
        who = self.audience_core() or "everyday use"
        return f"{self.name} for {who}: {_low(self.point(0))}."

    def personality(self) -> list[str]:
        voice = self.f.voice.lower()
        found = [trait for word, trait in _TRAITS if word in voice]
        return self.distinct(found or ["helpful", "honest", "practical"])[:5]

    def tone_of_voice(self) -> list[str]:
        clauses = [c.strip() for c in re.split(r"[,;]", self.f.voice) if c.strip()]
        return self.distinct([_cap(c) for c in clauses] or ["Clear and friendly", "Short sentences"])[:5]

    def dos(self) -> list[str]:
        lines = [f"Explain each feature through a moment in the day of {self.audience_core() or 'the customer'}"]
        numbers = self.f.numbers()
        if numbers:
            lines.append(f"Quote figures exactly as the product facts give them ({', '.join(numbers[:3])})")
        if self.f.tones or self.f.voice:
            lines.append(f"Keep the voice {_low((self.f.tones or self.tone_of_voice())[0])}")
        lines.append(f"Lead with the strongest fact: {_low(self.point_head(0))}")
        return self.distinct(lines)[:5]

    def donts(self) -> list[str]:
        lines = [_sentence(rule).rstrip(".") for rule in self.f.rules]
        lines.append(f"No superlatives such as {_SUPERLATIVES}")
        lines.append("No certifications, awards or figures that the product facts do not state")
        return list(dict.fromkeys(lines))[:5]

    def tagline(self) -> str:
        return f"{_cap(self.point_head(0))}. {self.brand}."

    # Creative brief.

    def objective(self) -> str:
        who = self.audience_core() or "shoppers"
        return (f"Help {who} see in one scroll why {self.name} fits their day "
                f"({_low(self.point_head(0))}, {_low(self.point_head(1))}) and add it to the cart")

    def audience(self) -> str:
        return self.f.audience or "Shoppers comparing options in this category"

    def key_messages(self) -> list[str]:
        who = self.audience_core() or "you"
        lines = [f"{_cap(self.point_head(i))}: made for {who}" if i == 0 else _cap(self.point(i))
                 for i in range(min(3, max(1, len(self.f.features))))]
        return self.distinct(lines)

    def usp(self) -> str:
        return _cap(self.point(0))

    def proof_points(self) -> list[str]:
        return self.distinct(self.f.features or self.fallback_points())[:5]

    def constraints(self) -> list[str]:
        lines = [_sentence(rule) for rule in self.f.rules]
        if self.price_text():
            lines.append(f"Quote the price as {self.price_text()}")
        lines.append("Use only facts from the product data")
        return list(dict.fromkeys(lines))[:5]

    # Page plan.

    def page_goal(self) -> str:
        who = self.audience_core() or "shoppers"
        return f"Take {who} from the first screen ({_low(self.point_head(0))}) to the buy button in a few scrolls"

    def purpose(self, kind: str, points: list[str]) -> str:
        first = _low(head(points[0])) if points else _low(self.point_head(0))
        who = self.audience_core() or "the shopper"
        return {
            "hero": f"Show {who} at a glance what {self.name} is and its lead fact: {first}",
            "benefits": f"Turn facts into everyday benefits for {who}, starting with {first}",
            "features": f"Back the promise with details: {first}",
            "how_to_use": f"Answer how it is used and cared for ({first}) before doubts arise",
            "specs": "List sizes, weights and figures so they can be compared",
            "faq": "Answer the questions people ask before buying",
            "social_proof": "Show how people use it, without invented reviews",
            "cta": f"Close with the price ({self.price_text() or 'as listed'}) and one clear button",
        }.get(kind_of(kind), f"Make the point: {first}")

    def key_points(self, kind: str, points: list[str]) -> list[str]:
        if kind_of(kind) == "cta":
            lines = [f"Price: {self.price_text()}" if self.price_text() else f"{self.name} in stock"]
            lines.extend(news.rstrip(".") for news in self.notes_news())
            return self.distinct(lines)[:4]
        return self.distinct(points or [self.point(0)])[:4]

    def image_focus(self) -> str:
        return f"The whole {self.category} from the front, {self.scene()}"

    # Page copy.

    def headline(self) -> str:
        who = self.audience_core() or "every day"
        return f"{_cap(self.point_head(0))}, made for {who}" if self.f.features else f"{self.name}, made for {who}"

    def subheadline(self) -> str:
        who = self.audience_core() or "every day"
        return f"{_sentence(_cap(self.point_head(1)))} {_sentence(_cap(self.point_head(2)))} Made for {who}."

    def section_title(self, kind: str, points: list[str]) -> str:
        who = self.audience_core() or "your day"
        return {
            "hero": f"Meet {self.name}",
            "benefits": f"Why {who} reach for it",
            "features": "The details that matter",
            "how_to_use": "Easy to use, easy to care for",
            "specs": "Specs at a glance",
            "faq": "Questions, answered",
            "social_proof": "How people use it",
            "cta": f"Get your {self.name}",
        }.get(kind_of(kind), _cap(head(points[0])) if points else self.name)

    def section_body(self, kind: str, points: list[str]) -> str:
        facts = " ".join(_sentence(_cap(p)) for p in self.distinct(points)[:3])
        who = self.audience_core() or "you"
        kind = kind_of(kind)
        if kind == "hero":
            return f"{self.name}: made for {who}. {facts}".strip()
        if kind == "benefits":
            return f"Small details add up when you use something every day. {facts} Made for {who}.".strip()
        if kind == "features":
            return f"Here is what you get. {facts} No guesswork.".strip()
        if kind == "how_to_use":
            return f"It works the way you expect. {facts}".strip()
        if kind == "cta":
            news = " ".join(_sentence(s) for s in self.notes_news())
            return f"{self.name}, {self.price_text() or 'ready to order'}. {news}".strip()
        return facts or _sentence(self.point(0))

    def bullets(self, kind: str, points: list[str]) -> list[str]:
        return self.distinct(points)[:6]

    def cta_label(self) -> str:
        return "Add to cart"

    def cta_text(self) -> str:
        price = f" for {self.price_text()}" if self.price_text() else ""
        news = " ".join(_sentence(s) for s in self.notes_news())
        return f"Get {self.name}{price}. {news}".strip()

    def alt_text(self) -> str:
        return f"{self.name} {self.scene().split(',')[0]}"

    # Anything else.

    def notes_news(self) -> list[str]:
        """The notes' sentences that are news, not rules (a new colour, a launch)."""
        return [s.strip() for s in re.split(r"(?<=[.!?])\s+", self.f.notes) if s.strip() and s.strip() not in
                [r.strip() for r in self.f.rules] and not self.f.is_banned(s)]

    def sentence(self, index: int) -> str:
        """A sentence about the product: one of its facts, in turn."""
        templates = ("{N}: {lp}.", "{p}.", "Worth knowing: {lp}.")
        fact = self.point(index)
        return templates[index % len(templates)].format(N=_cap(self.name), p=_cap(fact), lp=_low(fact))

    def keywords(self) -> list[str]:
        words = [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z-]{3,}", f"{self.name} {self.f.category}")]
        return self.distinct([*words, self.category, *(head(p).lower() for p in self.f.features[:2])])

    def plain_answer(self, task: str, rng: random.Random) -> str:
        facts = " ".join(self.sentence(i) for i in range(3))
        return f"{_cap(task)} for {self.name}. {facts}"

    def label(self) -> str:
        return f"{self.name}: {_low(self.point_head(0))}"

    def review_summary(self, verdict: str, counts: dict[str, int]) -> str:
        if verdict == "approve":
            minor = counts.get("minor", 0)
            extra = f" {minor} small fix{'es' if minor > 1 else ''} before it goes live." if minor else ""
            return f"The copy follows the brief and the brand voice, and names the product's real facts.{extra}"
        if verdict == "revise":
            major = counts.get("major", 0)
            return (f"Good base, but {major} major issue{'s' if major > 1 else ''} must be fixed first: "
                    "see the issues for each section.")
        return "Do not publish: the copy uses wording the brand or the product notes forbid. Rewrite those lines."
