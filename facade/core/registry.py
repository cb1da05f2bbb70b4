"""The mapping registry: which resource types a vendor serves, and how.

Built from the vendor's declaration modules (its vendor entry's `registry()` loads them);
the CapabilityStatement, the search planner and the support matrix all read it. It holds
declarations only, never vendor data.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from facade.core.compartment import CompartmentMapping
from facade.core.mapping import ResourceMapping
from facade.errors import ResourceNotFound

AnyMapping = ResourceMapping | CompartmentMapping


@dataclass(frozen=True)
class MappingRegistry:
    vendor: str
    mappings: tuple[AnyMapping, ...]
    #: How the vendor's documentation writes an endpoint's path ("{}": the endpoint's name).
    endpoint_format: str = "{}"
    #: US Core must-support elements the vendor's API has no source for, and why: profile
    #: name (e.g. "us-core-encounter") -> element path -> reason. Serving them would mean
    #: inventing data, so they are documented gaps; the must-support sweep holds the
    #: sandbox's resources to exactly these.
    must_support_gaps: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        types = [m.resource_type for m in self.mappings]
        duplicates = {t for t in types if types.count(t) > 1}
        if duplicates:
            raise ValueError(f"{self.vendor}: more than one mapping for {sorted(duplicates)}")

    def __iter__(self) -> Iterator[AnyMapping]:
        return iter(self.mappings)

    def endpoint_path(self, endpoint: str) -> str:
        return self.endpoint_format.format(endpoint)

    @property
    def resource_types(self) -> list[str]:
        return sorted(m.resource_type for m in self.mappings)

    def patient_key(self, patient_id: str) -> str | None:
        """The vendor's id of patient `patient_id` (its Patient mapping's `vendor_id`), or
        None when no patient of this vendor could have that id: then no call is made."""
        try:
            patient = self.get("Patient")
        except ResourceNotFound:
            return None
        return patient.vendor_id(patient_id) if isinstance(patient, ResourceMapping) else None

    def get(self, resource_type: str) -> AnyMapping:
        for mapping in self.mappings:
            if mapping.resource_type == resource_type:
                return mapping
        raise ResourceNotFound(f"Resource type {resource_type!r} is not served by this server.")
