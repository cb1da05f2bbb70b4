"""DiagnosticReport (us-core-diagnosticreport-lab) ← CareCloud encounters' `lab_results`,
grouped by panel: one report per panel LOINC per encounter (`lab-<encounter key>-<panel>`),
code = the panel (LOINC, `panel_name`), category v2-0074 LAB, result = that panel's lab result
Observations, effective = the earliest collection, issued = the latest result. A result
without a panel is a report of its own (coded by the result's LOINC code).

status: preliminary while any result is preliminary, corrected when any was corrected,
else final.

Must-support elements CareCloud has no field for: `performer` (no performing lab or
responsible person is recorded). CareCloud has no imaging, cardiology or pathology reports,
so us-core-diagnosticreport-note is not served.
"""

from __future__ import annotations

from facade.core.compartment import CompartmentMapping
from facade.core.mapping import (
    ById,
    LocalFilter,
    MappingContext,
    PatientParam,
    Record,
    Resource,
    SearchParam,
)
from mappings.carecloud import observation_lab
from mappings.carecloud.chart import (
    chart_source,
    encounter_reference,
    item_id,
    mapped,
    patient_reference,
    profiled,
)
from mappings.carecloud.fields import instant, text
from mappings.valuemaps import LOINC, US_CORE, V2_0074

PROFILE = US_CORE + "us-core-diagnosticreport-lab"
SOURCE_NAME = "lab"
LAB = {"coding": [{"system": V2_0074, "code": "LAB", "display": "Laboratory"}]}


def _status(results: list[Record]) -> str:
    statuses = {text(r.get("status")) for r in results}
    if "preliminary" in statuses:
        return "preliminary"
    if "corrected" in statuses:
        return "corrected"
    return "final" if statuses == {"final"} else "unknown"


def _report(panel: str, results: list[Record], encounter: Record, ctx: MappingContext) -> Resource:
    first = results[0]
    name = (
        text(first.get("panel_name")) if text(first.get("panel_loinc")) else text(first.get("name"))
    )
    resource = profiled("DiagnosticReport", item_id(SOURCE_NAME, encounter, panel), PROFILE)
    resource["status"] = _status(results)
    resource["category"] = [LAB]
    coding = {"system": LOINC, "code": panel}
    if name:
        coding["display"] = name
    resource["code"] = {"coding": [coding], "text": name or panel}
    resource["subject"] = patient_reference(encounter)
    resource["encounter"] = encounter_reference(encounter)
    collected = sorted(
        m for m in (instant(r.get("collected_at"), ctx.timezone) for r in results) if m
    )
    if collected:
        resource["effectiveDateTime"] = collected[0]
    resulted = sorted(
        m for m in (instant(r.get("resulted_at"), ctx.timezone) for r in results) if m
    )
    if resulted:
        resource["issued"] = resulted[-1]
    resource["result"] = [
        {"reference": f"Observation/{item_id(observation_lab.SOURCE_NAME, encounter, r['id'])}"}
        for r in results
    ]
    return resource


def transform(encounter: Record, ctx: MappingContext) -> list[Resource]:
    if not mapped(encounter):
        return []
    return [
        _report(panel, results, encounter, ctx)
        for panel, results in observation_lab.panels(encounter).items()
    ]


MAPPING = CompartmentMapping(
    resource_type="DiagnosticReport",
    profiles=(PROFILE,),
    sources=(
        chart_source(
            SOURCE_NAME,
            transform,
            "encounters' lab results, one report per panel",
            produces={"category": frozenset({"LAB"})},
        ),
    ),
    search_params=(
        SearchParam("Resource-lastUpdated", LocalFilter()),
        SearchParam("us-core-diagnosticreport-patient", PatientParam()),
        SearchParam("Resource-id", ById(lambda v: v, "the encounter holding the panel")),
        SearchParam("us-core-diagnosticreport-category", LocalFilter()),
        SearchParam("us-core-diagnosticreport-code", LocalFilter()),
        SearchParam("us-core-diagnosticreport-date", LocalFilter()),
        SearchParam("us-core-diagnosticreport-status", LocalFilter()),
    ),
    notes="Lab reports only (one per panel per encounter, from the encounters list: one call"
    " per patient). No performer: CareCloud records no performing lab. No"
    " us-core-diagnosticreport-note: CareCloud has no imaging, cardiology or pathology"
    " reports.",
)
