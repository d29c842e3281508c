"""A protocol-faithful fake ComfyUI (aiohttp.web + WebSocket on 127.0.0.1) for tests.

It reproduces what was measured on a real server:
1. events go only to the `clientId` socket named in `POST /prompt`'s `client_id`;
2. `POST /prompt` answers 200 `{prompt_id, number, node_errors}`, 400 with `node_errors` for a bad graph,
   and a text/plain 500 for a non-JSON body;
3. status → execution_start → execution_cached → per node executing/progress/executed → execution_success
   → `executing {node: null}` last (history is written just before it); binary frames are previews;
4. execution_error, then `executing` null; history `status_str: "error"`; interrupts look alike;
5. `/history/{id}` is `200 {}` for unknown and unfinished prompts; `/queue` tells them apart;
6. `/view` serves PNG bytes, 404/400 with an empty body;
7. an identical resubmission is fully cached and `executed` names the old file;
8. `/interrupt {prompt_id}` and `/queue {delete}` always answer 200.

Behaviour is chosen by markers in any string input of the graph (e.g. the positive prompt):
`[fail]` raises in KSampler, `[hang]` blocks KSampler until interrupted, `[drop]` closes every socket
mid-run. Knobs: `early_frames` (run the prompt before the POST answers), `refuse_ws`,
`refuse_ws_after_drop`, `cached_executed`, `reconnect_during_post` (the socket is down while the prompt runs, and
the POST
answers only once the client has reconnected). Everything received is recorded for assertions.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image

__all__ = ["FakeComfyUI", "Received"]

_LINK = "link"
_SCHEMA: dict[str, dict[str, Any]] = {
    "CheckpointLoaderSimple": {"ckpt_name": str},
    "CLIPTextEncode": {"text": str, "clip": _LINK},
    "EmptyLatentImage": {"width": int, "height": int, "batch_size": int},
    "KSampler": {
        "seed": int, "steps": int, "cfg": float, "sampler_name": str, "scheduler": str, "denoise": float,
        "model": _LINK, "positive": _LINK, "negative": _LINK, "latent_image": _LINK,
    },
    "VAEDecode": {"samples": _LINK, "vae": _LINK},
    "SaveImage": {"filename_prefix": str, "images": _LINK},
    "PreviewImage": {"images": _LINK},
    "EmptyImage": {"width": int, "height": int, "batch_size": int, "color": int},
}
_OUTPUT_NODES = {"SaveImage", "PreviewImage"}


@dataclass
class Received:
    """One request the fake got."""

    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class _Item:
    number: int
    prompt_id: str
    graph: dict[str, Any]
    client_id: str | None
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    def queue_row(self) -> list[Any]:
        outputs = [n for n, node in self.graph.items() if node["class_type"] in _OUTPUT_NODES]
        return [self.number, self.prompt_id, self.graph, {"client_id": self.client_id}, outputs]


class _Interrupted(Exception):
    pass


def _error(kind: str, message: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": name, "extra_info": {"input_name": name, **extra}}


class FakeComfyUI:
    """Start with `await fake.start()` (returns the base URL), stop with `await fake.close()`."""

    def __init__(self, *, checkpoints: tuple[str, ...] = ("sd_xl_base_1.0.safetensors",)) -> None:
        self.checkpoints = checkpoints
        self.received: list[Received] = []
        self.history: dict[str, dict[str, Any]] = {}
        self.files: dict[tuple[str, str, str], bytes] = {}
        self.early_frames = False
        self.refuse_ws = False
        self.refuse_ws_after_drop = False
        self.reconnect_during_post = False
        # Older ComfyUI sends no `executed` for cached output nodes; their images are only in /history.
        self.cached_executed = True
        self.running: _Item | None = None
        self.hanging: str | None = None
        self.ws_connects = 0
        self.prompt_ids: list[str] = []
        self._pending: list[_Item] = []
        self._sockets: dict[str, set[web.WebSocketResponse]] = {}
        self._cache: dict[str, dict[str, Any]] = {}
        self._interrupt = asyncio.Event()
        self._changed = asyncio.Condition()
        self._number = 0
        self._counter = 0
        self._runner: web.AppRunner | None = None
        self._worker: asyncio.Task[None] | None = None
        self.url = ""

    # ---- lifecycle and test helpers
    async def start(self) -> str:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/ws", self._ws)
        app.router.add_post("/prompt", self._post_prompt)
        app.router.add_get("/queue", self._get_queue)
        app.router.add_post("/queue", self._post_queue)
        app.router.add_post("/interrupt", self._post_interrupt)
        app.router.add_get("/history/{prompt_id}", self._get_history)
        app.router.add_get("/view", self._view)
        app.router.add_get("/system_stats", self._system_stats)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._worker = asyncio.create_task(self._work())
        return self.url

    async def close(self) -> None:
        self._interrupt.set()
        if self._worker is not None:
            self._worker.cancel()
        for sockets in self._sockets.values():
            for ws in list(sockets):
                await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Block until `predicate()` holds; re-checked on every state change of the fake."""
        # The bound only turns a broken test into a failure instead of a hang; nothing waits on it.
        async with asyncio.timeout(30), self._changed:
            await self._changed.wait_for(predicate)

    def calls(self, method: str, path: str) -> list[Received]:
        """Requests received for one method and path."""
        return [r for r in self.received if r.method == method and r.path == path]

    @property
    def prompts(self) -> list[dict[str, Any]]:
        """Every graph received by `POST /prompt`, in order."""
        return [r.body["prompt"] for r in self.calls("POST", "/prompt") if isinstance(r.body, dict)]

    @property
    def pending(self) -> list[str]:
        """Ids of prompts waiting in the queue."""
        return [i.prompt_id for i in self._pending]

    @property
    def interrupts(self) -> list[Any]:
        """Bodies of every `POST /interrupt` (None when it had none: a global interrupt)."""
        return [r.body for r in self.calls("POST", "/interrupt")]

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def drop_sockets(self) -> None:
        """Close every client socket, as a restart of a proxy in front of ComfyUI would."""
        for sockets in self._sockets.values():
            for ws in list(sockets):
                await ws.close()

    async def _run_while_disconnected(self, item: _Item) -> None:
        """Every frame of `item` is sent while its client is away; it is back before the POST answers."""
        self.refuse_ws = True
        await self.drop_sockets()
        await item.finished.wait()
        self.refuse_ws = False
        connects = self.ws_connects
        await self.wait_for(lambda: self.ws_connects > connects)

    # ---- HTTP
    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        self.received.append(Received(request.method, request.path, dict(request.query), body))
        await self._notify()
        return await handler(request)

    async def _post_prompt(self, request: web.Request) -> web.Response:
        try:
            data = json.loads(await request.read())
        except ValueError:
            return web.Response(status=500, text="500 Internal Server Error\n\nServer got itself in trouble",
                                content_type="text/plain")
        graph = data.get("prompt")
        problem = self._validate(graph)
        if problem is not None:
            return web.json_response(problem, status=400)
        self._number += 1
        item = _Item(self._number, str(uuid.uuid4()), graph, data.get("client_id"))
        self._pending.append(item)
        self.prompt_ids.append(item.prompt_id)
        await self._notify()
        if self.early_frames:
            await item.finished.wait()
        if self.reconnect_during_post:
            await self._run_while_disconnected(item)
        return web.json_response({"prompt_id": item.prompt_id, "number": item.number, "node_errors": {}})

    def _validate(self, graph: Any) -> dict[str, Any] | None:
        if not isinstance(graph, dict):
            err = {"type": "invalid_prompt", "message": "Cannot execute because the prompt is not a graph.",
                   "details": "", "extra_info": {}}
            return {"error": err, "node_errors": {}}
        node_errors: dict[str, Any] = {}
        for node_id, node in graph.items():
            schema = _SCHEMA.get(node.get("class_type"))
            if schema is None:
                err = {"type": "invalid_prompt", "details": f"Node ID '#{node_id}'", "extra_info": {},
                       "message": f"Cannot execute because node {node.get('class_type')} does not exist."}
                return {"error": err, "node_errors": {}}
            errors = []
            inputs = node.get("inputs", {})
            for name, kind in schema.items():
                value = inputs.get(name)
                if value is None:
                    errors.append(_error("required_input_missing", "Required input is missing", name))
                elif kind is _LINK:
                    if not (isinstance(value, list) and value and str(value[0]) in graph):
                        errors.append(_error("bad_linked_input", "Bad linked input, must be a length-2 list", name))
                elif name == "ckpt_name" and value not in self.checkpoints:
                    errors.append(_error("value_not_in_list", "Value not in list", name, received_value=value))
                elif not isinstance(value, kind) and not (kind is float and isinstance(value, int)):
                    errors.append(_error("invalid_input_type", f"Failed to convert an input {name} value", name))
            if errors:
                outputs = [n for n, x in graph.items() if x.get("class_type") in _OUTPUT_NODES]
                node_errors[node_id] = {
                    "errors": errors, "dependent_outputs": outputs, "class_type": node["class_type"]
                }
        if node_errors:
            err = {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                   "details": "", "extra_info": {}}
            return {"error": err, "node_errors": node_errors}
        if not any(node["class_type"] in _OUTPUT_NODES for node in graph.values()):
            err = {"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "", "extra_info": {}}
            return {"error": err, "node_errors": []}
        return None

    async def _get_queue(self, request: web.Request) -> web.Response:
        running = [self.running.queue_row()] if self.running else []
        return web.json_response({"queue_running": running, "queue_pending": [i.queue_row() for i in self._pending]})

    async def _post_queue(self, request: web.Request) -> web.Response:
        data = json.loads(await request.read() or b"{}")
        if data.get("clear"):
            self._pending.clear()
        for prompt_id in data.get("delete", []):
            self._pending = [i for i in self._pending if i.prompt_id != prompt_id]
        await self._notify()
        return web.Response(status=200)

    async def _post_interrupt(self, request: web.Request) -> web.Response:
        try:
            prompt_id = json.loads(await request.read()).get("prompt_id")
        except (ValueError, AttributeError):
            prompt_id = None
        # Like ComfyUI: a prompt_id that is not running is ignored; no prompt_id is a global interrupt.
        if self.running is not None and prompt_id in (None, self.running.prompt_id):
            self._interrupt.set()
        return web.Response(status=200)

    async def _get_history(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["prompt_id"]
        entry = self.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry else {})

    async def _view(self, request: web.Request) -> web.Response:
        q = request.query
        if ".." in q.get("filename", "") or q.get("type") not in ("output", "temp", "input"):
            return web.Response(status=400)
        data = self.files.get((q.get("type", ""), q.get("subfolder", ""), q.get("filename", "")))
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="image/png")

    async def _system_stats(self, request: web.Request) -> web.Response:
        return web.json_response({"system": {"os": "posix", "comfyui_version": "0.0.0-fake"}, "devices": []})

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if self.refuse_ws:
            return web.Response(status=503)
        client_id = request.query.get("clientId") or uuid.uuid4().hex
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.setdefault(client_id, set()).add(ws)
        self.ws_connects += 1
        await self._notify()
        try:
            await ws.send_json({"type": "status", "data": {"status": self._status(), "sid": client_id}})
            async for _ in ws:
                pass
        finally:
            self._sockets[client_id].discard(ws)
        return ws

    # ---- execution
    def _status(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": len(self._pending) + (1 if self.running else 0)}}

    async def _send(self, item: _Item, kind: str, data: dict[str, Any]) -> None:
        for ws in list(self._sockets.get(item.client_id or "", ())):
            if not ws.closed:
                await ws.send_json({"type": kind, "data": data})

    async def _work(self) -> None:
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda: bool(self._pending))
            item = self._pending.pop(0)
            self.running = item
            self._interrupt.clear()
            await self._notify()
            try:
                await self._execute(item)
            finally:
                self.running = None
                self.hanging = None
                item.finished.set()
                await self._notify()

    async def _execute(self, item: _Item) -> None:
        pid, graph = item.prompt_id, item.graph
        messages: list[list[Any]] = []

        async def event(kind: str, data: dict[str, Any], *, keep: bool = True) -> None:
            # `keep`: the event is also one of history's status messages (and carries a timestamp).
            data = {**data, "prompt_id": pid}
            if keep:
                data["timestamp"] = int(time.time() * 1000)
                messages.append([kind, data])
            await self._send(item, kind, data)

        await self._send(item, "status", {"status": self._status()})
        await event("execution_start", {})
        key = json.dumps(graph, sort_keys=True)
        cached = self._cache.get(key)
        await event("execution_cached", {"nodes": list(graph) if cached is not None else []})
        markers = " ".join(str(v) for n in graph.values() for v in n["inputs"].values() if isinstance(v, str))
        outputs: dict[str, Any] = {}
        executed: list[str] = []
        # Markers act in the sampler, or in the first node of a graph without one.
        trigger = next((n for n, x in graph.items() if x["class_type"] == "KSampler"), next(iter(graph)))
        try:
            if cached is not None:
                for node_id, output in cached.items():
                    outputs[node_id] = output
                    if self.cached_executed:
                        await event("executed", {"node": node_id, "display_node": node_id, "output": output},
                                    keep=False)
            else:
                for node_id, node in graph.items():
                    if self._interrupt.is_set():
                        raise _Interrupted(node_id)
                    await self._send(item, "executing", {"node": node_id, "display_node": node_id, "prompt_id": pid})
                    if node["class_type"] == "KSampler":
                        await self._progress(item, node_id, node)
                    if node_id == trigger:
                        await self._misbehave(item, node_id, markers)
                    if node["class_type"] in _OUTPUT_NODES:
                        outputs[node_id] = self._save(graph, node)
                        data = {"node": node_id, "display_node": node_id, "output": outputs[node_id], "prompt_id": pid}
                        await self._send(item, "executed", data)
                    executed.append(node_id)
                self._cache[key] = outputs
        except _Interrupted as stop:
            node_id = str(stop)
            await event("execution_interrupted", {"node_id": node_id, "node_type": graph[node_id]["class_type"],
                                                  "executed": executed})
            self._finish(item, outputs, messages, "error")
        except RuntimeError as exc:
            node_id = str(exc)
            await event("execution_error", {
                "node_id": node_id, "node_type": graph[node_id]["class_type"], "executed": executed,
                "exception_message": "Allocation on device (fake out of memory)",
                "exception_type": "torch.OutOfMemoryError", "traceback": ["  File fake.py"],
                "current_inputs": {}, "current_outputs": {},
            })
            self._finish(item, outputs, messages, "error")
        else:
            await event("execution_success", {})
            self._finish(item, outputs, messages, "success")
        await self._send(item, "executing", {"node": None, "display_node": None, "prompt_id": pid})

    async def _progress(self, item: _Item, node_id: str, node: dict[str, Any]) -> None:
        steps = min(3, int(node["inputs"]["steps"]))
        for step in range(1, steps + 1):
            await self._send(item, "progress", {"value": step, "max": steps, "prompt_id": item.prompt_id,
                                                 "node": node_id})
            for ws in list(self._sockets.get(item.client_id or "", ())):
                if not ws.closed:
                    await ws.send_bytes(b"\x00\x00\x00\x01\x00\x00\x00\x02preview")

    async def _misbehave(self, item: _Item, node_id: str, markers: str) -> None:
        if "[fail]" in markers:
            raise RuntimeError(node_id)
        if "[drop]" in markers:
            if self.refuse_ws_after_drop:
                self.refuse_ws = True
            await self.drop_sockets()
        if "[hang]" in markers:
            self.hanging = item.prompt_id
            await self._notify()
            await self._interrupt.wait()
            raise _Interrupted(node_id)

    def _finish(self, item: _Item, outputs: dict[str, Any], messages: list[list[Any]], status: str) -> None:
        self.history[item.prompt_id] = {
            "prompt": item.queue_row(),
            "outputs": outputs,
            "status": {"status_str": status, "completed": status == "success", "messages": messages},
            "meta": {n: {"node_id": n, "display_node": n} for n in outputs},
        }

    def _source(self, graph: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
        # Follow links upstream until a node that sets the size (EmptyImage / EmptyLatentImage).
        if "width" in node["inputs"] and "height" in node["inputs"]:
            return node
        for value in node["inputs"].values():
            if isinstance(value, list) and value and str(value[0]) in graph:
                found = self._source(graph, graph[str(value[0])])
                if found:
                    return found
        return {}

    def _save(self, graph: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
        source = self._source(graph, node)["inputs"]
        width, height, batch = int(source["width"]), int(source["height"]), int(source["batch_size"])
        color = int(source.get("color", 0x4080C0))
        prefix = str(node["inputs"].get("filename_prefix", "ComfyUI"))
        subfolder, _, base = prefix.rpartition("/")
        kind = "output" if node["class_type"] == "SaveImage" else "temp"
        images = []
        for index in range(batch):
            self._counter += 1
            filename = f"{base}_{self._counter:05d}_.png"
            out = io.BytesIO()
            rgb = ((color >> 16) & 255, (color >> 8) & 255, (color + index) & 255)
            Image.new("RGB", (width, height), rgb).save(out, "PNG")
            self.files[(kind, subfolder, filename)] = out.getvalue()
            images.append({"filename": filename, "subfolder": subfolder, "type": kind})
        return {"images": images}
