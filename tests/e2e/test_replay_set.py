"""The shipped replay fixture set (fixtures/): what fixtures/build_samples.py makes of the hand-written answers.

If a prompt, a schema or the routing changes, the agents' requests (and so the fixtures' keys) change: this
test says so, before `GENERATOR_MODE=replay make e2e` would miss.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

from llm_gateway.fixtures import FixtureStore
from media_gateway.fixtures import MediaFixtures

ROOT = Path(__file__).resolve().parents[2]


def _builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_samples", ROOT / "fixtures" / "build_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_shipped_set_is_what_the_sources_build(tmp_path: Path) -> None:
    builder = _builder()
    built = await builder.build(tmp_path)
    assert built == ["en_backpack", "en_headphones", "ko_skincare", "ko_tumbler"]
    assert builder.differences(tmp_path, ROOT / "fixtures") == [], "run make replay-fixtures"


def test_every_shipped_fixture_loads_and_its_text_is_its_json() -> None:
    llm = FixtureStore(ROOT / "fixtures" / "llm")
    llm.load()
    media = MediaFixtures(ROOT / "fixtures" / "media")
    media.load()
    assert len(llm) == 24 and len(media) == 4
    for path in (ROOT / "fixtures" / "llm").rglob("*.json"):
        answer = json.loads(path.read_text(encoding="utf-8"))["answer"]
        assert json.loads(answer["text"]) == answer["json"], path
        assert answer["provider"] == "ollama" and answer["finish_reason"] == "stop"
        assert answer["usage"]["output_tokens"] > 0
