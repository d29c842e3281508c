"""Sample products (JSON) for the P0 flow, in Korean and English; `--product` takes any of them, and the
console offers them in its start form."""

from __future__ import annotations

from importlib import resources

import msgspec

from shared_contracts.flows import Product

__all__ = ["load_samples"]


def load_samples() -> dict[str, Product]:
    """Every sample by name (`ko_tumbler`, ...), validated as the API validates a product."""
    folder = resources.files(__name__)
    return {
        entry.name.removesuffix(".json"): msgspec.json.decode(entry.read_bytes(), type=Product)
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".json")
    }
