"""Server-rendered HTML: Jinja2 templates (package `orchestrator.pages/templates`) with autoescaping on for
every template and every value, so model output is always text, never markup. No template marks anything
safe (a test checks), and no page has an inline script or style (the CSP would refuse them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

import jinja2

from orchestrator.pages.views import PageView, RunView, page_view, pretty_json, run_view
from orchestrator.runs.images import run_image_url
from shared_contracts.flows import Product, RunDocument, RunImage

__all__ = ["PageRenderer", "StaticFile"]

_PACKAGE = "orchestrator.pages"
_STATUSES = ("running", "succeeded", "failed")


@dataclass(frozen=True, slots=True)
class StaticFile:
    """A file the console serves from `/static/`: its bytes, type and ETag."""

    body: bytes
    media_type: str
    etag: str


def _static(name: str, media_type: str) -> StaticFile:
    body = resources.files(_PACKAGE).joinpath("static", name).read_bytes()
    return StaticFile(body=body, media_type=media_type, etag=f'"{hashlib.sha256(body).hexdigest()[:32]}"')


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value / 1000:.2f} s" if value >= 10_000 else f"{value:,.0f} ms"


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def _when(value: datetime | None) -> str:
    return "–" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


class PageRenderer:
    """Renders the run page, its export, the console, the comparison, the key form and error pages."""

    def __init__(self, *, roles: Sequence[str], samples: Mapping[str, Product], auth: bool) -> None:
        self.roles = list(roles)
        self.samples = dict(samples)
        self.auth = auth
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader(_PACKAGE, "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["ms"] = _ms
        self.env.filters["when"] = _when
        self.env.filters["number"] = _number
        self.static = {
            "console.css": _static("console.css", "text/css; charset=utf-8"),
            "console.js": _static("console.js", "text/javascript; charset=utf-8"),
            "favicon.svg": _static("favicon.svg", "image/svg+xml"),
        }

    def _render(self, name: str, **values: Any) -> str:
        return self.env.get_template(name).render(auth=self.auth, **values)

    def run_page(self, doc: RunDocument, *, compare_with: str | None = None) -> str:
        """`GET /runs/{run_id}`: the product page, then the run's inside view."""
        return self._render(
            "run.html", page=page_view(doc), run=run_view(doc), compare_with=compare_with, export=False,
            static="/static/", image_src=lambda image: run_image_url(doc.run_id, image.id),
        )

    def export_page(self, doc: RunDocument, image_files: Mapping[str, str]) -> str:
        """The same page for an export folder: relative links only, no script, no links back to a server."""
        def image_src(image: RunImage) -> str:
            return image_files.get(image.id, "")

        return self._render(
            "run.html", page=page_view(doc), run=run_view(doc), compare_with=None, export=True, static="",
            image_src=image_src,
        )

    def console(
        self, runs: Sequence[RunDocument], *, status: str | None, product: Product | None, sample: str | None
    ) -> str:
        """`GET /`: the start form (a sample loaded when asked), the live panel, recent runs."""
        return self._render(
            "console.html", runs=[run_view(doc) for doc in runs], status=status, statuses=_STATUSES,
            product=product, sample=sample, samples=sorted(self.samples), roles=self.roles, static="/static/",
        )

    def compare(self, docs: Sequence[RunDocument]) -> str:
        """`GET /compare?run=A&run=B`: two runs side by side, copy and image."""
        columns: list[tuple[PageView, RunView]] = [(page_view(doc), run_view(doc)) for doc in docs]
        same = len({doc.product.name for doc in docs}) == 1
        return self._render(
            "compare.html", columns=columns, same_product=same, static="/static/",
            image_src=lambda run_id, image: run_image_url(run_id, image.id),
        )

    def login(self, next_path: str) -> str:
        """The key form a browser gets instead of a page when API keys are on and it has no session."""
        return self._render("login.html", next_path=next_path, static="/static/")

    def api_docs(self, document: Mapping[str, Any]) -> str:
        """`GET /docs`: the OpenAPI document as a page people read (no script, nothing from outside)."""
        operations = []
        for path, methods in document["paths"].items():
            for method, op in methods.items():
                body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
                operations.append({
                    "anchor": op["operationId"], "method": method.upper(), "path": path, "summary": op["summary"],
                    "description": op.get("description"), "secured": bool(op.get("security")),
                    "parameters": [{"name": p["name"], "where": p["in"], "description": p.get("description", "")}
                                   for p in op.get("parameters", [])],
                    "request": _schema_name(body),
                    "responses": [_response(status, answer) for status, answer in op["responses"].items()],
                })
        schemas = sorted(document["components"]["schemas"].items())
        return self._render(
            "api.html", info=document["info"], version=document["openapi"], operations=operations,
            secured=any(op["secured"] for op in operations), static="/static/",
            schemas=[(name, pretty_json(schema)) for name, schema in schemas],
        )

    def error(self, status: int, title: str, message: str) -> str:
        """An error page for browsers (programs get the JSON envelope)."""
        return self._render("error.html", status=status, title=title, message=message, static="/static/")


def _schema_name(schema: Mapping[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _response(status: str, answer: Mapping[str, Any]) -> dict[str, Any]:
    content = answer.get("content", {})
    media_type = next(iter(content), None)
    schema = content[media_type].get("schema", {}) if media_type else {}
    return {"status": status, "description": answer.get("description", ""), "media_type": media_type,
            "schema": _schema_name(schema)}
