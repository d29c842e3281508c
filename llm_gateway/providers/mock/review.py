"""A mock review of a page copy found in the payload: real problems, found by checks, scored and judged.

Each issue names a section and a problem the copy really has (a forbidden term, a product fact the copy
never states, a figure the facts do not give, a body too long for a phone screen, bullets that only
repeat the facts, no price near the button, the audience never addressed). The severities set the scores
(critical → 2 or less on its axis, major → 3, minor → 4, none → 5) and the verdict (critical → reject,
major → revise, else approve), so a reader of the review finds it consistent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .facts import Facts
from .korean import josa
from .plan import kind_of
from .writer import Writer, head

__all__ = ["AXES", "Issue", "Review", "review_copy"]

AXES = ("brief_fit", "clarity", "brand_voice", "persuasiveness")
_SEVERITY = {"critical": 0, "major": 1, "minor": 2}
_FIGURE = re.compile(r"\d[\d,.]*(?:\s?(?:%|[A-Za-z]{1,8}(?![A-Za-z])))?")
_CALM = re.compile(r"과장|담백|차분|calm|understated|no hype|plain", re.IGNORECASE)
_LONG_BODY = {"ko": 280, "en": 420}

_TEXTS = {
    "ko": {
        "banned": ("'{term}' 표현은 제품 노트와 브랜드 가이드에서 금지한 표현이에요.",
                   "'{term}'{을} 빼고 제품 정보에 있는 사실로 바꿔 주세요."),
        "missing": ("핵심 기능 '{fact}'{이} 카피 어디에도 없어요.",
                    "이 섹션 글머리표에 '{fact}'{을} 추가해 주세요."),
        "figure": ("'{figure}'{은} 제품 정보에 없는 수치예요.",
                   "제품 정보에 있는 수치로 바꾸거나 빼 주세요."),
        "long": ("본문이 {length}자라 모바일 화면에서 길게 느껴져요.",
                 "두세 문장으로 줄이고 나머지는 글머리표로 옮겨 주세요."),
        "verbatim": ("글머리표가 제품 정보를 그대로 옮겨 적어 혜택이 잘 보이지 않아요.",
                     "하나 이상을 {audience}에게 주는 이점으로 바꿔 써 주세요."),
        "price": ("구매 버튼 근처에 가격이 없어 결정을 미루게 돼요.",
                  "'{price}'{을} 마지막 섹션 문구에 넣어 주세요."),
        "audience": ("카피가 {audience}{을} 직접 부르지 않아요.",
                     "첫 섹션에서 {audience}의 상황을 한 문장으로 짚어 주세요."),
        "exclaim": ("느낌표가 브랜드의 차분한 톤과 맞지 않아요.",
                    "느낌표를 빼고 마침표로 끝내 주세요."),
        "duplicate": ("섹션 제목 '{title}'{이} 다른 섹션과 겹쳐요.",
                      "섹션마다 내용을 드러내는 다른 제목을 붙여 주세요."),
    },
    "en": {
        "banned": ("'{term}' is wording the product notes and brand guide forbid.",
                   "Remove '{term}' and state a fact from the product data instead."),
        "missing": ("The key fact '{fact}' appears nowhere in the copy.",
                    "Add '{fact}' as a bullet in this section."),
        "figure": ("'{figure}' is a figure the product facts do not give.",
                   "Use a figure from the product facts or drop it."),
        "long": ("The body is {length} characters, long for a phone screen.",
                 "Cut it to two or three sentences and move the rest into bullets."),
        "verbatim": ("The bullets repeat the product facts word for word, so the benefits do not show.",
                     "Rewrite at least one as what it gives {audience}."),
        "price": ("No price near the buy button, which makes people put the decision off.",
                  "Add '{price}' to the closing section's text."),
        "audience": ("The copy never speaks to {audience}.",
                     "Name their situation in one sentence in the first section."),
        "exclaim": ("Exclamation marks clash with the brand's calm voice.",
                    "End those sentences with a full stop."),
        "duplicate": ("The section title '{title}' repeats another section's.",
                      "Give each section its own title."),
    },
}


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem of the copy, where it is, how bad, on which score axis, and the fix."""

    section_id: str
    severity: str
    axis: str
    problem: str
    suggestion: str


@dataclass
class Review:
    """The issues, the scores they imply, the verdict and a summary."""

    issues: list[Issue] = field(default_factory=list)
    scores: dict[str, int] = field(default_factory=lambda: dict.fromkeys(AXES, 5))
    verdict: str = "approve"
    summary: str = ""


def _texts(section: Mapping[str, Any]) -> str:
    bullets = section.get("bullets")
    parts = [section.get("title"), section.get("body"), *(bullets if isinstance(bullets, list) else [])]
    return " ".join(p for p in parts if isinstance(p, str))


class _Checker:
    def __init__(self, facts: Facts, writer: Writer, copy: Mapping[str, Any]) -> None:
        self.f, self.w = facts, writer
        self.lang = "ko" if facts.language == "ko" else "en"
        raw = copy.get("sections")
        self.sections = [s for s in raw if isinstance(s, Mapping)] if isinstance(raw, list) else []
        self.ids = [str(s.get("section_id") or s.get("id") or f"section-{n + 1}") for n, s in enumerate(self.sections)]
        cta = copy.get("cta")
        extras = [copy.get("headline"), copy.get("subheadline"),
                  *(cta.values() if isinstance(cta, Mapping) else [])]
        self.head_text = " ".join(e for e in extras if isinstance(e, str))
        self.all_text = " ".join([self.head_text, *(_texts(s) for s in self.sections)])
        self.issues: list[Issue] = []

    def add(self, code: str, at: int, severity: str, axis: str, **values: str) -> None:
        problem, suggestion = _TEXTS[self.lang][code]
        self.issues.append(Issue(self.ids[at], severity, axis, _fill(problem, values), _fill(suggestion, values)))

    def kind_index(self, *kinds: str, default: int = 0) -> int:
        plan = {str(p.get("id")): p.get("kind") for p in self.f.plan}
        for n, section_id in enumerate(self.ids):
            if kind_of(plan.get(section_id, section_id)) in kinds:
                return n
        return default

    def run(self) -> list[Issue]:
        if not self.sections:
            return []
        last = len(self.sections) - 1
        for term in self.f.banned:
            for n, section in enumerate(self.sections):
                if term.lower() in _texts(section).lower():
                    self.add("banned", n, "critical", "brand_voice", term=term)
        allowed = " ".join([*self.f.features, self.f.name, self.f.notes, self.w.price_text(), self.f.audience])
        for figure in dict.fromkeys(m.group(0).strip(" ,.") for m in _FIGURE.finditer(self.all_text)):
            number = re.match(r"[\d,.]*\d", figure)
            if number is not None and number.group(0) not in allowed:
                at = next((n for n, s in enumerate(self.sections) if figure in _texts(s)), 0)
                self.add("figure", at, "major", "brief_fit", figure=figure)
        for fact in self.f.features:
            if head(fact)[:14] not in self.all_text:
                self.add("missing", self.kind_index("features", "benefits"), "major", "brief_fit", fact=head(fact))
        limit = _LONG_BODY[self.lang]
        for n, section in enumerate(self.sections):
            body = section.get("body")
            if isinstance(body, str) and len(body) > limit:
                self.add("long", n, "minor", "clarity", length=str(len(body)))
        self.verbatim()
        price = self.w.price_text()
        if price and price not in _texts(self.sections[last]) + self.head_text:
            self.add("price", last, "minor", "persuasiveness", price=price)
        core = self.w.audience_core()
        if core and core.lower() not in self.all_text.lower():
            self.add("audience", 0, "minor", "brief_fit", audience=core)
        if "!" in self.all_text and _CALM.search(self.f.voice + " ".join(self.f.tones)):
            self.add("exclaim", next((n for n, s in enumerate(self.sections) if "!" in _texts(s)), 0), "minor",
                     "brand_voice")
        titles = [str(s.get("title", "")) for s in self.sections]
        for n, title in enumerate(titles):
            if title and title in titles[:n]:
                self.add("duplicate", n, "minor", "clarity", title=title)
        self.issues.sort(key=lambda i: _SEVERITY[i.severity])
        return self.issues

    def verbatim(self) -> None:
        features = set(self.f.features)
        for n, section in enumerate(self.sections):
            bullets = section.get("bullets")
            if isinstance(bullets, list) and len(bullets) >= 2 and all(b in features for b in bullets):
                self.add("verbatim", n, "minor", "persuasiveness", audience=self.w.audience_core() or "the reader")
                return


def _fill(template: str, values: Mapping[str, str]) -> str:
    """`{name}` → value, `{을}`-style particles after a value → the form that fits it."""
    out, last = [], ""
    for piece in re.split(r"(\{[^}]+\})", template):
        if piece.startswith("{") and piece.endswith("}"):
            key = piece[1:-1]
            if key in values:
                last = values[key]
                out.append(last)
            else:
                out.append(josa(last, key)[len(last):])
        else:
            out.append(piece)
    return "".join(out)


def review_copy(facts: Facts, writer: Writer) -> Review:
    """The review of the copy in `facts` (an empty, approving one when the payload has no copy)."""
    if facts.copy is None:
        return Review(summary=writer.review_summary("approve", {}))
    issues = _Checker(facts, writer, facts.copy).run()[:8]
    scores = dict.fromkeys(AXES, 5)
    for axis in AXES:
        on_axis = [i.severity for i in issues if i.axis == axis]
        if "critical" in on_axis:
            scores[axis] = 1 if on_axis.count("critical") > 1 else 2
        elif "major" in on_axis:
            scores[axis] = 3
        elif on_axis:
            scores[axis] = 4
    severities = {i.severity for i in issues}
    verdict = "reject" if "critical" in severities else "revise" if "major" in severities else "approve"
    counts = {s: sum(1 for i in issues if i.severity == s) for s in _SEVERITY}
    return Review(issues, scores, verdict, writer.review_summary(verdict, counts))
