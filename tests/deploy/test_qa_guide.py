"""docs/QA_GUIDE.md: its error table is the one in shared_contracts/errors.py, code for code."""

from __future__ import annotations

import re

from shared_contracts.errors import ERROR_CODES

from ._layout import REPO

GUIDE = (REPO / "docs" / "QA_GUIDE.md").read_text(encoding="utf-8")


def test_error_table_lists_every_code_with_its_status() -> None:
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", GUIDE, flags=re.MULTILINE))
    expected = {code: str(cls.status) for code, cls in ERROR_CODES.items()}
    assert rows == expected


def test_guide_points_at_files_that_exist() -> None:
    for path in re.findall(r"`((?:deploy|docs|tests|config)/[\w./-]+)`", GUIDE):
        assert (REPO / path).exists(), f"QA_GUIDE names {path}, which does not exist"
