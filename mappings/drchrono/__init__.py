"""DrChrono v4 mapping declarations, one module per FHIR resource type, and their registry."""

from facade.core.registry import MappingRegistry
from mappings.drchrono import location, patient, practice, practitioner

REGISTRY = MappingRegistry(
    vendor="drchrono",
    mappings=(patient.MAPPING, practitioner.MAPPING, practice.MAPPING, location.MAPPING),
)

__all__ = ["REGISTRY"]
