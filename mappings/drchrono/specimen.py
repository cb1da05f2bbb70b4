"""Specimen (us-core-specimen) ← the specimen of each DrChrono lab test (`specimen_source`,
`collection_date`, `specimen_condition`), id `lab-<lab test id>`, the id lab Observations
reference. The source text becomes a SNOMED CT specimen type when it names a common one.
Vendor calls: as the lab chart (see `labs`): 1 + 2 per lab order for a patient; a read is
GET lab_tests/<id> plus the order's three calls.
"""

from __future__ import annotations

from typing import Any

from facade.core.compartment import CompartmentMapping, Source, fhir_id
from facade.core.mapping import ById, MappingContext, PatientParam, Record, Resource, SearchParam
from mappings.drchrono import bulk_listings, labs
from mappings.drchrono.fields import LAB_ORDER_CHANGED, instant, text
from mappings.drchrono.valuemaps import SPECIMEN_TYPE
from mappings.valuemaps import SNOMED, US_CORE

PROFILE = US_CORE + "us-core-specimen"
SOURCE_NAME = "lab"
ACCESSION_SYSTEM = "urn:drchrono:lab-accession"


def transform(record: Record, ctx: MappingContext) -> list[Resource]:
    test, order = record["test"], record["order"]
    patient = text(order.get("patient"))
    if patient is None:
        return []
    source = text(test.get("specimen_source"))
    specimen_type: dict[str, Any] = {}
    coded = SPECIMEN_TYPE.get(source.lower() if source else None)
    if coded:
        specimen_type["coding"] = [{"system": SNOMED, "code": coded[0], "display": coded[1]}]
    specimen_type["text"] = source or "Unknown specimen"
    resource: Resource = {
        "resourceType": "Specimen",
        "id": fhir_id(SOURCE_NAME, test["id"]),
        "meta": {"profile": [PROFILE]},
    }
    accession = text(order.get("accession_number"))
    if accession:
        resource["accessionIdentifier"] = {"system": ACCESSION_SYSTEM, "value": accession}
    resource["type"] = specimen_type
    resource["subject"] = {"reference": f"Patient/{patient}"}
    received = [instant(r.get("specimen_received"), ctx.timezone) for r in record["results"]]
    received_times = sorted(r for r in received if r)
    if received_times:
        resource["receivedTime"] = received_times[0]
    resource["request"] = [{"reference": f"ServiceRequest/{fhir_id(SOURCE_NAME, test['id'])}"}]
    collected = instant(test.get("collection_date"), ctx.timezone)
    if collected:
        resource["collection"] = {"collectedDateTime": collected}
    condition = text(test.get("specimen_condition"))
    if condition:
        resource["condition"] = [{"text": condition}]
    return [resource]


MAPPING = CompartmentMapping(
    resource_type="Specimen",
    profiles=(PROFILE,),
    sources=(
        Source(
            name=SOURCE_NAME,
            last_updated=LAB_ORDER_CHANGED,
            endpoint="lab_tests",
            transform=transform,
            fetch=labs.fetch_tests,
            read=labs.read_test,
            bulk=bulk_listings.LAB_TESTS,
            description="lab tests' specimens, joined with their lab order summary",
        ),
    ),
    search_params=(
        SearchParam("us-core-specimen-patient", PatientParam()),
        SearchParam("us-core-specimen-id", ById(lambda v: v, "the specimen's lab test")),
    ),
)
