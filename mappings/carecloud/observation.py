"""Observation ← three sources over the same CareCloud encounters list (one vendor call per
patient, shared with every chart type; see `chart`), each declaring the categories and codes
it can yield so a search maps only what can match:

* `vitals`: the encounters' `vitals` rows → US Core vital-sign profiles (`observation_vitals`);
* `lab`: the encounters' `lab_results` → us-core-observation-lab + clinical-result
  (`observation_lab`);
* `smoking`: the encounters' `smoking_status` → us-core-smokingstatus.

CareCloud records no assessments, screenings, occupation, pregnancy or sexual orientation,
so those US Core Observation profiles are not served.
"""

from __future__ import annotations

from facade.core.compartment import CompartmentMapping
from facade.core.mapping import (
    ById,
    LocalFilter,
    PatientParam,
    SearchParam,
)
from mappings.carecloud import observation_lab, observation_vitals
from mappings.carecloud.chart import chart_source

MAPPING = CompartmentMapping(
    resource_type="Observation",
    profiles=(
        *observation_vitals.PROFILES,
        observation_vitals.SMOKING_PROFILE,
        observation_lab.PROFILE,
        observation_lab.CLINICAL_RESULT,
    ),
    sources=(
        chart_source(
            observation_vitals.SOURCE_NAME,
            observation_vitals.transform,
            "encounters' vitals (LOINC, UCUM): US Core vital signs",
            produces={
                "category": frozenset({"vital-signs"}),
                "code": observation_vitals.CODES,
            },
        ),
        chart_source(
            observation_lab.SOURCE_NAME,
            observation_lab.transform,
            "encounters' lab results",
            produces={"category": frozenset({"laboratory"})},
            # Lab results carry any LOINC code, but never a vital sign or smoking status.
            excludes={
                "code": observation_vitals.CODES | {observation_vitals.SMOKING[0]},
            },
        ),
        chart_source(
            observation_vitals.SMOKING_SOURCE,
            observation_vitals.transform_smoking,
            "encounters' smoking status",
            produces={
                "category": frozenset({"social-history"}),
                "code": frozenset({observation_vitals.SMOKING[0]}),
            },
        ),
    ),
    search_params=(
        SearchParam("Resource-lastUpdated", LocalFilter()),
        SearchParam("us-core-observation-patient", PatientParam()),
        SearchParam("Resource-id", ById(lambda v: v, "the encounter holding the observation")),
        SearchParam("us-core-observation-category", LocalFilter()),
        SearchParam("us-core-observation-code", LocalFilter()),
        SearchParam("us-core-observation-date", LocalFilter()),
        SearchParam("us-core-observation-status", LocalFilter()),
    ),
    author_paths=("performer",),
    notes="Vital signs, lab results and smoking status, all from the encounters list (one"
    " call per patient). Lab results reference no Specimen (CareCloud records none); vital"
    " signs and lab results name no performer (CareCloud does not record who measured or"
    " performed them). No screening assessments, occupation, pregnancy or sexual"
    " orientation: CareCloud records none of them.",
)
