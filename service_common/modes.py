"""The generator mode of a request, the `X-Generator-Mode` response header, and the `X-Mock-Scenario` header.

Both gateways (and both of the LLM Gateway's front ends) read the headers here, so they agree.

- The configured mode (`GENERATOR_MODE`) is one of mock, live, record, replay; `record` answers as `live`
  (and saves each answer as a fixture), so the mode an answer reports is mock, live or replay.
- `X-Generator-Mode` on a request picks the mode when the YAML allows it; on every response it says which
  mode answered (`mode_header`, added by `service_common.http.RequestMiddleware`).
- `X-Mock-Scenario` asks the mock for a failure; any other mode refuses it with 400, so a scenario can
  never reach a real model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

from starlette.datastructures import Headers
from starlette.types import Scope

from shared_contracts.errors import InvalidRequest
from shared_contracts.llm import Mode
from shared_contracts.scenarios import SCENARIO_HEADER, Scenario, ScenarioRule, parse_scenario

__all__ = [
    "MODE_HEADER",
    "GeneratorMode",
    "answering_mode",
    "mode_header",
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


def mode_header(mode: Mode, *, allow_header: bool) -> Callable[[Scope], tuple[bytes, bytes]]:
    """The `X-Generator-Mode` response header for `service_common.http.RequestMiddleware`, errors included.

    The mode is the gateway's own, or the request's `X-Generator-Mode` when the YAML allows it and the value
    is valid (an invalid one gets its 400 from the handler, under the gateway's own mode).
    """
    name = MODE_HEADER.encode("ascii")
    fixed = (name, mode.encode("ascii"))
    if not allow_header:
        return lambda scope: fixed

    def per_request(scope: Scope) -> tuple[bytes, bytes]:
        try:
            asked = requested_mode(Headers(scope=scope), allowed=True)
        except InvalidRequest:
            return fixed
        return fixed if asked is None else (name, asked.encode("ascii"))

    return per_request
