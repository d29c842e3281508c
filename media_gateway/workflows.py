"""Workflow templates: ComfyUI API-format graphs plus the YAML mapping of request parameters into them.

The mapping is checked against the graph at start-up, so a renamed node or input stops the service
with its name instead of failing a job later.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service_common.config import ConfigError
from shared_contracts.errors import InvalidRequest
from shared_contracts.media import ImageRequest, WorkflowInfo, WorkflowParam

from .config import WorkflowSpec
from .params import STANDARD_TYPES, check_spec, check_value, kind_of

__all__ = ["STANDARD_PARAMS", "Workflow", "load_workflows"]

# Request fields that are workflow parameters by name; `params` may not repeat them.
STANDARD_PARAMS = tuple(STANDARD_TYPES)


@dataclass(frozen=True, slots=True)
class Workflow:
    """A validated workflow: its spec and (for graph providers) the API-format graph template."""

    name: str
    spec: WorkflowSpec
    graph: Mapping[str, Any] | None

    def info(self) -> WorkflowInfo:
        """The public description: names and defaults, never node ids."""
        spec = self.spec
        params = [
            WorkflowParam(name=n, default=p.default, description=p.description, type=kind_of(n, p), min=p.min,
                          max=p.max, choices=p.choices)
            for n, p in spec.params.items()
        ]
        return WorkflowInfo(name=self.name, description=spec.description, provider=spec.provider, params=params)

    def resolve(self, request: ImageRequest, *, seed: int) -> dict[str, Any]:
        """The job's parameters: YAML defaults, then the request's fields, then its `params`."""
        values: dict[str, Any] = {name: p.default for name, p in self.spec.params.items()}
        values.update(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            width=request.width,
            height=request.height,
            seed=seed,
            count=request.count,
        )
        for name, value in request.params.items():
            if name in STANDARD_PARAMS:
                raise InvalidRequest(f"params.{name}: set it as the request field '{name}'", details={"param": name})
            spec = self.spec.params.get(name)
            if spec is None:
                raise InvalidRequest(
                    f"params.{name}: workflow {self.name!r} has no such parameter",
                    details={"param": name, "known": sorted(self.spec.params)},
                )
            check_value(name, spec, value, field=f"params.{name}")
            values[name] = value
        # The request's own fields are typed by ImageRequest; a workflow may bound them further.
        for name in STANDARD_PARAMS:
            spec = self.spec.params.get(name)
            if spec is not None and values.get(name) is not None:
                check_value(name, spec, values[name], field=name)
        return values

    def inject(self, values: Mapping[str, Any]) -> dict[str, Any] | None:
        """A deep copy of the graph with each mapped parameter written into its node input."""
        if self.graph is None:
            return None
        graph: dict[str, Any] = copy.deepcopy(dict(self.graph))
        for name, spec in self.spec.params.items():
            if name in values and spec.node is not None and spec.input is not None:
                graph[spec.node]["inputs"][spec.input] = values[name]
        return graph


def _read_graph(path: Path, where: str) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{where}.file: cannot read {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}.file: {path} is not JSON: {exc}") from exc
    if not isinstance(raw, dict) or not all(
        isinstance(node, dict) and isinstance(node.get("class_type"), str) and isinstance(node.get("inputs"), dict)
        for node in raw.values()
    ):
        raise ConfigError(f"{where}.file: {path} is not a ComfyUI API-format graph (node id → class_type, inputs)")
    return raw


def _check_mapping(name: str, spec: WorkflowSpec, graph: Mapping[str, Any] | None) -> None:
    where = f"workflows.{name}"
    for pname, p in spec.params.items():
        at = f"{where}.params.{pname}"
        check_spec(at, pname, p)
        if graph is None:
            if p.node is not None or p.input is not None:
                raise ConfigError(f"{at}: node/input need a graph file, and this workflow has none")
            continue
        if p.node is None or p.input is None:
            raise ConfigError(f"{at}: both 'node' and 'input' are required for a graph workflow")
        node = graph.get(p.node)
        if node is None:
            raise ConfigError(f"{at}.node: node {p.node!r} is not in the graph {spec.file}")
        if p.input not in node["inputs"]:
            raise ConfigError(
                f"{at}.input: node {p.node!r} ({node['class_type']}) has no input {p.input!r}; "
                f"it has {sorted(node['inputs'])}"
            )
    for i, node_id in enumerate(spec.outputs):
        if graph is None or node_id not in graph:
            raise ConfigError(f"{where}.outputs[{i}]: node {node_id!r} is not in the graph")


def load_workflows(specs: Mapping[str, WorkflowSpec], *, base_dir: Path) -> dict[str, Workflow]:
    """Read every graph and validate its mapping; the first problem raises a ConfigError naming it."""
    workflows: dict[str, Workflow] = {}
    for name, spec in specs.items():
        graph = None
        if spec.file is not None:
            path = Path(spec.file)
            graph = _read_graph(path if path.is_absolute() else base_dir / path, f"workflows.{name}")
        _check_mapping(name, spec, graph)
        workflows[name] = Workflow(name=name, spec=spec, graph=graph)
    return workflows
