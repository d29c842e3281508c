"""Mock content that makes sense (issue 14 item 4): the P0 agents' real requests answered by the mock provider.

Each step's request is built by the orchestrator's agent from the product and the earlier mock outputs, as
the flow does, so these tests see what a run shows: text in the product's language, built from its facts,
consistent along the flow, and a review whose issues are real problems of the copy.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from llm_gateway.providers.base import ProviderCall
from llm_gateway.providers.mock import MockProvider, MockSettings
from orchestrator.agents import (
    AgentInputs,
    AgentOutput,
    BrandAgent,
    BriefAgent,
    CopywriterAgent,
    ReviewerAgent,
    StrategistAgent,
    VisionGeneratorAgent,
)
from shared_contracts.flows import Product
from shared_contracts.llm import GenerateOptions, GenerateRequest

SAMPLES = Path(__file__).resolve().parents[2] / "orchestrator" / "samples"
HANGUL = re.compile(r"[\uac00-\ud7a3]")
# The old template phrases the issue quotes: mock text must come from the product, not from these.
TEMPLATE_PHRASES = ("built to last", "families who want something that lasts", "calm, premium and precise",
                    "fits naturally into your day", "Every part of", "Studio product photograph of")


def _product(name: str) -> Product:
    return msgspec.convert(json.loads((SAMPLES / f"{name}.json").read_text("utf-8")), Product)


def _call(request: GenerateRequest) -> ProviderCall:
    return ProviderCall(model="m", messages=request.messages, options=request.options or GenerateOptions(),
                        response_schema=request.response_schema, role=request.role, task=request.task,
                        payload=request.payload)


def _answer(agent: Any, inputs: AgentInputs) -> Any:
    provider = MockProvider("mock", MockSettings(fixtures_dir="/nonexistent"))
    text = provider.answer(_call(agent.request(inputs)))
    return msgspec.json.decode(text, type=agent.output_type)


def _flow(product: Product, *, copy_edit: Any = None) -> dict[str, Any]:
    """Every LLM step's typed output, each step seeing the earlier ones (the vision step's LLM half only)."""
    agents: dict[str, Any] = {"brand": BrandAgent(None), "brief": BriefAgent(None),  # type: ignore[arg-type]
                              "strategist": StrategistAgent(None), "copywriter": CopywriterAgent(None),  # type: ignore[arg-type]
                              "vision": VisionGeneratorAgent(None, None, image_sizes={}),  # type: ignore[arg-type]
                              "reviewer": ReviewerAgent(None)}  # type: ignore[arg-type]
    outputs: dict[str, AgentOutput] = {}
    for role, agent in agents.items():
        output = _answer(agent, AgentInputs(product=product, outputs=dict(outputs)))
        if role == "copywriter" and copy_edit is not None:
            output = copy_edit(output)
        if role != "vision":
            outputs[role] = output
        else:
            outputs["vision_prompt"] = output
    return {role: msgspec.to_builtins(out) for role, out in outputs.items()}


def _strings(value: Any, skip: tuple[str, ...] = ()) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() if k not in skip for s in _strings(v, skip)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v, skip)]
    return []


# Ids and enum values are ASCII by design; everything else is prose.
NOT_PROSE = ("id", "section_id", "kind", "severity", "verdict", "aspect")


@pytest.mark.parametrize("sample", ["ko_tumbler", "ko_skincare"])
def test_a_korean_product_gets_korean_sentences_throughout(sample: str) -> None:
    outputs = _flow(_product(sample))
    for role in ("brand", "brief", "strategist", "copywriter", "reviewer"):
        for text in _strings(outputs[role], NOT_PROSE):
            assert HANGUL.search(text), f"{role}: {text!r} is not Korean"
    vision = outputs["vision_prompt"]
    assert HANGUL.search(vision["alt_text"])
    # The image prompt is English for the image model; only the quoted product name keeps its Hangul.
    assert not HANGUL.search(vision["prompt"].replace(_product(sample).name, ""))


@pytest.mark.parametrize("sample", ["en_backpack", "en_headphones"])
def test_an_english_product_gets_english_text(sample: str) -> None:
    outputs = _flow(_product(sample))
    for role in ("brand", "brief", "strategist", "copywriter", "reviewer", "vision_prompt"):
        for text in _strings(outputs[role], NOT_PROSE):
            assert not HANGUL.search(text) and re.search(r"[A-Za-z]{3}", text), f"{role}: {text!r}"


@pytest.mark.parametrize("sample", ["ko_tumbler", "ko_skincare", "en_backpack", "en_headphones"])
def test_content_is_built_from_the_products_own_facts_and_stays_consistent(sample: str) -> None:
    product = _product(sample)
    outputs = _flow(product)
    everything = " ".join(s for role in outputs for s in _strings(outputs[role]))
    assert not [p for p in TEMPLATE_PHRASES if p in everything]
    brand, brief, plan, copy = outputs["brand"], outputs["brief"], outputs["strategist"], outputs["copywriter"]
    # The brief's audience is the product's target customer.
    assert brief["target_audience"] == product.target_customer
    assert brief["proof_points"] == product.key_features[:5]
    # The brand's voice lists are distinct and come from its stated voice; its don'ts are prohibitions.
    assert len(set(brand["tone_of_voice"])) == len(brand["tone_of_voice"])
    assert all(part in product.brand_voice for part in brand["tone_of_voice"][:1])
    assert all(re.search(r"않기|금지|^No |^Do not", line) for line in brand["dont"])
    # The plan opens with the hero and closes with the call to action; the copy follows it section by section.
    kinds = [s["kind"] for s in plan["sections"]]
    assert kinds[0] == "hero" and kinds[-1] == "cta" and len(set(kinds)) == len(kinds)
    assert [s["section_id"] for s in copy["sections"]] == [s["id"] for s in plan["sections"]]
    for planned, written in zip(plan["sections"], copy["sections"], strict=True):
        assert set(planned["key_points"]) <= set(written["bullets"]) or planned["kind"] == "cta"
    # Every key feature reaches the page; the price is next to the button; nothing the notes forbid appears.
    copy_text = " ".join(_strings(copy))
    assert all(feature in copy_text for feature in product.key_features)
    assert f"{product.price:,.0f}" in copy["cta"]["supporting_text"] or f"{product.price:,.2f}" in copy_text
    for term in re.findall(r"'([^']+)'", product.notes or ""):
        assert term not in copy_text
    assert product.name in outputs["vision_prompt"]["prompt"]


def test_same_request_same_answer() -> None:
    assert _flow(_product("ko_tumbler")) == _flow(_product("ko_tumbler"))


def _consistent(review: dict[str, Any]) -> None:
    """Severities, scores and verdict agree: critical ⇔ a score of 2 or less and reject, major ⇒ revise."""
    severities = {issue["severity"] for issue in review["issues"]}
    lowest = min(review["scores"].values())
    if "critical" in severities:
        assert review["verdict"] == "reject" and lowest <= 2
    elif "major" in severities:
        assert review["verdict"] == "revise" and lowest == 3
    else:
        assert review["verdict"] == "approve" and lowest >= 4


@pytest.mark.parametrize("sample", ["ko_tumbler", "ko_skincare", "en_backpack", "en_headphones"])
def test_the_review_of_a_good_copy_approves_and_names_only_real_problems(sample: str) -> None:
    outputs = _flow(_product(sample))
    review, copy = outputs["reviewer"], outputs["copywriter"]
    _consistent(review)
    assert review["verdict"] == "approve"
    features = set(_product(sample).key_features)
    sections = {s["section_id"]: s for s in copy["sections"]}
    for issue in review["issues"]:
        assert issue["severity"] == "minor" and issue["section_id"] in sections
        if "글머리표" in issue["problem"] or "bullets" in issue["problem"]:
            assert set(sections[issue["section_id"]]["bullets"]) <= features  # they really repeat the facts


def _add_to_first_body(text: str) -> Any:
    def edit(copy: Any) -> Any:
        copy.sections[1].body = f"{copy.sections[1].body} {text}"
        return copy
    return edit


def test_a_forbidden_claim_in_the_copy_is_a_critical_issue_and_a_reject() -> None:
    outputs = _flow(_product("ko_tumbler"), copy_edit=_add_to_first_body("'환경호르몬 0%' 소재라 안심이에요."))
    review = outputs["reviewer"]
    _consistent(review)
    critical = [i for i in review["issues"] if i["severity"] == "critical"]
    assert review["verdict"] == "reject" and review["scores"]["brand_voice"] <= 2
    assert critical and critical[0]["section_id"] == outputs["copywriter"]["sections"][1]["section_id"]
    assert "환경호르몬 0%" in critical[0]["problem"]


def test_a_missing_feature_and_an_invented_figure_are_major_issues_and_a_revise() -> None:
    def edit(copy: Any) -> Any:
        dropped = copy.sections[2]
        dropped.bullets = ["Fits every bag"]
        dropped.body = "Charges fully in 15 minutes."
        return copy

    outputs = _flow(_product("en_headphones"), copy_edit=edit)
    review = outputs["reviewer"]
    _consistent(review)
    problems = " ".join(i["problem"] for i in review["issues"] if i["severity"] == "major")
    assert review["verdict"] == "revise" and review["scores"]["brief_fit"] == 3
    assert "15 minutes" in problems and "Memory-foam ear cushions" in problems
