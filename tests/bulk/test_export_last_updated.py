"""Every exported resource whose vendor source records when it changed carries that time as
meta.lastUpdated; the rest come from sources that declare why they cannot."""

from __future__ import annotations

from collections import Counter

from facade.core.compartment import CompartmentMapping, split_fhir_id
from facade.core.mapping import ChangeTime, NoChangeTime, ResourceMapping
from facade.core.registry import AnyMapping
from mappings.drchrono import REGISTRY
from tests.bulk.conftest import download, export


def declared(mapping: AnyMapping, resource_id: str) -> ChangeTime | NoChangeTime | None:
    if isinstance(mapping, ResourceMapping):
        return mapping.last_updated
    located = split_fhir_id(resource_id)
    source = mapping.source(located[0]) if located else None
    return source.last_updated if source else None


def test_every_mapping_and_source_declares_its_change_time() -> None:
    undeclared = [
        f"{m.resource_type}/{s.name}"
        for m in REGISTRY
        if isinstance(m, CompartmentMapping)
        for s in m.sources
        if s.last_updated is None
    ] + [m.resource_type for m in REGISTRY if isinstance(m, ResourceMapping) and not m.last_updated]
    assert undeclared == []
    reasons = [
        d.reason
        for m in REGISTRY
        for d in (
            [m.last_updated]
            if isinstance(m, ResourceMapping)
            else [s.last_updated for s in m.sources]
        )
        if isinstance(d, NoChangeTime)
    ]
    assert all(len(reason) > 20 for reason in reasons), "each says why"


async def test_exported_resources_carry_their_sources_change_time(fhir, exports):
    got = await download(fhir, await export(fhir, exports, "$export"))
    missing: Counter[str] = Counter()
    for resource_type, resources in got.items():
        if resource_type == "Provenance":
            continue
        mapping = REGISTRY.get(resource_type)
        for resource in resources:
            if resource.get("meta", {}).get("lastUpdated"):
                continue
            declaration = declared(mapping, resource["id"])
            assert not isinstance(declaration, ChangeTime), (resource_type, resource["id"])
            missing[resource_type] += 1
    # What DrChrono keeps no time for: allergies, problems, medications, doctors and offices.
    assert set(missing) <= {
        "AllergyIntolerance",
        "Condition",
        "Location",
        "MedicationRequest",
        "Organization",
        "Practitioner",
        "PractitionerRole",
    }
    # Provenance.recorded is its target's change time, and absent (said so) only with it.
    changed = {
        f"{r['resourceType']}/{r['id']}": r["meta"].get("lastUpdated")
        for resources in got.values()
        for r in resources
    }
    for provenance in got["Provenance"]:
        assert provenance.get("recorded") == changed[provenance["target"][0]["reference"]]
        assert ("_recorded" in provenance) == ("recorded" not in provenance)
