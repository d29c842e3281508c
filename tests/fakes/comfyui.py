"""A protocol-faithful fake ComfyUI (aiohttp.web + WebSocket on 127.0.0.1) for tests.

It reproduces what was measured on a real ComfyUI 0.3.64 (recordings: tests/fixtures/comfyui/):
1. events go only to the `clientId` socket named in `POST /prompt`'s `client_id`;
2. `POST /prompt` answers 200 `{prompt_id, number, node_errors}`, 400 with `node_errors` for a bad graph
   (missing input, value out of range, not in list), and a text/plain 500 for a non-JSON body;
3. `status` twice → execution_start → execution_cached → per node, in dependency order: `progress_state`
   (running), `executing`, for a sampler one `progress_state` + `progress {value, max, prompt_id, node}` +
   binary preview per step, `executed` for output nodes, `progress_state` (finished) → execution_success →
   `status` → `executing {node: null, prompt_id}` last (history is written just before it);
4. execution_error (with a traceback of server paths, as the real one), then `executing` null; history
   `status_str: "error"`; interrupts look alike; `SaveImage` outside its output folder fails at run time
   with the real message, absolute paths included;
5. `/history/{id}` is `200 {}` for unknown and unfinished prompts; `/queue` tells them apart;
6. `/view` serves PNG bytes, 404/400 with an empty body;
7. only the previous prompt's node outputs are cached: a back-to-back identical prompt runs no node and
   `executed` names the old file; pixels depend on the seeds, and every image of a batch differs;
8. `/interrupt {prompt_id}` and `/queue {delete}` always answer 200;
9. `crash()` then `revive()`: sockets close, and the queue, history and cache are gone, like a kill -9.

Behaviour is chosen by markers in any string input of the graph (e.g. the positive prompt):
`[fail]` raises in KSampler, `[hang]` blocks KSampler until interrupted (or `unhang()`), `[drop]` closes
every socket mid-run. Knobs: `early_frames` (run the prompt before the POST answers), `refuse_ws`,
`refuse_ws_after_drop`, `cached_executed`, `reconnect_during_post` (the socket is down while the prompt runs,
and the POST answers only once the client has reconnected), `hold` (prompts wait in the queue until
`release()`). Everything received and every text frame sent is recorded for assertions, and `peak` is
the most prompts it ever held at once.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .comfyui_nodes import OUTPUT_NODES, SAMPLERS, encode_png, execution_order, pixels, signature, validate

__all__ = ["FakeComfyUI", "Received"]

# Where the fake pretends to be installed: its error texts carry these paths, as a real server's do.
INSTALL_DIR = "/opt/ComfyUI"
OUTPUT_DIR = INSTALL_DIR + "/output"


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
        outputs = [n for n, node in self.graph.items() if node["class_type"] in OUTPUT_NODES]
        return [self.number, self.prompt_id, self.graph, {"client_id": self.client_id}, outputs]


class _Interrupted(Exception):
    pass


class _Failed(Exception):
    def __init__(self, node_id: str, exception_type: str, message: str, where: str) -> None:
        super().__init__(node_id)
        self.node_id, self.exception_type, self.message, self.where = node_id, exception_type, message, where


def _traceback(where: str) -> list[str]:
    # The real traceback names the install folder of ComfyUI in every line.
    return [f'  File "{INSTALL_DIR}/execution.py", line 496, in execute\n    output_data, output_ui = ...\n',
            f'  File "{INSTALL_DIR}/execution.py", line 277, in process_inputs\n    result = f(**inputs)\n',
            f'  File "{INSTALL_DIR}/{where}\n']


class FakeComfyUI:
    """Start with `await fake.start()` (returns the base URL), stop with `await fake.close()`."""

    def __init__(self, *, checkpoints: tuple[str, ...] = ("sd_xl_base_1.0.safetensors",)) -> None:
        self.checkpoints = checkpoints
        self.received: list[Received] = []
        # Every text frame sent to a client, as (type, data).
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.history: dict[str, dict[str, Any]] = {}
        self.files: dict[tuple[str, str, str], bytes] = {}
        self.early_frames = False
        self.refuse_ws = False
        self.refuse_ws_after_drop = False
        self.reconnect_during_post = False
        # Older ComfyUI sends no `executed` for cached output nodes; their images are only in /history.
        self.cached_executed = True
        self.hold = False
        self.running: _Item | None = None
        self.hanging: str | None = None
        self.ws_connects = 0
        self.prompt_ids: list[str] = []
        # The most prompts queued or running at once, over the fake's life (a gateway's per-instance cap).
        self.peak = 0
        self._pending: list[_Item] = []
        self._sockets: dict[str, set[web.WebSocketResponse]] = {}
        # Node outputs of the previous prompt only, by cache key (None for nodes without UI output).
        self._cache: dict[str, dict[str, Any] | None] = {}
        self._interrupt = asyncio.Event()
        self._unhang = asyncio.Event()
        self._changed = asyncio.Condition()
        self._number = 0
        self._counter = 0
        self._runner: web.AppRunner | None = None
        self._worker: asyncio.Task[None] | None = None
        self._port = 0
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
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        self._port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{self._port}"
        self._worker = asyncio.create_task(self._work())
        return self.url

    async def close(self) -> None:
        self._interrupt.set()
        self._unhang.set()
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        await self.drop_sockets()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def crash(self) -> None:
        """Stop like a kill -9: sockets closed, connections refused, queue, history and cache forgotten."""
        await self.close()
        self._pending.clear()
        self.history.clear()
        self._cache.clear()
        self.running = self.hanging = None
        self._number = 0
        await self._notify()

    async def revive(self) -> None:
        """Listen again on the same port after `crash()`, with an empty queue and history."""
        self._interrupt.clear()
        await self.start()
        await self._notify()

    def unhang(self) -> None:
        """Let a `[hang]` prompt go on to succeed (instead of ending only when interrupted)."""
        self._unhang.set()

    def release(self) -> None:
        """Let prompts held by `hold` run."""
        self.hold = False
        asyncio.get_running_loop().create_task(self._notify())

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Block until `predicate()` holds; re-checked on every state change of the fake."""
        # The bound only turns a broken test into a failure instead of a hang; nothing waits on it.
        async with asyncio.timeout(30), self._changed:
            await self._changed.wait_for(predicate)

    def calls(self, method: str, path: str) -> list[Received]:
        """Requests received for one method and path."""
        return [r for r in self.received if r.method == method and r.path == path]

    def frames(self, prompt_id: str) -> list[tuple[str, dict[str, Any]]]:
        """Text frames sent for one prompt, in order (status frames carry no prompt id and are left out)."""
        return [(kind, data) for kind, data in self.sent if data.get("prompt_id") == prompt_id]

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
        # Every change of the queue passes here: the most prompts it ever held at once (queued + running).
        self.peak = max(self.peak, len(self._pending) + (self.running is not None))
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
        # The counter moves for rejected prompts too.
        self._number += 1
        problem = validate(graph, self.checkpoints)
        if problem is not None:
            return web.json_response(problem, status=400)
        # Like server.py: `prompt_id = str(json_data.get("prompt_id", uuid.uuid4()))`, a client may choose it.
        item = _Item(self._number - 1, str(data.get("prompt_id", uuid.uuid4())), graph, data.get("client_id"))
        self._pending.append(item)
        self.prompt_ids.append(item.prompt_id)
        await self._notify()
        if self.early_frames:
            await item.finished.wait()
        if self.reconnect_during_post:
            await self._run_while_disconnected(item)
        return web.json_response({"prompt_id": item.prompt_id, "number": item.number, "node_errors": {}})

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
            self._unhang.set()
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
        # The real answer lists the command line, install paths included.
        system = {"os": "posix", "comfyui_version": "0.3.64", "argv": ["main.py", "--output-directory", OUTPUT_DIR]}
        return web.json_response({"system": system, "devices": []})

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
        self.sent.append((kind, data))
        for ws in list(self._sockets.get(item.client_id or "", ())):
            if not ws.closed:
                await ws.send_json({"type": kind, "data": data})

    async def _send_preview(self, item: _Item) -> None:
        for ws in list(self._sockets.get(item.client_id or "", ())):
            if not ws.closed:
                await ws.send_bytes(b"\x00\x00\x00\x01\x00\x00\x00\x02preview")

    async def _work(self) -> None:
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda: bool(self._pending) and not self.hold)
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
            data = {"prompt_id": pid, **data}
            if keep:
                data["timestamp"] = int(time.time() * 1000)
                messages.append([kind, data])
            await self._send(item, kind, data)

        for _ in range(2):  # ComfyUI sends the queue size twice when a prompt starts
            await self._send(item, "status", {"status": self._status()})
        await event("execution_start", {})
        order = execution_order(graph)
        keys = {node_id: signature(graph, node_id) for node_id in order}
        cached = [node_id for node_id in graph if node_id in keys and keys[node_id] in self._cache]
        await event("execution_cached", {"nodes": cached})
        markers = " ".join(str(v) for n in graph.values() for v in n["inputs"].values() if isinstance(v, str))
        # Markers act in the sampler, or in the first node that runs when there is none.
        trigger = next((n for n in order if graph[n]["class_type"] in SAMPLERS), order[0])
        run = _Run(self, item, order)
        try:
            for node_id in order:
                if node_id in cached:
                    await run.cached(node_id, self._cache[keys[node_id]])
                    continue
                if self._interrupt.is_set():
                    raise _Interrupted(node_id)
                await run.begin(node_id)
                if graph[node_id]["class_type"] in SAMPLERS:
                    await run.steps(node_id, int(graph[node_id]["inputs"]["steps"]))
                if node_id == trigger:
                    await self._misbehave(item, node_id, markers)
                if graph[node_id]["class_type"] in OUTPUT_NODES:
                    await run.output(node_id, self._save(graph, node_id))
                await run.end(node_id)
        except _Interrupted as stop:
            node_id = str(stop)
            await event("execution_interrupted", {"node_id": node_id, "node_type": graph[node_id]["class_type"],
                                                  "executed": run.executed})
            self._finish(item, run.outputs, messages, "error")
        except _Failed as failed:
            await event("execution_error", {
                "node_id": failed.node_id, "node_type": graph[failed.node_id]["class_type"],
                "executed": run.executed, "exception_message": failed.message,
                "exception_type": failed.exception_type, "traceback": _traceback(failed.where),
                "current_inputs": {k: [v] for k, v in graph[failed.node_id]["inputs"].items()},
                "current_outputs": order,
            })
            self._finish(item, run.outputs, messages, "error")
        else:
            await event("execution_success", {})
            self._finish(item, run.outputs, messages, "success")
        self._cache = {keys[n]: run.outputs.get(n) for n in [*cached, *run.executed]}
        await self._send(item, "status", {"status": {"exec_info": {"queue_remaining": len(self._pending)}}})
        await self._send(item, "executing", {"node": None, "prompt_id": pid})

    async def _misbehave(self, item: _Item, node_id: str, markers: str) -> None:
        if "[fail]" in markers:
            raise _Failed(node_id, "torch.OutOfMemoryError", "Allocation on device ",
                          'comfy/sample.py", line 50, in sample\n    samples = sampler.sample(...)')
        if "[drop]" in markers:
            if self.refuse_ws_after_drop:
                self.refuse_ws = True
            await self.drop_sockets()
        if "[hang]" in markers:
            self.hanging = item.prompt_id
            if not self._interrupt.is_set():
                self._unhang.clear()
            await self._notify()
            # Set by an interrupt of this prompt and by `unhang()`.
            await self._unhang.wait()
            if self._interrupt.is_set():
                raise _Interrupted(node_id)
            self.hanging = None

    def _finish(self, item: _Item, outputs: dict[str, Any], messages: list[list[Any]], status: str) -> None:
        self.history[item.prompt_id] = {
            "prompt": item.queue_row(),
            "outputs": outputs,
            "status": {"status_str": status, "completed": status == "success", "messages": messages},
            "meta": {n: {"node_id": n, "display_node": n, "parent_node": None, "real_node_id": n} for n in outputs},
        }

    def _save(self, graph: dict[str, Any], node_id: str) -> dict[str, Any]:
        node = graph[node_id]
        prefix = str(node["inputs"].get("filename_prefix", "ComfyUI"))
        subfolder, _, base = prefix.rpartition("/")
        if node["class_type"] == "SaveImage" and (prefix.startswith("/") or ".." in subfolder.split("/")):
            # The real check resolves the folder and refuses anything outside the output folder.
            target = INSTALL_DIR if ".." in subfolder.split("/") else "/" + subfolder.strip("/")
            raise _Failed(
                node_id, "Exception",
                "**** ERROR: Saving image outside the output folder is not allowed.\n"
                f" full_output_folder: {target}\n         output_dir: {OUTPUT_DIR}\n"
                f"         commonpath: {INSTALL_DIR if target == INSTALL_DIR else '/'}\n",
                'folder_paths.py", line 397, in get_save_image_path\n    raise Exception(err)',
            )
        kind = "output" if node["class_type"] == "SaveImage" else "temp"
        images = []
        for image in pixels(graph, node_id):
            self._counter += 1
            filename = f"{base}_{self._counter:05d}_.png"
            self.files[(kind, subfolder, filename)] = encode_png(image)
            images.append({"filename": filename, "subfolder": subfolder, "type": kind})
        return {"images": images}


class _Run:
    """The frames of one prompt's nodes: `progress_state` around each, `executing`, sampler steps, `executed`."""

    def __init__(self, fake: FakeComfyUI, item: _Item, order: list[str]) -> None:
        self.fake, self.item, self.order = fake, item, order
        self.states: dict[str, dict[str, Any]] = {}
        self.outputs: dict[str, Any] = {}
        self.executed: list[str] = []

    def _state(self, node_id: str, value: float, top: float, state: str) -> None:
        pid = self.item.prompt_id
        self.states[node_id] = {"value": value, "max": top, "state": state, "node_id": node_id, "prompt_id": pid,
                                "display_node_id": node_id, "parent_node_id": None, "real_node_id": node_id}

    async def _progress_state(self) -> None:
        # Only nodes that are not pending are listed; cached nodes never are.
        nodes = {n: dict(s) for n, s in self.states.items()}
        await self.fake._send(self.item, "progress_state", {"prompt_id": self.item.prompt_id, "nodes": nodes})

    async def cached(self, node_id: str, output: dict[str, Any] | None) -> None:
        if output is None:
            return
        self.outputs[node_id] = output
        if self.fake.cached_executed:
            await self.fake._send(self.item, "executed", {"node": node_id, "display_node": node_id, "output": output,
                                                          "prompt_id": self.item.prompt_id})
        self._state(node_id, 1, 1, "finished")  # ints here, floats everywhere else: as measured
        await self._progress_state()

    async def begin(self, node_id: str) -> None:
        self._state(node_id, 0.0, 1.0, "running")
        await self._progress_state()
        await self.fake._send(self.item, "executing", {"node": node_id, "display_node": node_id,
                                                       "prompt_id": self.item.prompt_id})

    async def steps(self, node_id: str, steps: int) -> None:
        for step in range(1, steps + 1):
            self._state(node_id, step, steps, "running")
            await self._progress_state()
            await self.fake._send(self.item, "progress", {"value": step, "max": steps,
                                                          "prompt_id": self.item.prompt_id, "node": node_id})
            await self.fake._send_preview(self.item)

    async def output(self, node_id: str, output: dict[str, Any]) -> None:
        self.outputs[node_id] = output
        await self.fake._send(self.item, "executed", {"node": node_id, "display_node": node_id, "output": output,
                                                      "prompt_id": self.item.prompt_id})

    async def end(self, node_id: str) -> None:
        state = self.states[node_id]
        top = state["max"]
        self._state(node_id, top, top, "finished")
        await self._progress_state()
        self.executed.append(node_id)
