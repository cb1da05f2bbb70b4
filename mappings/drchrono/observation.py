"""Observation ← four DrChrono sources, each declaring the categories and codes it can yield
so a search touches only the endpoints that can match:

* `vitals`: `/api/appointments` (verbose `vitals`), the query every appointment-based source
  shares (APPOINTMENT_PARAMS): vital signs (US Core vital-sign profiles) and smoking status —
  1 call per patient (per 50 appointments), usually already cached by Encounter.
* `lab`: lab results joined with their test and order (see `labs`): us-core-observation-lab,
  also claiming its parent us-core-observation-clinical-result —
  1 + 2 calls per lab order (lab_orders_summary?patient, then lab_tests/lab_results?order).
* `assessment`: `/api/patient_risk_assessments`: pregnancy status/intent, occupation, sexual
  orientation and screening assessments — 1 call per patient.
* `exam`: `/api/patient_physical_exams`: exam findings (coded) as us-core-observation-clinical-
  result, category exam — 1 call per patient.

So `patient+category=laboratory` costs only the lab calls, `category=vital-signs` or
`code=8867-4` only the appointments call, `category=survey` only the assessments call,
`category=exam` only the exams call. Clinical results' valueQuantity and valueString come
from lab results; DrChrono records exam findings as codes only (valueCodeableConcept).
"""

from __future__ import annotations

from facade.core.compartment import CompartmentMapping, Source
from facade.core.mapping import (
    ById,
    LocalFilter,
    PatientParam,
    SearchParam,
)
from mappings.drchrono import (
    bulk_listings,
    labs,
    observation_assessments,
    observation_exam,
    observation_lab,
    observation_vitals,
)
from mappings.drchrono.fields import APPOINTMENT_PARAMS, LAB_ORDER_CHANGED, UPDATED, changed

MAPPING = CompartmentMapping(
    resource_type="Observation",
    profiles=(
        *observation_vitals.PROFILES,
        observation_lab.PROFILE,
        observation_lab.CLINICAL_RESULT,
        *observation_assessments.PROFILES,
    ),
    sources=(
        Source(
            name=observation_vitals.SOURCE_NAME,
            last_updated=changed("extended_updated_at", "updated_at", "created_at"),
            endpoint="appointments",
            transform=observation_vitals.transform,
            fixed_params=APPOINTMENT_PARAMS,
            produces={
                "category": observation_vitals.CATEGORIES,
                "code": observation_vitals.CODES,
            },
            description="appointments (verbose vitals): vital signs and smoking status",
        ),
        Source(
            name=observation_lab.SOURCE_NAME,
            last_updated=LAB_ORDER_CHANGED,
            endpoint="lab_results",
            transform=observation_lab.transform,
            produces={"category": frozenset({"laboratory"})},
            # Lab results carry any LOINC code, but never a vital-sign or assessment question:
            # a search for those codes skips the 1 + 2N lab calls.
            excludes={"code": observation_vitals.CODES | observation_assessments.CODES},
            fetch=labs.fetch_results,
            read=labs.read_result,
            bulk=bulk_listings.LAB_RESULTS,
            description="lab results joined with their lab test and lab order summary",
        ),
        Source(
            name=observation_assessments.SOURCE_NAME,
            last_updated=changed("assessment.updated_at", "assessment.created_at"),
            endpoint=observation_assessments.ENDPOINT,
            transform=observation_assessments.transform,
            produces={
                "category": observation_assessments.CATEGORIES,
                "code": observation_assessments.CODES,
            },
            fetch=observation_assessments.fetch,
            read=observation_assessments.read,
            bulk=bulk_listings.RISK_ASSESSMENTS,
            description="patient risk assessments: social history and screening assessments",
        ),
        Source(
            name=observation_exam.SOURCE_NAME,
            last_updated=UPDATED,
            endpoint=observation_exam.ENDPOINT,
            transform=observation_exam.transform,
            produces={"category": frozenset({"exam"})},
            # Exams are coded findings, never a vital sign or an assessment question.
            excludes={"code": observation_vitals.CODES | observation_assessments.CODES},
            bulk=bulk_listings.PHYSICAL_EXAMS,
            description="patient physical exams: coded exam findings",
        ),
    ),
    search_params=(
        SearchParam("us-core-observation-patient", PatientParam()),
        SearchParam("Resource-id", ById(lambda v: v, "the observation's vendor record")),
        SearchParam("us-core-observation-category", LocalFilter()),
        SearchParam("us-core-observation-code", LocalFilter()),
        SearchParam("us-core-observation-date", LocalFilter()),
        SearchParam("us-core-observation-status", LocalFilter()),
    ),
    author_paths=("performer",),
)
