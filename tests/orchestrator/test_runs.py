"""The file run store: atomic JSON files, lookups, recent runs, ids that cannot escape the folder."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from orchestrator.runs import FileRunStore, is_run_id, new_run_id, summary_of
from shared_contracts.errors import NotFound
from shared_contracts.flows import Product, RunDocument
from tests.orchestrator.answers import PRODUCT


def doc_with(run_id: str) -> RunDocument:
    return RunDocument(
        run_id=run_id, flow="p0-product-detail", status="running", mode=None, product=msgspec.convert(PRODUCT, Product),
        outputs={}, images=[], steps={}, started_at=datetime(2025, 1, 1, tzinfo=UTC), finished_at=None,
        duration_ms=None,
    )


def test_run_ids_sort_by_time_and_are_recognised() -> None:
    early = new_run_id(datetime(2025, 1, 1, 0, 0, 0, tzinfo=UTC))
    late = new_run_id(datetime(2025, 1, 1, 0, 0, 1, tzinfo=UTC))
    assert early.startswith("20250101T000000Z-") and early < late
    assert is_run_id(early) and not is_run_id("../etc/passwd") and not is_run_id(early + ".json")


async def test_save_then_get_round_trips(tmp_path: Path) -> None:
    store = FileRunStore(tmp_path / "runs")
    doc = doc_with(new_run_id())
    await store.save(doc)
    assert await store.get(doc.run_id) == doc
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [f"{doc.run_id}.json"]


async def test_saving_again_replaces_the_document(tmp_path: Path) -> None:
    store = FileRunStore(tmp_path)
    doc = doc_with(new_run_id())
    await store.save(doc)
    doc.status = "succeeded"
    await store.save(doc)
    assert (await store.get(doc.run_id)).status == "succeeded"
    assert len(list(tmp_path.iterdir())) == 1  # no temp file left behind


@pytest.mark.parametrize("run_id", ["20250101T000000Z-ffffffff", "../../secret", "x/../y", ""])
async def test_unknown_or_malformed_ids_are_not_found(tmp_path: Path, run_id: str) -> None:
    with pytest.raises(NotFound):
        await FileRunStore(tmp_path).get(run_id)


async def test_recent_lists_newest_first_and_skips_foreign_files(tmp_path: Path) -> None:
    store = FileRunStore(tmp_path)
    ids = [new_run_id(datetime(2025, 1, 1, 0, 0, second, tzinfo=UTC)) for second in range(3)]
    for run_id in ids:
        await store.save(doc_with(run_id))
    (tmp_path / "notes.json").write_text("{}")
    (tmp_path / f"{new_run_id()}.json").write_text("not json")
    recent = await store.recent(2)
    assert [doc.run_id for doc in recent] == [ids[2], ids[1]]
    assert summary_of(recent[0]).product_name == PRODUCT["name"]
    assert await FileRunStore(tmp_path / "absent").recent(5) == []
