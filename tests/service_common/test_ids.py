from __future__ import annotations

import uuid

from service_common.ids import new_id


def test_new_id_is_a_uuid4_hex() -> None:
    for _ in range(1000):
        value = new_id()
        parsed = uuid.UUID(value)
        assert parsed.hex == value
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_new_ids_differ() -> None:
    assert len({new_id() for _ in range(1000)}) == 1000
