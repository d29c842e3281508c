"""What the pages show, computed from a run document: the product page's copy and image, the run's steps as a
timeline, the reviewer's judgement linked to the sections. Plain data; the templates only lay it out.

Outputs are read back into the agents' types; an output that is missing (the step failed or never ran) or
does not decode is shown as missing, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import msgspec

from orchestrator.agents import BrandProfile, PageCopy, PagePlan, Review
from shared_contracts.errors import ErrorBody
from shared_contracts.flows import RunDocument, RunImage, StepRecord

__all__ = ["PageView", "ReviewView", "RunView", "SectionView", "StepView", "page_view", "run_view"]

T = TypeVar("T")
_pretty = msgspec.json.Encoder()
# Currencies shown without minor units.
_WHOLE_CURRENCIES = frozenset({"KRW", "JPY", "VND", "CLP", "ISK"})


def _typed(doc: RunDocument, role: str, kind: type[T]) -> T | None:
    raw = doc.outputs.get(role)
    if raw is None:
        return None
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError:
        return None


def pretty_json(value: Any) -> str:
    """Indented JSON text (escaped by the template like any other text)."""
    return msgspec.json.format(_pretty.encode(value), indent=2).decode("utf-8")


def price_text(price: float, currency: str) -> str:
    """`32,900 KRW`, `129.00 EUR`."""
    if currency in _WHOLE_CURRENCIES or price == int(price) and price >= 1000:
        return f"{price:,.0f} {currency}"
    return f"{price:,.2f} {currency}"


@dataclass(frozen=True, slots=True)
class IssueView:
    """One reviewer issue, with the anchor of the section it is about (None when no such section)."""

    section_id: str
    anchor: str | None
    severity: str
    problem: str
    suggestion: str


@dataclass(frozen=True, slots=True)
class SectionView:
    """One section of the page as written, with the plan's kind and the reviewer's issues about it."""

    anchor: str
    section_id: str
    kind: str
    title: str
    body: str
    bullets: list[str]
    issues: list[IssueView] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ReviewView:
    """The reviewer's scores (name, 1–5), verdict, summary and issues."""

    scores: list[tuple[str, int]]
    verdict: str
    summary: str
    issues: list[IssueView]


@dataclass(frozen=True, slots=True)
class PageView:
    """The product detail page of a run."""

    lang: str
    product_name: str
    brand_name: str
    category: str
    price: str
    tagline: str | None
    headline: str | None
    subheadline: str | None
    sections: list[SectionView]
    cta_label: str | None
    cta_text: str | None
    image: RunImage | None
    image_alt: str
    features: list[str]
    review: ReviewView | None


def page_view(doc: RunDocument) -> PageView:
    """The page as the copy describes it; parts whose step did not finish are None or empty."""
    copy = _typed(doc, "copywriter", PageCopy)
    plan = _typed(doc, "strategist", PagePlan)
    review = _typed(doc, "reviewer", Review)
    brand = _typed(doc, "brand", BrandProfile)
    vision = doc.outputs.get("vision")
    kinds = {section.id: section.kind for section in plan.sections} if plan else {}
    written = copy.sections if copy else []
    # Anchors are made here, not from the model's ids: whatever an id holds, a link cannot break out.
    anchors: dict[str, str] = {}
    for index, section in enumerate(written, start=1):
        anchors.setdefault(section.section_id, f"section-{index}")
    issues = _issues(review, anchors) if review else []
    sections = [
        SectionView(
            anchor=anchors[section.section_id], section_id=section.section_id,
            kind=kinds.get(section.section_id, "section"), title=section.title, body=section.body,
            bullets=list(section.bullets), issues=[i for i in issues if i.section_id == section.section_id],
        )
        for section in written
    ]
    alt = vision.get("alt_text") if isinstance(vision, dict) else None
    product = doc.product
    return PageView(
        lang=product.language,
        product_name=product.name,
        brand_name=product.brand_name,
        category=product.category,
        price=price_text(product.price, product.currency),
        tagline=brand.tagline if brand else None,
        headline=copy.headline if copy else None,
        subheadline=copy.subheadline if copy else None,
        sections=sections,
        cta_label=copy.cta.label if copy else None,
        cta_text=copy.cta.supporting_text if copy else None,
        image=doc.images[0] if doc.images else None,
        image_alt=alt if isinstance(alt, str) and alt else product.name,
        features=list(product.key_features),
        review=_review(review, issues) if review else None,
    )


def _issues(review: Review, anchors: dict[str, str]) -> list[IssueView]:
    return [
        IssueView(section_id=i.section_id, anchor=anchors.get(i.section_id), severity=i.severity,
                  problem=i.problem, suggestion=i.suggestion)
        for i in review.issues
    ]


def _review(review: Review, issues: list[IssueView]) -> ReviewView:
    scores = review.scores
    return ReviewView(
        scores=[("brief fit", scores.brief_fit), ("clarity", scores.clarity), ("brand voice", scores.brand_voice),
                ("persuasiveness", scores.persuasiveness)],
        verdict=review.verdict,
        summary=review.summary,
        issues=issues,
    )


@dataclass(frozen=True, slots=True)
class StepView:
    """One step as the timeline shows it: its record, and its bar as percentages of the run's span."""

    record: StepRecord
    bar_start: float
    bar_width: float
    parallel: bool


@dataclass(frozen=True, slots=True)
class RunView:
    """The run's inside view: status, mode, timing, the step timeline, the error, the raw document."""

    run_id: str
    status: str
    mode: str | None
    started_at: datetime
    finished_at: datetime | None
    duration_ms: float | None
    resumed_at: datetime | None
    failed_step: str | None
    error: ErrorBody | None
    error_details: str | None
    steps: list[StepView]
    span_ms: float
    raw_json: str
    product_name: str


def run_view(doc: RunDocument, *, parallel: frozenset[str] = frozenset({"copywriter", "vision"})) -> RunView:
    """The run as the inside view shows it; `parallel` names the steps that run at the same time."""
    ends = [_offset_ms(doc, s.finished_at) for s in doc.steps.values() if s.finished_at is not None]
    span = max([*ends, doc.duration_ms or 0.0, 1.0])
    steps: list[StepView] = []
    for role, record in doc.steps.items():
        start = _offset_ms(doc, record.started_at) if record.started_at else None
        end = _offset_ms(doc, record.finished_at) if record.finished_at else None
        if start is None:
            bar_start, bar_width = 0.0, 0.0
        else:
            stop = end if end is not None else span
            bar_start = min(100.0, 100.0 * start / span)
            # At least a sliver, so a step of a few milliseconds is still visible.
            bar_width = max(0.8, min(100.0 - bar_start, 100.0 * (stop - start) / span))
        steps.append(StepView(record=record, bar_start=round(bar_start, 2), bar_width=round(bar_width, 2),
                              parallel=role in parallel))
    error = doc.error
    return RunView(
        run_id=doc.run_id,
        status=doc.status,
        mode=doc.mode,
        started_at=doc.started_at,
        finished_at=doc.finished_at,
        duration_ms=doc.duration_ms,
        resumed_at=doc.resumed_at,
        failed_step=doc.failed_step,
        error=error,
        error_details=pretty_json(error.details) if error is not None and error.details else None,
        steps=steps,
        span_ms=round(span, 1),
        raw_json=pretty_json(doc),
        product_name=doc.product.name,
    )


def _offset_ms(doc: RunDocument, moment: datetime | None) -> float:
    if moment is None:
        return 0.0
    return max(0.0, (moment - doc.started_at).total_seconds() * 1000)
