"""Observation, DiagnosticReport, ServiceRequest and Specimen: each SHALL search returns
exactly what the sandbox's own records say, touching only the vendor endpoints that can
match (the request log), and every returned id reads back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import httpx

from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from facade.upstream.drchrono.sandbox.state import SandboxState
from tests.conftest import all_pages

LAB_ENDPOINTS = {"lab_orders_summary", "lab_tests", "lab_results"}
REPORT_ENDPOINTS = {"documents", "patient_physical_exams"}
NOTE_PROFILE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-diagnosticreport-note"
CLINICAL_RESULT = (
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-clinical-result"
)
#: Scanned document kinds (metatags) that are reports, and their US Core report category.
REPORT_KINDS = {
    "Diagnostic imaging study": "LP29684-5",
    "EKG study": "LP29708-2",
    "Pathology study": "LP7839-6",
}
#: vitals key → LOINC of the Observation it yields (blood pressure and pulse-ox separately).
VITAL_CODES = {
    "height": "8302-2",
    "weight": "29463-7",
    "bmi": "39156-5",
    "temperature": "8310-5",
    "pulse": "8867-4",
    "respiratory_rate": "9279-1",
    "head_circumference": "9843-4",
    "bmi_percentile": "59576-9",
    "weight_for_length_percentile": "77606-2",
    "head_occipital_frontal_circumference_percentile": "8289-1",
    "oxygen_saturation": "59408-5",
}


def filled(value: Any) -> bool:
    return value not in (None, "")


def appointments_of(dataset: SandboxDataset, patient: object) -> list[dict[str, Any]]:
    return [
        a
        for a in dataset.endpoint("appointments")
        if str(a["patient"]) == str(patient) and not a.get("deleted_flag")
    ]


def vital_ids(dataset: SandboxDataset, patient: object, code: str | None = None) -> set[str]:
    ids = set()
    for appointment in appointments_of(dataset, patient):
        vitals = appointment["vitals"]
        base = f"vitals-{appointment['id'].replace('_', '.')}"
        codes = [c for key, c in VITAL_CODES.items() if filled(vitals.get(key))]
        if filled(vitals.get("blood_pressure_1")) or filled(vitals.get("blood_pressure_2")):
            codes.append("85354-9")
        ids |= {f"{base}-{c}" for c in codes if code in (None, c)}
    return ids


def smoking_ids(dataset: SandboxDataset, patient: object) -> set[str]:
    return {
        f"vitals-{a['id'].replace('_', '.')}-72166-2"
        for a in appointments_of(dataset, patient)
        if filled(a["vitals"].get("smoking_status"))
    }


def orders_of(dataset: SandboxDataset, patient: object) -> list[dict[str, Any]]:
    return [o for o in dataset.endpoint("lab_orders") if str(o["patient"]) == str(patient)]


def lab_tests_of(dataset: SandboxDataset, patient: object) -> list[dict[str, Any]]:
    orders = {o["id"] for o in orders_of(dataset, patient)}
    return [t for t in dataset.endpoint("lab_tests") if t["lab_order"] in orders]


def results_of(dataset: SandboxDataset, patient: object) -> list[dict[str, Any]]:
    orders = {o["id"] for o in orders_of(dataset, patient)}
    return [r for r in dataset.endpoint("lab_results") if r["lab_order"] in orders]


def report_ids(dataset: SandboxDataset, patient: object, category: str | None = None) -> set[str]:
    """The patient's scanned documents that are reports (of `category`, when given)."""
    return {
        f"document-{d['id']}"
        for d in dataset.endpoint("documents")
        if d["patient"] == patient
        and (kinds := {REPORT_KINDS[tag] for tag in d["metatags"] if tag in REPORT_KINDS})
        and (category is None or category in kinds)
    }


def patients_with_labs(dataset: SandboxDataset, count: int = 4) -> list[dict[str, Any]]:
    return [p for p in dataset.endpoint("patients") if orders_of(dataset, p["id"])][:count]


def ids(resources: list[dict[str, Any]]) -> set[str]:
    return {r["id"] for r in resources}


async def search(
    client: httpx.AsyncClient, sandbox: SandboxState, url: str
) -> tuple[list[dict[str, Any]], list[Any]]:
    before = len(sandbox.api_requests())
    found = await all_pages(client, url)
    return found, sandbox.api_requests()[before:]


# -- Observation ----------------------------------------------------------------------------


async def test_vital_signs_by_category_and_code_touch_only_appointments(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    for patient in dataset.endpoint("patients")[:5]:
        pid = patient["id"]
        found, calls = await search(
            warm_fhir, sandbox, f"/fhir/Observation?patient={pid}&category=vital-signs"
        )
        assert ids(found) == vital_ids(dataset, pid)
        assert {c.endpoint for c in calls} <= {"appointments"}
        assert all(c.query["patient"] == str(pid) for c in calls)
        system = "http://terminology.hl7.org/CodeSystem/observation-category"
        again, calls = await search(
            warm_fhir, sandbox, f"/fhir/Observation?patient={pid}&category={system}|vital-signs"
        )
        assert ids(again) == ids(found) and calls == []  # the cached page serves it
        for code in ("8867-4", "85354-9", "59408-5", "http://loinc.org|29463-7"):
            found, calls = await search(
                warm_fhir, sandbox, f"/fhir/Observation?patient={pid}&code={code}"
            )
            assert ids(found) == vital_ids(dataset, pid, code.rpartition("|")[2])
            assert "patient_risk_assessments" not in {c.endpoint for c in calls}


async def test_pulse_oximetry_answers_to_both_of_its_codes(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    patient = dataset.endpoint("patients")[0]["id"]
    by_pulse_ox = await all_pages(warm_fhir, f"/fhir/Observation?patient={patient}&code=59408-5")
    by_o2_sat = await all_pages(warm_fhir, f"/fhir/Observation?patient={patient}&code=2708-6")
    assert by_pulse_ox and ids(by_pulse_ox) == ids(by_o2_sat)
    flows = [
        c for r in by_pulse_ox for c in r.get("component", []) if c["code"]["coding"][0]["code"]
    ]
    assert flows, "the showcase patient has a supplemental-oxygen reading"


async def test_smoking_status_is_social_history(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    smokers = [p for p in dataset.endpoint("patients") if smoking_ids(dataset, p["id"])][:3]
    assert smokers
    for patient in smokers:
        found, calls = await search(
            warm_fhir, sandbox, f"/fhir/Observation?patient={patient['id']}&code=72166-2"
        )
        assert ids(found) == smoking_ids(dataset, patient["id"])
        assert all(r["category"][0]["coding"][0]["code"] == "social-history" for r in found)


async def test_laboratory_category_touches_only_the_lab_endpoints(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    for patient in patients_with_labs(dataset):
        pid = patient["id"]
        found, calls = await search(
            warm_fhir, sandbox, f"/fhir/Observation?patient={pid}&category=laboratory"
        )
        assert ids(found) == {f"lab-{r['id']}" for r in results_of(dataset, pid)}
        orders = orders_of(dataset, pid)
        # One summary call for the patient, then tests and results per order: 1 + 2N.
        assert [c.endpoint for c in calls].count("lab_orders_summary") == 1
        assert {c.endpoint for c in calls} == LAB_ENDPOINTS
        assert len(calls) == 1 + 2 * len(orders)
        assert next(c for c in calls if c.endpoint == "lab_orders_summary").query == {
            "patient": str(pid)
        }
        assert {c.query["order"] for c in calls if c.endpoint != "lab_orders_summary"} == {
            str(o["id"]) for o in orders
        }


async def test_lab_values_are_quantities_codes_and_strings(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    patient = dataset.endpoint("patients")[0]["id"]
    found = await all_pages(warm_fhir, f"/fhir/Observation?patient={patient}&category=laboratory")
    kinds = {k for r in found for k in r if k.startswith("value")}
    assert kinds == {"valueQuantity", "valueCodeableConcept", "valueString"}
    assert all(r["specimen"]["reference"].startswith("Specimen/lab-") for r in found)
    glucose = next(r for r in found if r["code"]["coding"][0]["code"] == "2345-7")
    assert glucose["valueQuantity"]["system"] == "http://unitsofmeasure.org"


async def test_category_and_date_comparators(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    for patient in patients_with_labs(dataset, 3):
        pid = patient["id"]
        for category in ("laboratory", "vital-signs"):
            everything = await all_pages(
                warm_fhir, f"/fhir/Observation?patient={pid}&category={category}"
            )
            days = sorted({date.fromisoformat(r["effectiveDateTime"][:10]) for r in everything})
            pivot = days[len(days) // 2]
            comparisons: tuple[tuple[str, Callable[[date, date], bool]], ...] = (
                ("gt", lambda d, p: d > p),
                ("ge", lambda d, p: d >= p),
                ("lt", lambda d, p: d < p),
                ("le", lambda d, p: d <= p),
            )
            for prefix, keep in comparisons:
                found = await all_pages(
                    warm_fhir,
                    f"/fhir/Observation?patient={pid}&category={category}&date={prefix}{pivot}",
                )
                expected = {
                    r["id"]
                    for r in everything
                    if keep(date.fromisoformat(r["effectiveDateTime"][:10]), pivot)
                }
                assert ids(found) == expected, (category, prefix)
            # Inferno's form: a full instant with an encoded offset, the day before.
            before = (days[0] - timedelta(days=1)).isoformat()
            found = await all_pages(
                warm_fhir,
                f"/fhir/Observation?patient={pid}&category={category}"
                f"&date=gt{before}T00:00:00%2B00:00",
            )
            assert ids(found) == ids(everything)


async def test_screening_assessments_and_social_history_from_risk_assessments(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    patient = dataset.endpoint("patients")[0]["id"]
    found, calls = await search(
        warm_fhir, sandbox, f"/fhir/Observation?patient={patient}&category=survey"
    )
    assert {c.endpoint for c in calls} == {"patient_risk_assessments"}
    records = [
        r for r in dataset.endpoint("patient_risk_assessments") if str(r["patient"]) == str(patient)
    ]
    survey_codes = {
        "88121-9", "88122-7", "88123-5", "88124-3", "68517-2", "83232-9", "69856-3",
        "11332-4", "72172-0",
    }  # fmt: skip
    assert ids(found) == {f"assessment-{r['id']}" for r in records if r["code"] in survey_codes}
    categories = {c["code"] for r in found for cat in r["category"] for c in cat["coding"]}
    assert {"sdoh", "functional-status", "disability-status", "cognitive-status"} <= categories
    panel = next(r for r in found if r["code"]["coding"][0]["code"] == "88121-9")
    assert len(panel["hasMember"]) == 3
    risk = next(r for r in found if r["code"]["coding"][0]["code"] == "88124-3")
    assert len(risk["derivedFrom"]) == 2
    for code in ("82810-3", "86645-9", "11341-5"):
        found = await all_pages(warm_fhir, f"/fhir/Observation?patient={patient}&code={code}")
        assert len(found) == 1, code
    occupation = (await all_pages(warm_fhir, f"/fhir/Observation?patient={patient}&code=11341-5"))[
        0
    ]
    assert occupation["component"][0]["code"]["coding"][0]["code"] == "86188-0"
    assert "effectivePeriod" in occupation


async def test_status_filter_and_reads(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    patient = dataset.endpoint("patients")[0]["id"]
    everything = await all_pages(warm_fhir, f"/fhir/Observation?patient={patient}")
    final = await all_pages(
        warm_fhir, f"/fhir/Observation?patient={patient}&category=laboratory&status=final"
    )
    assert ids(final) == {
        r["id"]
        for r in everything
        if r["status"] == "final" and r["category"][0]["coding"][0]["code"] == "laboratory"
    }
    for prefix in ("vitals-", "lab-", "assessment-"):
        resource = next(r for r in everything if r["id"].startswith(prefix))
        read = await warm_fhir.get(f"/fhir/Observation/{resource['id']}")
        assert read.status_code == 200 and read.json() == resource
        by_id = await all_pages(warm_fhir, f"/fhir/Observation?_id={resource['id']}")
        assert [r["id"] for r in by_id] == [resource["id"]]
    for missing in ("lab-1", "vitals-1-8867-4", "assessment-1", "nothing"):
        assert (await warm_fhir.get(f"/fhir/Observation/{missing}")).status_code == 404


# -- DiagnosticReport, ServiceRequest, Specimen ---------------------------------------------


async def test_imaging_ekg_and_pathology_documents_are_note_reports(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    adult = dataset.endpoint("patients")[0]["id"]
    reports: dict[str, list[dict[str, Any]]] = {}
    for category in REPORT_KINDS.values():
        found, calls = await search(
            warm_fhir,
            sandbox,
            f"/fhir/DiagnosticReport?patient={adult}&category=http://loinc.org|{category}",
        )
        assert found and ids(found) == report_ids(dataset, adult, category)
        assert {c.endpoint for c in calls} <= REPORT_ENDPOINTS
        assert all(r["meta"]["profile"] == [NOTE_PROFILE] for r in found)
        reports[category] = found
    ekg = reports["LP29708-2"][0]
    assert (await warm_fhir.get(f"/fhir/DiagnosticReport/{ekg['id']}")).json() == ekg
    document = (await warm_fhir.get(f"/fhir/DocumentReference/{ekg['id']}")).json()
    assert ekg["presentedForm"][0]["url"] == document["content"][0]["attachment"]["url"]
    assert ekg["result"]
    for result in ekg["result"]:
        finding = (await warm_fhir.get(f"/fhir/{result['reference']}")).json()
        assert finding["category"][0]["coding"][0]["code"] == "exam"
        assert finding["effectiveDateTime"][:10] == ekg["effectiveDateTime"]


async def test_exam_findings_are_clinical_results_and_labs_claim_it_too(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    adult = dataset.endpoint("patients")[0]["id"]
    exams = [e for e in dataset.endpoint("patient_physical_exams") if e["patient"] == adult]
    found, calls = await search(
        warm_fhir, sandbox, f"/fhir/Observation?patient={adult}&category=exam"
    )
    assert exams and ids(found) == {f"exam-{e['id']}" for e in exams}
    assert {c.endpoint for c in calls} == {"patient_physical_exams"}
    for observation, exam in zip(
        sorted(found, key=lambda r: r["id"]),
        sorted(exams, key=lambda e: f"exam-{e['id']}"),
        strict=True,
    ):
        assert observation["meta"]["profile"] == [CLINICAL_RESULT]
        assert observation["code"]["coding"][0]["code"] == exam["code"]
        if exam["value_code"]:
            assert observation["valueCodeableConcept"]["coding"][0]["code"] == exam["value_code"]
        else:
            assert observation["dataAbsentReason"]["coding"][0]["code"] == "unknown"
    labs = await all_pages(warm_fhir, f"/fhir/Observation?patient={adult}&category=laboratory")
    assert labs and all(CLINICAL_RESULT in r["meta"]["profile"] for r in labs)


async def test_lab_reports_one_per_test(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    for patient in patients_with_labs(dataset):
        pid = patient["id"]
        expected = {f"lab-{t['id']}" for t in lab_tests_of(dataset, pid)}
        found, calls = await search(warm_fhir, sandbox, f"/fhir/DiagnosticReport?patient={pid}")
        assert ids(found) == expected | report_ids(dataset, pid)
        assert {c.endpoint for c in calls} <= LAB_ENDPOINTS | REPORT_ENDPOINTS
        for query in (
            "&category=LAB",
            "&category=http://terminology.hl7.org/CodeSystem/v2-0074|LAB",
        ):
            found, calls = await search(
                warm_fhir, sandbox, f"/fhir/DiagnosticReport?patient={pid}{query}"
            )
            assert ids(found) == expected
            assert {c.endpoint for c in calls} <= LAB_ENDPOINTS
        assert all(
            {ref["reference"] for ref in r.get("result", [])}
            == {
                f"Observation/lab-{x['id']}"
                for x in results_of(dataset, pid)
                if f"lab-{x['lab_test']}" == r["id"]
            }
            for r in found
        )
        test = lab_tests_of(dataset, pid)[0]
        found = await all_pages(
            warm_fhir, f"/fhir/DiagnosticReport?patient={pid}&code={test['code']}"
        )
        assert ids(found) == {
            f"lab-{t['id']}" for t in lab_tests_of(dataset, pid) if t["code"] == test["code"]
        }
        day = test["collection_date"][:10]
        for prefix, expect in (("ge", True), ("le", True), ("gt", False), ("lt", False)):
            found = await all_pages(
                warm_fhir, f"/fhir/DiagnosticReport?patient={pid}&category=LAB&date={prefix}{day}"
            )
            assert (f"lab-{test['id']}" in ids(found)) is expect
        # v2-0074 RAD: imaging reports here carry US Core's LOINC category, never this one.
        none, calls = await search(
            warm_fhir, sandbox, f"/fhir/DiagnosticReport?patient={pid}&category=RAD"
        )
        assert none == [] and calls == []


async def test_service_requests_and_specimens(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    for patient in patients_with_labs(dataset):
        pid = patient["id"]
        expected = {f"lab-{t['id']}" for t in lab_tests_of(dataset, pid)}
        found = await all_pages(warm_fhir, f"/fhir/ServiceRequest?patient={pid}")
        assert ids(found) == expected
        assert all(r["category"][0]["coding"][0]["code"] == "108252007" for r in found)
        assert all(r["requester"]["reference"].startswith("Practitioner/") for r in found)
        category = await all_pages(
            warm_fhir,
            f"/fhir/ServiceRequest?patient={pid}&category=http://snomed.info/sct|108252007",
        )
        assert ids(category) == expected
        request = found[0]
        by_code = await all_pages(
            warm_fhir,
            f"/fhir/ServiceRequest?patient={pid}&code={request['code']['coding'][0]['code']}",
        )
        assert request["id"] in ids(by_code)
        day = request["authoredOn"][:10]
        for prefix, expect in (("ge", True), ("le", True), ("gt", False), ("lt", False)):
            found_on = await all_pages(
                warm_fhir,
                f"/fhir/ServiceRequest?patient={pid}&category=108252007&authored={prefix}{day}",
            )
            assert (request["id"] in ids(found_on)) is expect
        by_id = await all_pages(warm_fhir, f"/fhir/ServiceRequest?_id={request['id']}")
        assert [r["id"] for r in by_id] == [request["id"]]
        read = await warm_fhir.get(f"/fhir/ServiceRequest/{request['id']}")
        assert read.status_code == 200 and read.json() == request

        specimens = await all_pages(warm_fhir, f"/fhir/Specimen?patient={pid}")
        assert ids(specimens) == expected
        specimen = specimens[0]
        by_id, calls = await search(warm_fhir, sandbox, f"/fhir/Specimen?_id={specimen['id']}")
        assert by_id == [specimen]
        assert calls == []  # the test and its order were just fetched: all cached
        read = await warm_fhir.get(f"/fhir/Specimen/{specimen['id']}")
        assert read.status_code == 200 and read.json() == specimen


async def test_a_cold_specimen_read_costs_the_test_and_its_order(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    test = dataset.endpoint("lab_tests")[0]
    found, calls = await search(warm_fhir, sandbox, f"/fhir/Specimen?_id=lab-{test['id']}")
    assert [r["id"] for r in found] == [f"lab-{test['id']}"]
    assert [c.endpoint for c in calls] == [
        "lab_tests",
        "lab_orders_summary",
        "lab_tests",
        "lab_results",
    ]
