"""Record and replay on the LLM Gateway, against the fake Ollama: record live answers (complete and streamed, native
and /v1), replay them with no upstream contact (same answers, `mode: replay`), miss clearly, keep files safe."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from llm_gateway.app import create_app
from llm_gateway.fixtures import FixtureStore, routed
from service_common.config import ConfigError
from service_common.fixtures import FixtureFiles, canonical_key, secrets_of, slug
from shared_contracts.llm import GenerateRequest
from tests.fakes.asgi import AsgiClient, sse_events
from tests.fakes.ollama import FakeOllama

from ._support import make_config

SCHEMA = {
    "type": "object",
    "properties": {"headline": {"type": "string"}, "bullets": {"type": "array", "items": {"type": "string"}}},
    "required": ["headline", "bullets"],
}
STRUCTURED = {
    "role": "copywriter", "task": "headline", "response_schema": SCHEMA, "metadata": {"run_id": "r-1"},
    "payload": {"product": {"name": "Aurora"}},
    "messages": [{"role": "system", "content": "You write product copy."},
                 {"role": "user", "content": "Write the headline for the Aurora desk lamp."}],
}
PLAIN = {"role": "brand", "task": "tagline", "options": {"temperature": 0.2},
         "messages": [{"role": "user", "content": "A tagline for Trailhead backpacks."}]}
CHAT = {"model": "role:reviewer/task:chat", "messages": [{"role": "user", "content": "Is this copy clear?"}]}
SECRET = "sk-live-0123456789abcdef"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOllama]:
    async with FakeOllama() as server:
        yield server


def recording(fake: FakeOllama, folder: Path) -> Any:
    config = make_config(fake.base_url, mode="record", fixtures_dir=str(folder))
    return create_app(config)


def replaying(folder: Path) -> Any:
    # Port 9: nothing listens; a replay that tried to call out would fail, not pass.
    return create_app(make_config("http://127.0.0.1:9", mode="replay", fixtures_dir=str(folder)))


async def answers(app: AsgiClient) -> dict[str, Any]:
    """One of each: native complete (structured), native streamed, /v1 complete, /v1 streamed."""
    native = await app.post("/api/v1/llm/generate", json=STRUCTURED)
    streamed = await app.post("/api/v1/llm/generate/stream", json=PLAIN)
    chat = await app.post("/v1/chat/completions", json=CHAT)
    chat_stream = await app.post("/v1/chat/completions", json={**CHAT, "model": "role:brief/task:chat",
                                                                "stream": True})
    events = sse_events(streamed.body)
    chunks = [json.loads(line[6:]) for line in chat_stream.body.decode().splitlines()
              if line.startswith("data: {")]
    return {
        "native": native.json(),
        "native_mode": native.headers["x-generator-mode"],
        "pieces": [data["text"] for name, data in events if name == "delta"],
        "streamed": next(data for name, data in events if name == "done"),
        "chat": chat.json(),
        "chat_pieces": [c["choices"][0]["delta"].get("content") for c in chunks if c.get("choices")],
        "chat_mode": chat.headers["x-generator-mode"],
    }


def _same_answer(recorded: dict[str, Any], replayed: dict[str, Any]) -> None:
    for field in ("text", "json", "finish_reason", "usage", "provider", "model"):
        assert replayed[field] == recorded[field], field


async def test_record_then_replay_gives_the_same_answers_without_the_upstream(fake: FakeOllama, tmp_path: Path) -> None:
    folder = tmp_path / "fixtures"
    async with AsgiClient(recording(fake, folder)) as app:
        recorded = await answers(app)
    calls = len(fake.chat_requests)
    assert calls == 4 and recorded["native_mode"] == "live" and recorded["native"]["mode"] == "live"
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.json"))
    assert [f.split("/")[0] for f in files] == ["brand", "brief", "copywriter", "reviewer"]

    async with AsgiClient(replaying(folder)) as app:
        replayed = await answers(app)
    assert len(fake.chat_requests) == calls  # nothing reached the upstream
    assert replayed["native_mode"] == replayed["chat_mode"] == "replay"
    assert replayed["native"]["mode"] == replayed["streamed"]["mode"] == "replay"
    _same_answer(recorded["native"], replayed["native"])
    _same_answer(recorded["streamed"], replayed["streamed"])
    assert replayed["native"]["json"] == recorded["native"]["json"] and replayed["native"]["json"]["headline"]
    # A stream replays in the pieces the upstream sent.
    assert replayed["pieces"] == recorded["pieces"] and len(recorded["pieces"]) > 1
    assert replayed["chat_pieces"] == recorded["chat_pieces"]
    assert replayed["chat"]["choices"][0]["message"] == recorded["chat"]["choices"][0]["message"]
    assert replayed["chat"]["usage"] == recorded["chat"]["usage"]
    assert replayed["chat"]["system_fingerprint"] == "fp_replay"
    assert replayed["native"]["attempts"] == [
        {"provider": "ollama", "model": recorded["native"]["model"], "outcome": "ok",
         "latency_ms": replayed["native"]["attempts"][0]["latency_ms"], "error_code": None}
    ]


async def test_fixture_files_are_readable_and_keyed_by_what_was_routed(fake: FakeOllama, tmp_path: Path) -> None:
    folder = tmp_path / "fixtures"
    async with AsgiClient(recording(fake, folder)) as app:
        await app.post("/api/v1/llm/generate", json=STRUCTURED)
        await app.post("/api/v1/llm/generate/stream", json=PLAIN)
    [structured] = (folder / "copywriter").glob("headline-*.json")
    text = structured.read_text(encoding="utf-8")
    doc = json.loads(text)
    assert text.endswith("\n") and '\n  "key": ' in text  # indented, one field a line: a diff shows what changed
    assert doc["request"] == {k: v for k, v in STRUCTURED.items() if k not in ("metadata", "payload")}
    assert doc["key"] == canonical_key(doc["request"]) and structured.name == f"headline-{doc['key'][:16]}.json"
    assert set(doc["answer"]) == {"provider", "model", "text", "json", "finish_reason", "usage", "chunks",
                                  "tool_calls", "logprobs"}
    assert doc["answer"]["chunks"] is None and doc["answer"]["json"] == json.loads(doc["answer"]["text"])
    [plain] = (folder / "brand").glob("tagline-*.json")
    chunks = json.loads(plain.read_text())["answer"]["chunks"]
    assert len(chunks) > 1 and "".join(chunks) == json.loads(plain.read_text())["answer"]["text"]


async def test_ids_context_and_key_order_do_not_change_the_key(fake: FakeOllama, tmp_path: Path) -> None:
    folder = tmp_path / "fixtures"
    async with AsgiClient(recording(fake, folder)) as app:
        await app.post("/api/v1/llm/generate", json=STRUCTURED)
    other = {**STRUCTURED, "metadata": {"run_id": "r-2"}, "payload": {"anything": 1},
             "response_schema": dict(reversed(list(SCHEMA.items())))}
    async with AsgiClient(replaying(folder)) as app:
        hit = await app.post("/api/v1/llm/generate", json=other)
    assert hit.status == 200 and hit.json()["mode"] == "replay"


async def test_a_miss_is_a_404_naming_the_key_and_the_closest_recording(fake: FakeOllama, tmp_path: Path) -> None:
    folder = tmp_path / "fixtures"
    async with AsgiClient(recording(fake, folder)) as app:
        await app.post("/api/v1/llm/generate", json=STRUCTURED)
    recorded_key = json.loads(next((folder / "copywriter").glob("*.json")).read_text())["key"]
    changed = {**STRUCTURED, "messages": [STRUCTURED["messages"][0],
                                          {"role": "user", "content": "Write the headline for the Aurora floor lamp."}]}
    async with AsgiClient(replaying(folder)) as app:
        miss = await app.post("/api/v1/llm/generate", json=changed)
        stream_miss = await app.post("/api/v1/llm/generate/stream", json=changed)
        unknown = await app.post("/api/v1/llm/generate", json={**STRUCTURED, "task": "never_recorded"})
        chat_miss = await app.post("/v1/chat/completions", json=CHAT)
    assert miss.status == stream_miss.status == 404 and miss.headers["x-generator-mode"] == "replay"
    error = miss.json()["error"]
    assert error["code"] == "fixture_missing"
    assert error["details"]["key"] == canonical_key(routed(msgspec.convert(changed, GenerateRequest)))
    assert error["details"]["closest"] == {
        "key": recorded_key, "file": f"copywriter/headline-{recorded_key[:16]}.json", "differs_in": ["messages[1]"]
    }
    assert "messages[1]" in error["message"]
    assert stream_miss.json()["error"]["code"] == "fixture_missing"  # before the stream starts: a real status
    assert unknown.json()["error"]["details"]["closest"] is None
    assert "never_recorded" in unknown.json()["error"]["message"]
    assert chat_miss.status == 404


async def test_scenarios_are_refused_in_replay_mode(fake: FakeOllama, tmp_path: Path) -> None:
    folder = tmp_path / "fixtures"
    async with AsgiClient(recording(fake, folder)) as app:
        recorded = await app.post("/api/v1/llm/generate", json=STRUCTURED, headers={"x-mock-scenario": "timeout"})
    async with AsgiClient(replaying(folder)) as app:
        replayed = await app.post("/api/v1/llm/generate", json=STRUCTURED, headers={"x-mock-scenario": "timeout"})
    assert recorded.status == replayed.status == 400
    assert not list(folder.rglob("*.json"))


async def test_credentials_never_reach_a_fixture(fake: FakeOllama, tmp_path: Path) -> None:
    fake.reply = f"Your key is {SECRET}, keep it safe."
    folder = tmp_path / "fixtures"
    providers = {"ollama": {"class": "llm_gateway.providers.ollama:OllamaProvider", "base_url": fake.base_url,
                            "headers": {"Authorization": f"Bearer {SECRET}"}}}
    config = make_config(fake.base_url, mode="record", fixtures_dir=str(folder), providers=providers)
    async with AsgiClient(create_app(config)) as app:
        live = await app.post("/api/v1/llm/generate", json=PLAIN)
    assert SECRET in live.json()["text"]  # the live answer is what the model said
    [saved] = folder.rglob("*.json")
    text = saved.read_text()
    assert SECRET not in text and "Your key is ***, keep it safe." in text


def test_credentials_are_found_in_provider_settings() -> None:
    sections = {"a": {"api_key": "sk-aaaaaaaaaaaa", "base_url": "http://x", "model": "long-model-name"},
                "b": {"headers": {"X-Custom": "token-bbbbbbbb"}}, "c": {"api_key": "short"}}
    assert set(secrets_of(sections)) == {"sk-aaaaaaaaaaaa", "token-bbbbbbbb"}


def test_names_from_clients_cannot_leave_the_folder(tmp_path: Path) -> None:
    store = FixtureStore(tmp_path / "fx")
    request = GenerateRequest(role="../../etc", task="/passwd\x00", messages=[{"role": "user", "content": "x"}])
    path = store.path_for(request, "a" * 64)
    assert path.parent.parent == tmp_path / "fx" and path.parent.name == "etc" and path.name.startswith("passwd-")
    assert slug("..") == "_" and slug("") == "_"
    files = FixtureFiles(tmp_path / "fx")
    for bad in ("..", ".", "a/b", "a\\b", ""):
        with pytest.raises(ValueError):
            files.path(bad)


def test_a_link_out_of_the_folder_is_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    folder = tmp_path / "fx" / "copywriter"
    folder.mkdir(parents=True)
    (folder / "headline-0000000000000000.json").symlink_to(outside)
    store = FixtureStore(tmp_path / "fx")
    store.load()
    assert len(store) == 0


def test_replay_needs_a_folder_and_readable_fixtures(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a folder"):
        replaying(tmp_path / "missing")
    broken = tmp_path / "broken" / "brand"
    broken.mkdir(parents=True)
    (broken / "x.json").write_text('{"format": 1, "key": "nope"')
    with pytest.raises(ConfigError, match="x.json"):
        replaying(tmp_path / "broken")
    edited = tmp_path / "edited" / "brand"
    edited.mkdir(parents=True)
    doc = {"key": "0" * 64, "request": {"role": "brand"}, "answer": {
        "provider": "p", "model": "m", "text": "t", "finish_reason": "stop",
        "usage": {"input_tokens": 1, "output_tokens": 1}}}
    (edited / "y.json").write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="does not match"):
        replaying(tmp_path / "edited")


async def test_a_complete_answer_keeps_the_chunking_a_stream_recorded(fake: FakeOllama, tmp_path: Path) -> None:
    folder = tmp_path / "fixtures"
    async with AsgiClient(recording(fake, folder)) as app:
        await app.post("/api/v1/llm/generate/stream", json=PLAIN)
        await app.post("/api/v1/llm/generate", json=PLAIN)
    [saved] = folder.rglob("*.json")
    assert len(json.loads(saved.read_text())["answer"]["chunks"]) > 1
