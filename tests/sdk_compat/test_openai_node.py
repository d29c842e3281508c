"""The official `openai` npm package (from npm, under Node) against the gateway's /v1, in mock mode and in front
of each provider. Node and the package come from .ci/node_deps.sh (`node_tools`)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from tests.upstreams.fixtures_engines import NodeTools

from .conftest import ALIAS, Gateway

SCRIPT = Path(__file__).with_name("openai_node.js")


async def run_node(tools: NodeTools, gateway: Gateway) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        "node", str(SCRIPT), gateway.v1, ALIAS, env=tools.env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out)
    return result


async def test_the_npm_sdk_works_against_the_gateway(node_tools: NodeTools, gateway: Gateway) -> None:
    result = await run_node(node_tools, gateway)
    assert result["create"]["model"] == ALIAS and result["create"]["content"]
    assert result["create"]["finish"] == "stop"
    assert result["stream"]["text"] and result["stream"]["models"] == [ALIAS]
    assert result["stream"]["usage"] is not None
    assert result["tools"]["name"] == "get_stock" and isinstance(result["tools"]["args"]["sku"], str)
    assert result["tools"]["finish"] == "tool_calls" and result["tools"]["after"]
    assert result["streamedTool"] == "get_stock"
    assert result["error"]["status"] == 404 and result["error"]["cls"] == "NotFoundError"
    assert result["error"]["code"] == "model_not_found" and result["error"]["param"] == "model"
    assert result["error"]["requestId"]
    assert result["retrieved"] == ALIAS
