"""API key settings: hashes and plain keys, and a repr that shows no key."""

from __future__ import annotations

import hashlib

import pytest

from service_common.auth import AuthSettings, hash_key, key_hashes
from service_common.config import ConfigError


def test_key_hashes_take_hex_hashes_and_plain_keys_and_name_a_bad_hash() -> None:
    digest = hashlib.sha256(b"k1").hexdigest()
    hashes = key_hashes(AuthSettings(api_key_sha256=[digest.upper()], api_keys=" k2 , ,k3"))
    assert hashes == {hash_key("k1"), hash_key("k2"), hash_key("k3")}
    assert key_hashes(AuthSettings()) == frozenset()
    with pytest.raises(ConfigError, match=r"auth.api_key_sha256\[0\]"):
        key_hashes(AuthSettings(api_key_sha256=["not-a-hash"]))


def test_auth_settings_repr_shows_no_key() -> None:
    shown = repr(AuthSettings(api_keys="sekrit-key-1,sekrit-key-2"))
    assert "sekrit" not in shown and "2 keys" in shown
