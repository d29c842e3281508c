"""Reading the Postman collection: its requests, the status each expects, the ids each captures."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._layout import DEPLOY

COLLECTION_PATH = DEPLOY / "postman" / "pdp-gateways.postman_collection.json"
SCHEMA_V21 = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"

_STATUS = re.compile(r"pm\.response\.to\.have\.status\((\d{3})\)")
_CAPTURE = re.compile(r"""pm\.collectionVariables\.set\("(\w+)", pm\.response\.json\(\)((?:\.\w+|\[\d+\])*)\);""")
_VARIABLE = re.compile(r"\{\{([$\w]+)\}\}")


@dataclass(frozen=True)
class PostmanRequest:
    """One item of the collection, flattened: folder, name, request and its scripted expectations."""

    folder: str
    name: str
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: str | None
    expected_status: int
    captures: tuple[tuple[str, str], ...]

    @property
    def path(self) -> str:
        """The URL without its `{{base}}` variable."""
        return _VARIABLE.sub("", self.url, count=1)

    @property
    def base_variable(self) -> str:
        match = _VARIABLE.match(self.url)
        return match.group(1) if match else ""


def load_collection(path: Path = COLLECTION_PATH) -> dict[str, Any]:
    collection: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return collection


def requests_of(collection: Mapping[str, Any]) -> Iterator[PostmanRequest]:
    """Every request in order, folders first-to-last, as a replay would run them."""
    for folder in collection["item"]:
        for item in folder["item"]:
            script = "\n".join(line for event in item.get("event", []) if event["listen"] == "test"
                               for line in event["script"]["exec"])
            statuses = _STATUS.findall(script)
            if len(statuses) != 1:
                raise ValueError(f"{folder['name']} / {item['name']}: needs exactly one status assertion")
            request = item["request"]
            body = request.get("body", {}).get("raw") if request.get("body", {}).get("mode") == "raw" else None
            yield PostmanRequest(
                folder=folder["name"],
                name=item["name"],
                method=request["method"],
                url=request["url"]["raw"],
                headers=tuple((h["key"], h["value"]) for h in request.get("header", []) if not h.get("disabled")),
                body=body,
                expected_status=int(statuses[0]),
                captures=tuple(_CAPTURE.findall(script)),
            )


def substitute(text: str, variables: Mapping[str, str]) -> str:
    """Fill `{{name}}` from `variables` and Postman's dynamic `{{$guid}}`; an unknown name is an error."""

    def _one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "$guid":
            return str(uuid.uuid4())
        if name not in variables:
            raise KeyError(f"{{{{{name}}}}} is not a collection variable")
        return variables[name]

    return _VARIABLE.sub(_one, text)


def extract(document: Any, expression: str) -> str:
    """Evaluate a capture's `.a.b[0].c` path on a decoded JSON body."""
    value = document
    for key, index in re.findall(r"\.(\w+)|\[(\d+)\]", expression):
        value = value[key] if key else value[int(index)]
    return str(value)


def variables_of(collection: Mapping[str, Any]) -> dict[str, str]:
    return {v["key"]: v.get("value", "") for v in collection.get("variable", [])}


def used_variables(collection: Mapping[str, Any]) -> set[str]:
    return set(_VARIABLE.findall(json.dumps(collection, ensure_ascii=False))) - {"$guid"}
