"""DrChrono v4 mapping declarations, one module per FHIR resource type, and their registry.

Every module here that defines `MAPPING` is registered; nothing else needs to change to add
a resource type. must_support_gaps lists what the API has no source for.
"""

import importlib
import pkgutil

from facade.core.registry import AnyMapping, MappingRegistry
from mappings.drchrono.must_support_gaps import HAS_NO_SOURCE


def _mappings() -> tuple[AnyMapping, ...]:
    found: list[AnyMapping] = []
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        mapping = getattr(module, "MAPPING", None)
        if mapping is not None:
            found.append(mapping)
    return tuple(found)


REGISTRY = MappingRegistry(
    vendor="drchrono",
    mappings=_mappings(),
    endpoint_format="/api/{}",
    must_support_gaps=HAS_NO_SOURCE,
)

__all__ = ["REGISTRY"]
