"""Korean sentences for mock answers (해요체, plain and concrete), built from the product's facts and the earlier
steps' outputs; particles follow the word before them (korean.py)."""

from __future__ import annotations

import random
import re

from .korean import josa
from .plan import kind_of
from .writer import Writer, head

__all__ = ["KoreanWriter"]

_TRAITS = (
    ("담백", "담백함"), ("친근", "친근함"), ("과장 없", "솔직함"), ("생활", "생활 밀착"), ("차분", "차분함"),
    ("신뢰", "신뢰감"), ("전문", "전문성"), ("쉽게", "친절함"), ("유쾌", "유쾌함"), ("재치", "재치"),
    ("따뜻", "따뜻함"), ("고급", "세련됨"), ("프리미엄", "세련됨"), ("활기", "활기참"), ("간결", "간결함"),
    ("근거", "근거 중심"), ("감성", "감성적"), ("명확", "명확함"),
)
_SCENES = (
    (("텀블러", "머그", "컵", "보틀", "주방", "tumbler", "mug", "bottle"), "노트북 옆 책상 위"),
    (("크림", "세럼", "스킨케어", "뷰티", "화장품", "cream", "serum", "skincare"), "햇살이 드는 욕실 선반 위"),
    (("가방", "백팩", "backpack", "bag"), "출근길 도심 거리"),
    (("헤드폰", "이어폰", "오디오", "headphone", "audio"), "재택근무 책상 위"),
)


def _end(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?" else f"{text}."


class KoreanWriter(Writer):
    """Writes each kind of field in Korean."""

    def scene_ko(self) -> str:
        """A setting that suits the product's category, in Korean."""
        source = f"{self.f.category} {self.f.name}".lower()
        return next((scene for words, scene in _SCENES if any(w in source for w in words)), "밝은 단색 배경")

    def fallback_points(self) -> list[str]:
        return ["매일 쓰기 편한 구성", "관리가 간단한 소재", "세심하게 다듬은 디테일"]

    # Brand profile.

    def positioning(self) -> str:
        who = self.audience_first()
        lead = f"{who}의 하루에 맞춘" if who else "매일 쓰기 좋은"
        return f"{lead} {self.name}. 핵심은 {_end(self.point(0))}"

    def personality(self) -> list[str]:
        found = [trait for word, trait in _TRAITS if word in self.f.voice]
        return self.distinct(found or ["믿음직함", "친근함", "실용성"])[:5]

    def tone_of_voice(self) -> list[str]:
        clauses = [c.strip() for c in re.split(r"[,;]", self.f.voice) if c.strip()]
        return self.distinct(clauses or ["차분하고 친절한 말투", "짧고 분명한 문장"])[:5]

    def dos(self) -> list[str]:
        lines = [f"{self.audience_core() or '고객'}의 실제 사용 장면으로 기능 설명하기"]
        numbers = [n for n in self.f.numbers() if not n.replace(",", "").replace(".", "").isdigit()]
        if numbers:
            lines.append(f"수치는 제품 정보 그대로 쓰기({', '.join(numbers[:3])})")
        if self.f.tones or self.f.voice:
            lines.append(f"{(self.f.tones or self.tone_of_voice())[0]} 유지하기")
        lines.append(f"첫 문장에서 {josa(self.point_head(0), '을')} 먼저 말하기")
        for news in self.notes_news():
            if not news.rstrip(".").endswith(("다", "요")):  # a noun-final line (`... 출시.`) takes 도
                lines.append(f"{news.rstrip('.')}도 함께 알리기")
        return self.distinct(lines)[:5]

    def donts(self) -> list[str]:
        lines = [re.sub(r"\s*금지\.?$", " 쓰지 않기", rule.strip()).rstrip(".") for rule in self.f.rules]
        lines.append("최고·최초·완벽 같은 최상급 표현 쓰지 않기")
        lines.append("제품 정보에 없는 인증·수상·수치 지어내지 않기")
        return list(dict.fromkeys(lines))[:5]

    def tagline(self) -> str:
        return f"{self.point_head(0)}, {self.brand} {self.category}"

    # Creative brief.

    def objective(self) -> str:
        who = self.audience_core() or "고객"
        return (f"{josa(who, '이')} {self.name}의 {josa(self.point_head(0), '과')} "
                f"{josa(self.point_head(1), '을')} 한 번의 스크롤로 이해하고 구매를 결정하게 하기")

    def audience(self) -> str:
        return self.f.audience or f"{self.category}를 비교해 보고 있는 고객"

    def key_messages(self) -> list[str]:
        who = self.audience_core() or "매일 쓰는 사람"
        lines = [f"{self.point_head(0)}: {who}의 하루에 맞춘 {self.category}"]
        if len(self.f.features) > 1:
            lines.append(f"{self.point(1)}까지 꼼꼼하게 챙겼어요")
        if len(self.f.features) > 2:
            lines.append(f"{self.point(2)}, 써 보면 바로 느껴지는 차이")
        return self.distinct(lines)

    def usp(self) -> str:
        return self.point(0)

    def proof_points(self) -> list[str]:
        return self.distinct(self.f.features or self.fallback_points())[:5]

    def constraints(self) -> list[str]:
        lines = [_end(rule) for rule in self.f.rules]
        lines.extend(_end(s) for s in self.notes_rules_other())
        if self.price_text():
            lines.append(f"가격은 {josa(self.price_text(), '으로')} 표기")
        lines.append("제품 정보에 있는 사실만 쓰기")
        return list(dict.fromkeys(lines))[:5]

    # Page plan.

    def page_goal(self) -> str:
        who = self.audience_core() or "고객"
        lead = f"{josa(who, '이')} 첫 화면에서 {josa(self.point_head(0), '을')} 확인하고"
        return f"{lead} 두세 번의 스크롤 안에 구매 버튼까지 가게 하기"

    def purpose(self, kind: str, points: list[str]) -> str:
        first = (points[0] if len(points[0]) <= 40 else head(points[0])) if points else self.point_head(0)
        who = self.audience_core() or "고객"
        return {
            "hero": f"첫 화면에서 {who}에게 {self.name}의 핵심({first}) 보여 주기",
            "benefits": f"{first}부터 시작해 기능을 생활 속 장점으로 풀어 주기",
            "features": f"{first} 등 세부 사양을 근거와 함께 정리하기",
            "how_to_use": f"사용과 관리 방법({first})을 미리 알려 구매 전 걱정 덜기",
            "specs": "크기·무게 같은 수치를 비교하기 쉽게 정리하기",
            "faq": "구매 전에 자주 묻는 질문에 답하기",
            "social_proof": "지어낸 후기 없이 실제 사용 장면 보여 주기",
            "cta": f"가격({self.price_text() or '판매가'})과 함께 구매 버튼으로 안내하기",
        }.get(kind_of(kind), f"{first} 알리기")

    def key_points(self, kind: str, points: list[str]) -> list[str]:
        if kind_of(kind) == "cta":
            lines = [f"판매가 {self.price_text()}" if self.price_text() else f"{self.name} 바로 구매"]
            lines.extend(news.rstrip(".") for news in self.notes_news())
            return self.distinct(lines)[:4]
        return self.distinct(points or [self.point(0)])[:4]

    def image_focus(self) -> str:
        return f"정면에서 본 {self.name} 전체, {self.scene_ko()}, 밝은 자연광"

    # Page copy.

    def headline(self) -> str:
        who = self.audience_core()
        if not self.f.features:
            return f"{self.name}, {self.point_head(0)}"
        return f"{who}의 {self.category}, {self.point_head(0)}" if who else f"{self.point_head(0)}, {self.name}"

    def subheadline(self) -> str:
        return f"{self.point_head(1)}부터 {self.point_head(2)}까지, 매일 쓰기 좋은 디테일을 담았어요."

    def section_title(self, kind: str, points: list[str]) -> str:
        who = self.audience_core() or "매일"
        return {
            "hero": head(points[0]) if points else self.name,
            "benefits": f"{who}의 하루가 편해지는 이유",
            "features": "꼼꼼하게 챙긴 디테일",
            "how_to_use": "쓰기 쉽고 관리도 간단하게",
            "specs": "한눈에 보는 제품 정보",
            "faq": "자주 묻는 질문",
            "social_proof": "이렇게 쓰고 있어요",
            "cta": f"지금 {self.brand} {self.category} 만나 보세요",
        }.get(kind_of(kind), head(points[0]) if points else self.name)

    def section_body(self, kind: str, points: list[str]) -> str:
        facts = " ".join(_end(p) for p in self.distinct(points)[:3])
        kind = kind_of(kind)
        if kind == "hero":
            who = self.audience_first()
            lead = f"{josa(who, '을')} 위해 만들었어요." if who else f"{josa(self.name, '을')} 소개해요."
            return f"{lead} {facts}".strip()
        if kind == "benefits":
            who = self.audience_core() or "바쁜 사람"
            return f"매일 쓰는 물건일수록 작은 차이가 크게 느껴져요. {facts} {who}의 하루에 맞췄어요.".strip()
        if kind == "features":
            return f"필요한 것만 꼼꼼하게 담았어요. {facts}".strip()
        if kind == "how_to_use":
            return f"쓰는 법도 관리도 어렵지 않아요. {facts}".strip()
        if kind == "cta":
            news = " ".join(_end(s) for s in self.notes_news())
            return f"{self.name}, {self.price_text() or '지금 구매할 수 있어요'}. {news}".strip()
        return facts or _end(self.point(0))

    def bullets(self, kind: str, points: list[str]) -> list[str]:
        return self.distinct(points)[:6]

    def cta_label(self) -> str:
        return "지금 구매하기"

    def cta_text(self) -> str:
        news = " ".join(_end(s) for s in self.notes_news())
        price = f" {self.price_text()}" if self.price_text() else ""
        return f"{self.name}{price}. {news}".strip()

    def alt_text(self) -> str:
        return f"{self.name} 제품 사진, {self.scene_ko()}에 놓인 모습"

    # Anything else.

    def notes_news(self) -> list[str]:
        """The notes' sentences that are news, not rules (a new colour, a launch)."""
        return [s for s in self._note_sentences() if s not in self.f.rules and not _is_rule(s)
                and not self.f.is_banned(s)]

    def notes_rules_other(self) -> list[str]:
        """The notes' sentences that set a rule without forbidding a term (`... 가이드 준수`)."""
        return [s for s in self._note_sentences() if s not in self.f.rules and _is_rule(s)]

    def _note_sentences(self) -> list[str]:
        return [s.strip() for s in re.split(r"(?<=[.!?])\s+", self.f.notes) if s.strip()]

    def sentence(self, index: int) -> str:
        """A sentence about the product: one of its facts, in turn."""
        fact = self.point(index)
        templates = (f"{josa(self.name, '은')} {fact}까지 챙겼어요.", f"핵심은 {_end(fact)}",
                     f"{fact}, 직접 써 보면 차이가 느껴져요.")
        return templates[index % len(templates)]

    def keywords(self) -> list[str]:
        words = [w for w in re.findall(r"[가-힣]{2,}", self.name) if w != self.brand]
        return self.distinct([*words, self.category, *(head(p) for p in self.f.features[:2])])

    def plain_answer(self, task: str, rng: random.Random) -> str:
        facts = " ".join(self.sentence(i) for i in range(3))
        return f"{self.name}에 대한 {task} 결과예요. {facts}"

    def label(self) -> str:
        return f"{self.name}: {self.point_head(0)}"

    def review_summary(self, verdict: str, counts: dict[str, int]) -> str:
        if verdict == "approve":
            extra = f" 게시 전에 작은 수정 {counts['minor']}건을 반영해 주세요." if counts.get("minor") else ""
            return f"브리프와 브랜드 톤을 잘 따랐고 제품의 실제 사실을 담았어요.{extra}"
        if verdict == "revise":
            return (f"방향은 좋지만 중요한 문제 {counts.get('major', 0)}건을 먼저 고쳐야 해요. "
                    "섹션별 이슈를 확인해 주세요.")
        return ("이대로는 게시할 수 없어요. 브랜드 가이드나 제품 노트에서 금지한 표현이 들어 있어요. "
                "해당 문장을 다시 써 주세요.")


def _is_rule(sentence: str) -> bool:
    return bool(re.search(r"준수|금지|지켜|따라|하지 ?말|않기", sentence))
