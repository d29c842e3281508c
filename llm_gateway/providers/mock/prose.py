"""The words of mock answers: what each value of a document says, chosen by its field name and place.

Generic by design: the mock knows no agent. It reads the product and the earlier steps' outputs from the
payload (facts.py), writes in the product's language (write_ko.py, write_en.py), plans pages (plan.py) and
reviews copies (review.py) it finds there, and keys every value on the field's name, its parent's name and
its siblings (a section's `kind` or `section_id`). Deterministic: every choice comes from the `random.Random`
the caller seeds from the request.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .facts import Facts, find_payload_value
from .plan import allocate, kind_of, plan_kinds
from .review import AXES, Review, review_copy
from .slot import Slot
from .write_en import EnglishWriter
from .write_ko import KoreanWriter

__all__ = ["Prose", "find_payload_value"]

_WORD = re.compile(r"[A-Za-z0-9]+")
_NAME_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_QUOTED_KEY = re.compile(r"[\"'`]([A-Za-z_][A-Za-z0-9_]{1,30})[\"'`]")
_HEX = ("#1F3A5F", "#D8C3A5", "#2E5E4E", "#F4F1EA", "#3C3C3C", "#C0623B")
_COLOURS = ("deep navy", "warm sand", "forest green", "soft ivory", "charcoal grey", "terracotta")
_SECTION_ARRAYS = {"sections", "blocks", "modules", "parts"}
_ISSUE_ARRAYS = {"issues", "problems", "findings", "comments"}


def _words(name: str) -> set[str]:
    return {w.lower() for w in _NAME_WORDS.findall(name)}


class Prose:
    """Writes each value of a mock document about the payload's product, in the product's language."""

    def __init__(
        self, payload: Mapping[str, Any], *, role: str, task: str, messages: Sequence[Any] = ()
    ) -> None:
        self.facts = Facts.from_payload(payload, messages)
        self.flat = self.facts.flat
        self.product = self.facts.name
        self.role = role
        self.task = task.replace("_", " ").replace("-", " ")
        self.messages = messages
        self.writer: EnglishWriter | KoreanWriter = (
            KoreanWriter(self.facts) if self.facts.language == "ko" else EnglishWriter(self.facts)
        )
        self._review: Review | None = None
        self._counts: dict[tuple[str | int, ...], int] = {}
        self._kinds: dict[tuple[str | int, ...], list[Any]] = {}
        self._padding = 0

    # What the schema walker asks.

    def reuse(self, name: str) -> Any:
        """The payload's value for a field called `name`, if it has one."""
        return find_payload_value(self.flat, name)

    def text(self, slot: Slot, rng: random.Random) -> str:
        """The text for the string at `slot`."""
        if slot.index is not None:
            items = self._list(slot.name, slot, rng)
            if items:
                return items[slot.index % len(items)]
        return self._scalar(slot, rng)

    def count(self, slot: Slot, low: int, high: int, rng: random.Random) -> int | None:
        """How many items the array at `slot` should have; None leaves it to the schema walker."""
        words = _words(slot.name)
        items = self._list(slot.name, slot, rng) if slot.index is None else None
        wanted: int | None = len(items) if items else None
        if words & _ISSUE_ARRAYS and self.facts.copy is not None:
            wanted = len(self.review().issues)
        elif words & _SECTION_ARRAYS and not self.facts.plan:
            wanted = 5 if len(self.facts.features) >= 4 else 4
        if wanted is not None:
            self._counts[slot.path] = max(low, min(high, wanted))
        return wanted

    def pick(self, slot: Slot, options: list[Any], rng: random.Random) -> Any:
        """One of an enum's `options` for `slot`, consistent with the rest of the document."""
        words = _words(slot.name)
        section = self._section_index(slot)
        if section is not None and sum(kind_of(o) != "other" for o in options) >= 2:
            array, index = section
            kinds = self._kinds.setdefault(array, plan_kinds(options, self._counts.get(array, index + 1)))
            return kinds[index] if index < len(kinds) else options[0]
        issue = self._issue(slot)
        if issue is not None:
            wanted = issue.severity if words & {"severity", "level", "priority"} else issue.section_id
            if wanted in options:
                return wanted
        if words & {"verdict", "decision", "status", "outcome", "recommendation"}:
            chosen = _verdict_option(self.review().verdict, options)
            if chosen is not None:
                return chosen
        if words & {"language", "lang", "locale"} and self.facts.language in options:
            return self.facts.language
        if words & {"aspect", "orientation", "ratio"} and "square" in options:
            return "square"
        return rng.choice(options)

    def integer(self, slot: Slot, low: int, high: int, rng: random.Random) -> int | None:
        """An integer for `slot` in [low, high]; None leaves it to the schema walker."""
        words = _words(slot.name) | {w for name in slot.names[-2:-1] for w in _words(name)}
        if self.facts.copy is not None and words & {"score", "scores", "rating", "ratings", *AXES,
                                                    "fit", "clarity", "voice", "persuasiveness"}:
            score = self._score(slot.name)
            scaled = score if high <= 5 else score * 2 if high <= 10 else score * 20
            return max(low, min(high, scaled))
        if words & {"price", "cost", "amount"} and self.facts.price is not None:
            return max(low, min(high, int(self.facts.price)))
        return None

    def free_properties(self) -> dict[str, Any]:
        """Keys (and their schemas) for an object schema that names none, as in JSON mode."""
        users = [getattr(m, "content", "") for m in self.messages if getattr(m, "role", "") == "user"]
        last = users[-1] if users else ""
        asked = list(dict.fromkeys(_QUOTED_KEY.findall(last if isinstance(last, str) else "")))[:8]
        if asked:
            return {key: {"type": "array", "items": {"type": "string"}, "minItems": 1} if key.endswith("s")
                    else {"type": "string"} for key in asked}
        return {"product": {"type": "string"}, "summary": {"type": "string"},
                "highlights": {"type": "array", "items": {"type": "string"}, "minItems": 1}}

    def padding(self, slot: Slot, rng: random.Random) -> str:
        """More text to reach a minimum length."""
        self._padding += 1
        return " " + self.writer.sentence(self._padding)

    def pattern_candidates(self) -> tuple[str, ...]:
        """Strings about the product to try on a `pattern` before generating one from it."""
        return (self.slug(), self.product, *self.product_words())

    def plain_answer(self, rng: random.Random) -> str:
        """An answer for a task without a schema: a short paragraph naming the product and the task."""
        return self.writer.plain_answer(self.task, rng)

    def slug(self) -> str:
        """The product name as a URL slug."""
        return "-".join(w.lower() for w in _WORD.findall(self.product)) or "product"

    def product_words(self) -> tuple[str, ...]:
        """The product name's words, lower-cased."""
        return tuple(w.lower() for w in _WORD.findall(self.product) if len(w) > 2)

    def review(self) -> Review:
        """The review of the copy in the payload, computed once."""
        if self._review is None:
            self._review = review_copy(self.facts, self.writer)
        return self._review

    # How.

    def _section_index(self, slot: Slot) -> tuple[tuple[str | int, ...], int] | None:
        """(the array's path, this item's index) when `slot` is a field of an item of a sections-like array."""
        path = slot.path if slot.index is None else slot.path[:-1]
        if len(path) >= 3 and isinstance(path[-2], int) and isinstance(path[-3], str):
            if _words(path[-3]) & _SECTION_ARRAYS:
                return path[:-2], path[-2]
        return None

    def _section(self, slot: Slot) -> tuple[str, list[str]] | None:
        """The kind and the facts of the section `slot` belongs to, from the plan in the payload or our own."""
        found = self._section_index(slot)
        if found is None:
            return None
        array, index = found
        parent = slot.parent
        planned_id = parent.get("section_id") or parent.get("id")
        for record in self.facts.plan:
            if planned_id is not None and record.get("id") == planned_id:
                points = record.get("key_points") or record.get("points") or []
                return str(record.get("kind", planned_id)), [p for p in points if isinstance(p, str)]
        kinds = self._kinds.get(array) or [parent.get("kind", "other")]
        kind = str(parent.get("kind") or (kinds[index] if index < len(kinds) else "other"))
        allocated = allocate(kinds, self.facts.features)
        return kind, allocated[index] if index < len(allocated) else []

    def _issue(self, slot: Slot) -> Any:
        path = slot.path
        if self.facts.copy is None or len(path) < 3 or not isinstance(path[-2], int):
            return None
        if not (isinstance(path[-3], str) and _words(path[-3]) & _ISSUE_ARRAYS):
            return None
        issues = self.review().issues
        return issues[path[-2]] if path[-2] < len(issues) else None

    def _score(self, name: str) -> int:
        scores = self.review().scores
        words = _words(name)
        for axis, hints in (("brief_fit", {"brief", "fit", "relevance"}), ("clarity", {"clarity", "readability"}),
                            ("brand_voice", {"voice", "tone", "brand"}),
                            ("persuasiveness", {"persuasiveness", "conversion", "persuasion"})):
            if words & hints:
                return scores[axis]
        return min(scores.values())

    def _list(self, name: str, slot: Slot, rng: random.Random) -> list[str] | None:
        """The items of a list-valued field called `name`, when the writer has them."""
        w, words = self.writer, _words(name)
        section = self._section(slot)
        if section is not None and words & {"points", "bullets", "highlights", "features", "benefits"}:
            kind, points = section
            return w.key_points(kind, points) if words & {"key", "points"} else w.bullets(kind, points)
        table: tuple[tuple[set[str], Callable[[], list[str]]], ...] = (
            ({"personality", "traits", "character"}, w.personality),
            ({"tone", "voice"}, w.tone_of_voice),
            ({"dont", "donts", "avoid", "never"}, w.donts),
            ({"do", "dos"}, w.dos),
            ({"messages", "message"}, w.key_messages),
            ({"proof", "evidence", "reasons"}, w.proof_points),
            ({"constraints", "rules", "guardrails", "restrictions"}, w.constraints),
            ({"keywords", "keyword", "tags", "tag", "hashtags", "terms"}, w.keywords),
            ({"features", "highlights", "benefits", "points", "bullets", "usps"}, w.proof_points),
        )
        for hints, make in table:
            if words & hints:
                return make()
        return None

    def _scalar(self, slot: Slot, rng: random.Random) -> str:
        w, words = self.writer, _words(slot.name)
        parent = {x for name in slot.names[:-1] for x in _words(name)}
        section = self._section(slot)
        issue = self._issue(slot)
        if issue is not None and words & {"problem", "issue", "finding", "description"}:
            return str(issue.problem)
        if issue is not None and words & {"suggestion", "fix", "recommendation", "action"}:
            return str(issue.suggestion)
        if words & {"url", "link", "href", "uri"}:
            return f"https://example.com/products/{self.slug()}"
        if words & {"email"}:
            return "hello@example.com"
        if words & {"hex"}:
            return rng.choice(_HEX)
        if words & {"color", "colour", "colors", "colours", "palette"}:
            return rng.choice(_COLOURS)
        if words & {"prompt"}:
            return w.negative_prompt() if words & {"negative"} else w.image_prompt()
        if words & {"negative"}:
            return w.negative_prompt()
        if words & {"alt"}:
            return w.alt_text()
        if words & {"id", "sku", "code", "slug", "handle", "key"}:
            return self._identifier(slot, section, rng)
        if words & {"language", "locale", "lang"}:
            return self.facts.language
        if words & {"summary", "verdict", "conclusion"} and self.facts.copy is not None:
            return self.review().summary
        if section is not None:
            kind, points = section
            if words & {"purpose", "goal", "intent", "role"}:
                return w.purpose(kind, points)
            if words & {"title", "heading", "headline", "name"}:
                return w.section_title(kind, points)
            if words & {"body", "copy", "text", "content", "paragraph", "description"}:
                return w.section_body(kind, points)
        if parent & {"cta", "action", "button"} or words & {"cta", "button"}:
            return w.cta_label() if words & {"label", "cta", "button", "title"} else w.cta_text()
        return self._by_name(words, rng)

    def _by_name(self, words: set[str], rng: random.Random) -> str:
        w = self.writer
        if {"page", "goal"} <= words:
            return w.page_goal()
        table: tuple[tuple[set[str], Callable[[], str]], ...] = (
            ({"positioning", "position"}, w.positioning),
            ({"tagline", "slogan", "motto"}, w.tagline),
            ({"objective", "goal", "aim"}, w.objective),
            ({"audience", "persona", "customer", "customers", "segment", "target"}, w.audience),
            ({"unique", "usp", "selling", "proposition"}, w.usp),
            ({"focus", "image", "visual", "shot", "scene"}, w.image_focus),
            ({"subheadline", "subtitle", "subhead", "subheading"}, w.subheadline),
            ({"headline", "title", "heading", "hook"}, w.headline),
            ({"product"}, lambda: self.product),
            ({"label", "name", "subject"}, w.label),
            ({"tone", "voice", "style", "mood", "personality"}, lambda: w.tone_of_voice()[0]),
            ({"keyword", "keywords", "tag", "tags", "term"}, lambda: rng.choice(w.keywords() or [self.product])),
            ({"brand"}, lambda: w.brand),
            ({"price", "cost"}, lambda: w.price_text() or w.sentence(0)),
        )
        for hints, make in table:
            if words & hints:
                return make()
        first = rng.randrange(max(1, len(self.facts.features)))
        long = bool(words & _LONG_FIELDS)
        return " ".join(w.sentence(first + n) for n in range(2 if long else 1))

    def _identifier(self, slot: Slot, section: tuple[str, list[str]] | None, rng: random.Random) -> str:
        """An id: a planned section is named by its kind (`hero`, `how-to-use`), anything else by the product."""
        if section is not None:
            found = self._section_index(slot)
            kind = str(slot.parent.get("kind") or section[0])
            base = re.sub(r"[^a-z0-9]+", "-", kind.lower()).strip("-") or "section"
            if found is not None:
                kinds = self._kinds.get(found[0], [])
                earlier = [k for k in kinds[: found[1]] if k == slot.parent.get("kind")]
                return base if not earlier else f"{base}-{len(earlier) + 1}"
            return base
        return f"{self.slug()}-{rng.randint(100, 999)}"


def _verdict_option(verdict: str, options: Sequence[Any]) -> Any:
    hints = {"approve": ("approv", "accept", "pass", "ok", "publish", "ship"),
             "revise": ("revis", "change", "edit", "minor", "rework"),
             "reject": ("reject", "fail", "block", "decline")}[verdict]
    return next((o for o in options if isinstance(o, str) and o.lower().startswith(hints)), None)


_LONG_FIELDS = frozenset(
    {"description", "body", "copy", "text", "paragraph", "summary", "rationale", "reason", "feedback", "content",
     "story", "overview", "notes", "comment", "comments", "explanation", "message", "details", "intro", "answer"}
)
