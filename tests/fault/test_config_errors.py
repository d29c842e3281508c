"""Issue 13 item 9: every config error, at start-up and from `check-config`, names the file, the YAML key
path and, for an empty `${VAR}`, the variable; including errors raised when providers are built.

Each case runs the real service process on a broken copy of its shipped YAML.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest

from orchestrator.tools.processes import REPO_ROOT

pytestmark = pytest.mark.slow

UNSET = "PDP_TEST_NEVER_SET"
_BOUND_S = 60.0


async def _run(*argv: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k != UNSET}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *argv, env=env, cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(_BOUND_S):
        out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode("utf-8", "replace")


def _broken(tmp_path: Path, name: str, old: str, new: str) -> Path:
    # A copy of the whole folder, so relative workflow files and fixtures resolve as they do in config/.
    folder = tmp_path / "config"
    shutil.copytree(REPO_ROOT / "config", folder)
    path = folder / f"{name}.yaml"
    text = path.read_text("utf-8")
    assert text.count(old) == 1, f"config/{name}.yaml no longer holds {old!r}"
    path.write_text(text.replace(old, new), "utf-8")
    return path


CASES = [
    # A provider's own setting misspelt: refused when the providers are built, after the file was loaded.
    pytest.param(
        "llm_gateway", "    base_url: ${OLLAMA_BASE_URL:-http://localhost:11434}\n",
        "    base_url: ${OLLAMA_BASE_URL:-http://localhost:11434}\n    kep_alive: 5m\n",
        "providers.ollama: Object contains unknown field `kep_alive`", id="llm-provider-typo",
    ),
    pytest.param(
        "llm_gateway", "${OLLAMA_BASE_URL:-http://localhost:11434}", f"${{{UNSET}}}",
        f"providers.ollama.base_url: Expected `str`, got `null` (${{{UNSET}}} is not set)", id="llm-provider-unset",
    ),
    pytest.param(
        "media_gateway", "${COMFYUI_BASE_URL:-http://localhost:8188}", f"${{{UNSET}}}",
        f"providers.comfyui.base_url: Expected `str`, got `null` (${{{UNSET}}} is not set)", id="media-provider-unset",
    ),
    pytest.param(
        "orchestrator", "${LLM_GATEWAY_URL:-http://127.0.0.1:8100}", f"${{{UNSET}}}",
        f"llm_gateway.base_url: Expected `str`, got `null` (${{{UNSET}}} is not set)", id="orchestrator-unset",
    ),
    pytest.param(
        "orchestrator", "  max_headers: 100\n", "  max_headers: 100\n  max_haeders: 10\n",
        "server: Object contains unknown field `max_haeders`", id="orchestrator-server-typo",
    ),
]
# check-config walks the schema field by field and words an unknown field its own way.
CHECK_WORDING = {"server: Object contains unknown field `max_haeders`": "server.max_haeders: unknown field"}


@pytest.mark.parametrize(("name", "old", "new", "expected"), CASES)
async def test_start_up_names_file_key_and_variable(
    name: str, old: str, new: str, expected: str, tmp_path: Path
) -> None:
    path = _broken(tmp_path, name, old, new)
    code, out = await _run("-m", name, "--host", "127.0.0.1", "--port", "0", "--config", str(path))
    assert code == 2, out
    assert f"configuration error: {path}: {expected}" in out, out


@pytest.mark.parametrize(("name", "old", "new", "expected"), CASES)
async def test_check_config_names_file_key_and_variable(
    name: str, old: str, new: str, expected: str, tmp_path: Path
) -> None:
    path = _broken(tmp_path, name, old, new)
    code, out = await _run("-m", name, "check-config", str(path))
    assert code == 1, out
    assert f"{path}: {CHECK_WORDING.get(expected, expected)}\n" in out, out
