"""Role/task routing: which workflow renders a request that does not name one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shared_contracts.errors import NoRoute
from shared_contracts.media import ImageRequest

from .config import WorkflowRule
from .workflows import Workflow

__all__ = ["WorkflowRouter"]


class WorkflowRouter:
    """First matching rule wins; a rule's absent `role`/`task` matches anything."""

    def __init__(self, rules: Sequence[WorkflowRule], workflows: Mapping[str, Workflow]) -> None:
        self._rules = tuple(rules)
        self._workflows = workflows

    def workflow_for(self, request: ImageRequest) -> Workflow:
        """The named workflow when the request gives one, else the first rule matching role and task."""
        if request.workflow is not None:
            found = self._workflows.get(request.workflow)
            if found is None:
                raise NoRoute(
                    f"no workflow named {request.workflow!r}",
                    details={"workflow": request.workflow, "known": sorted(self._workflows)},
                )
            return found
        for rule in self._rules:
            if rule.role in (None, request.role) and rule.task in (None, request.task):
                return self._workflows[rule.workflow]
        raise NoRoute(f"no route for role {request.role!r}, task {request.task!r}",
                      details={"role": request.role, "task": request.task})
