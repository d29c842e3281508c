"""What people look at: server-rendered pages (`render`, `views`, `templates/`), the console's static files,
its key session (`session`), run exports (`export`), and their routes (`routes`, imported by the app)."""

from __future__ import annotations

__all__: list[str] = []
