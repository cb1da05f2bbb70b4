"""The vendor table: each vendor facade serves, by name, and where its entry lives.

The only generic module that names vendors. Entries are imported on first use (libcloud
style), so a deployment loads one vendor's code and a vendor's absence fails clearly.
"""

from __future__ import annotations

import importlib
from functools import cache

from facade.core.vendor import Vendor

#: name -> "module:attribute" of its `Vendor` entry. The first is the default vendor.
VENDORS: dict[str, str] = {
    "drchrono": "facade.upstream.drchrono.vendor:VENDOR",
    "carecloud": "facade.upstream.carecloud.vendor:VENDOR",
}

DEFAULT_VENDOR = next(iter(VENDORS))


class UnknownVendor(ValueError):
    pass


def vendor_names() -> list[str]:
    return list(VENDORS)


@cache
def vendor(name: str) -> Vendor:
    """The entry of vendor `name`; UnknownVendor when there is none or it cannot load."""
    target = VENDORS.get(name)
    if target is None:
        raise UnknownVendor(f"unknown vendor {name!r} (known: {', '.join(VENDORS)})")
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise UnknownVendor(f"vendor {name!r} is listed but its code is missing ({exc})") from exc
    entry = getattr(module, attribute, None)
    if not isinstance(entry, Vendor) or entry.name != name:
        raise UnknownVendor(f"vendor {name!r}: {target} is not its Vendor entry")
    return entry
