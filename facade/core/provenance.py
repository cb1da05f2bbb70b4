"""Provenance for every resource facade serves: the practice (and the responsible doctor)
as author, facade itself as transmitter. Built from the resource, never stored.

Provenance ids are `<target type>-<target id>`, so reading one reads its target.
"""

from __future__ import annotations

from typing import Any

from facade import __version__
from facade.core.mapping import MappingContext, Resource
from facade.fhir.matching import extract

PROFILE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-provenance"
#: facade, the transmitter, as a Device (Provenance.agent.who).
TRANSMITTER_DEVICE_ID = "facade"
#: The vendor does not record when the source record changed.
DATA_ABSENT_UNSUPPORTED = {
    "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
    "valueCode": "unsupported",
}


def provenance_id(resource: Resource) -> str:
    return f"{resource['resourceType']}-{resource['id']}"


def target_of(provenance_id: str) -> tuple[str, str] | None:
    resource_type, sep, resource_id = provenance_id.partition("-")
    if not sep or not resource_id or not resource_type[:1].isupper():
        return None
    return resource_type, resource_id


def _author(resource: Resource, author_paths: tuple[str, ...]) -> str | None:
    for path in author_paths:
        for value in extract(resource, f"{resource['resourceType']}.{path}"):
            reference = value.get("reference") if isinstance(value, dict) else None
            if isinstance(reference, str) and reference.startswith("Practitioner/"):
                return reference
    return None


def recorded_of(resource: Resource) -> dict[str, Any]:
    """Provenance.recorded: when the source record last changed (the resource's
    meta.lastUpdated), so the same Provenance reads the same every time. A source without a
    change time gets a data-absent-reason instead of a time facade would have to invent."""
    last_updated = resource.get("meta", {}).get("lastUpdated")
    if last_updated:
        return {"recorded": last_updated}
    return {"_recorded": {"extension": [DATA_ABSENT_UNSUPPORTED]}}


def provenance_for(
    resource: Resource, author_paths: tuple[str, ...], ctx: MappingContext
) -> dict[str, Any]:
    """The Provenance of `resource`."""
    practice = {"reference": f"Organization/{ctx.practice_group_id}"}
    author = _author(resource, author_paths)
    author_agent: dict[str, Any] = {
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                    "code": "author",
                    "display": "Author",
                }
            ]
        },
        "who": {"reference": author} if author else practice,
    }
    if author:
        author_agent["onBehalfOf"] = practice
    return {
        "resourceType": "Provenance",
        "id": provenance_id(resource),
        "meta": {"profile": [PROFILE]},
        "target": [{"reference": f"{resource['resourceType']}/{resource['id']}"}],
        **recorded_of(resource),
        "agent": [
            author_agent,
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-provenance-participant-type",
                            "code": "transmitter",
                            "display": "Transmitter",
                        }
                    ]
                },
                "who": {"reference": f"Device/{TRANSMITTER_DEVICE_ID}"},
                "onBehalfOf": practice,
            },
        ],
    }


def transmitter_device(ctx: MappingContext) -> dict[str, Any]:
    """facade itself, the software that transmits the practice's data."""
    return {
        "resourceType": "Device",
        "id": TRANSMITTER_DEVICE_ID,
        "status": "active",
        "deviceName": [{"name": "facade FHIR gateway", "type": "manufacturer-name"}],
        "type": {"text": "FHIR interface engine"},
        "version": [{"value": __version__}],
        "owner": {"reference": f"Organization/{ctx.practice_group_id}"},
    }
