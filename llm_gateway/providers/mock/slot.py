"""Where in the document a mock value goes: what the schema walker tells the writer of each value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Slot"]


@dataclass(frozen=True, slots=True)
class Slot:
    """One value's place: its property name, its path from the root, the siblings written so far."""

    name: str = ""
    path: tuple[str | int, ...] = ()
    # The object this value belongs to, as far as it is written (keys with const/enum values come first).
    parent: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def index(self) -> int | None:
        """The position in its array when the value is an array item."""
        return self.path[-1] if self.path and isinstance(self.path[-1], int) else None

    @property
    def names(self) -> tuple[str, ...]:
        """The property names along the path, innermost last (array positions left out)."""
        return tuple(p for p in self.path if isinstance(p, str))

    def child(self, name: str, parent: Mapping[str, Any], description: str = "") -> Slot:
        """The slot of property `name` of this value."""
        return Slot(name, (*self.path, name), parent, description)

    def item(self, index: int, description: str = "") -> Slot:
        """The slot of item `index` of this (array) value; it keeps the array's name."""
        return Slot(self.name, (*self.path, index), self.parent, description)
