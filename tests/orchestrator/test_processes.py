"""Child services started as a group: a child that cannot start takes its siblings' starts down with it."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from orchestrator.tools.processes import ServiceGroup, ServiceSpec, ServiceStartError

pytestmark = pytest.mark.slow


async def test_a_child_that_cannot_start_cancels_the_others_and_leaves_no_process(tmp_path: Path) -> None:
    # Two stand-in services: one exits at once, one lives but never answers /healthz.
    (tmp_path / "exits_at_once.py").write_text("raise SystemExit(3)\n")
    pids = tmp_path / "pids"
    pids.mkdir()
    (tmp_path / "never_healthy.py").write_text(
        "import os, pathlib, time\n"
        "pathlib.Path(os.environ['PID_DIR'], str(os.getpid())).touch()\n"
        "time.sleep(300)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PID_DIR": str(pids)}
    config = tmp_path / "unused.yaml"
    group = ServiceGroup(log_dir=tmp_path / "logs", base_env=env, timeout_s=120)
    with pytest.raises(ServiceStartError, match="exits-at-once did not become healthy"):
        async with group:
            await group.start([
                ServiceSpec("exits-at-once", "exits_at_once", config),
                ServiceSpec("never-healthy", "never_healthy", config),
            ])
    # No start is left running that could spawn a child after the group was closed...
    assert [task for task in asyncio.all_tasks() if task is not asyncio.current_task()] == []
    # ...and every child that did start has been stopped and reaped.
    for pid_file in pids.iterdir():
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid_file.name), 0)
