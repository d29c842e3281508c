"""The generator mode of a request, the `X-Generator-Mode` response header, and the `X-Mock-Scenario` header.

Both gateways (and both of the LLM Gateway's front ends) read the headers here, so they agree.

- The configured mode (`GENERATOR_MODE`) is one of mock, live, record, replay; `record` answers as `live`
  (and saves each answer as a fixture), so the mode an answer reports is mock, live or replay.
- `X-Generator-Mode` on a request picks the mode when the YAML allows it; on every response it says which
  mode answered (`ModeHeaderMiddleware`).
- `X-Mock-Scenario` asks the mock for a failure; any other mode refuses it with 400, so a scenario can
  never reach a real model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared_contracts.errors import InvalidRequest
from shared_contracts.llm import Mode
from shared_contracts.scenarios import SCENARIO_HEADER, Scenario, ScenarioRule, parse_scenario

__all__ = [
    "MODE_HEADER",
    "GeneratorMode",
    "ModeHeaderMiddleware",
    "answering_mode",
    "requested_mode",
    "requested_scenario",
]

MODE_HEADER = "x-generator-mode"
GeneratorMode = Literal["mock", "live", "record", "replay"]
_REQUESTABLE: tuple[Mode, ...] = ("mock", "live", "replay")


def answering_mode(mode: GeneratorMode) -> Mode:
    """The mode answers report for a configured mode: `record` answers live."""
    return "live" if mode == "record" else mode


def requested_mode(headers: Mapping[str, str], *, allowed: bool) -> Mode | None:
    """The mode the request's header asks for; None when there is none or the gateway does not allow it.

    `{"x-generator-mode": " Live "}` → `"live"`. Any other value than mock, live or replay is an
    InvalidRequest (400), but only when allowed: with the switch off the header is ignored, whatever it says.
    """
    if not allowed:
        return None
    value = headers.get(MODE_HEADER)
    if value is None:
        return None
    value = value.strip().lower()
    for mode in _REQUESTABLE:
        if value == mode:
            return mode
    raise InvalidRequest(f"{MODE_HEADER} must be 'mock', 'live' or 'replay'", details={"header": MODE_HEADER})


def requested_scenario(
    headers: Mapping[str, str], *, mode: Mode, known: Mapping[str, ScenarioRule]
) -> Scenario | None:
    """The request's `X-Mock-Scenario`, parsed against `known`; None when absent.

    Only mock mode honours it: in live or replay mode the header is a 400, so it never reaches a real model
    and a test that forgot it was pointed at a live gateway fails loudly instead of passing on a real answer.
    """
    value = headers.get(SCENARIO_HEADER)
    if value is None:
        return None
    if mode != "mock":
        raise InvalidRequest(
            f"X-Mock-Scenario is honoured only in mock mode; this request is answered in {mode} mode",
            details={"header": SCENARIO_HEADER, "mode": mode},
        )
    return parse_scenario(value, known)


class ModeHeaderMiddleware:
    """Says on every response which mode answers (`X-Generator-Mode: mock|live|replay`), errors included.

    The mode is the gateway's own, or the request's `X-Generator-Mode` when the YAML allows it and the value
    is valid (an invalid one gets its 400 from the handler, under the gateway's own mode).
    """

    def __init__(self, app: ASGIApp, *, mode: Mode, allow_header: bool) -> None:
        self.app = app
        self.mode = mode
        self.allow_header = allow_header

    def _mode_of(self, scope: Scope) -> Mode:
        if not self.allow_header:
            return self.mode
        try:
            return requested_mode(Headers(scope=scope), allowed=True) or self.mode
        except InvalidRequest:
            return self.mode

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = (MODE_HEADER.encode("ascii"), self._mode_of(scope).encode("ascii"))

        async def send_with_mode(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await self.app(scope, receive, send_with_mode)
