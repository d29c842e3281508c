"""The YAML `server:` section: edge limits, trusted proxies and CORS origins, checked at start-up."""

from __future__ import annotations

import pytest

from service_common.config import ConfigError, Section, convert_section
from service_common.server import ServerSettings


class Config(Section, frozen=True):
    server: ServerSettings = ServerSettings()


def _server(**raw: object) -> ServerSettings:
    return convert_section({"server": raw}, Config, path="").server


def test_defaults_trust_no_proxy_and_allow_no_origin() -> None:
    settings = ServerSettings()
    assert settings.proxies == [] and settings.origins == []
    limits = settings.edge_limits()
    assert (limits.max_header_bytes, limits.max_headers, limits.max_connections) == (16_384, 100, 1_024)
    assert (limits.header_timeout_s, limits.body_timeout_s) == (10.0, 60.0)


def test_lists_come_as_yaml_lists_or_comma_separated_strings() -> None:
    settings = _server(trusted_proxies="10.0.0.0/8, 127.0.0.1,,", cors_origins=["https://shop.example:8443"])
    assert settings.proxies == ["10.0.0.0/8", "127.0.0.1"]
    assert settings.origins == ["https://shop.example:8443"]
    assert _server(trusted_proxies="", cors_origins=None).proxies == []
    assert _server(trusted_proxies=["*"], cors_origins="*").origins == ["*"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"trusted_proxies": ["10.0.0.1/8"]}, r"^server\.trusted_proxies\[0\]: '10\.0\.0\.1/8' is not an IP"),
        ({"trusted_proxies": "127.0.0.1,proxy.local"}, r"^server\.trusted_proxies\[1\]: 'proxy\.local'"),
        ({"trusted_proxies": ["*", "10.0.0.0/8"]}, r"^server\.trusted_proxies\[0\]: '\*' is not"),
        ({"cors_origins": ["https://shop.example/"]}, r"^server\.cors_origins\[0\]: 'https://shop\.example/' is not"),
        ({"cors_origins": "*,https://a.example"}, r"^server\.cors_origins\[0\]: '\*'"),
        ({"max_header_bytes": 100}, r"^server\.max_header_bytes: Expected `int` >= 1024"),
        ({"header_timeout_s": 0}, r"^server\.header_timeout_s: Expected `float` > 0"),
        ({"max_conections": 5}, r"^server: Object contains unknown field `max_conections`"),
    ],
)
def test_bad_values_are_refused_naming_the_key(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _server(**raw)
