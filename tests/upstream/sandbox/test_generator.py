"""The sandbox generator: deterministic, referentially whole, coded from the curated tables,
and rich enough that every US Core profile facade serves has a record to show."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest

from facade.sandbox.codes import load_table, table_names
from facade.sandbox.npi import is_valid_npi
from facade.upstream.drchrono.sandbox.context import LAST_CHANGE_DATE
from facade.upstream.drchrono.sandbox.dataset import ENDPOINTS, SandboxDataset
from facade.upstream.drchrono.sandbox.generator import REFERENCE_DATE, generate
from facade.upstream.drchrono.sandbox.visits import gs1_check_digit
from mappings.drchrono import isbt128

PATIENT_ENDPOINTS = (
    "appointments",
    "problems",
    "allergies",
    "medications",
    "procedures",
    "lab_orders",
    "patient_vaccine_records",
    "clinical_notes",
    "documents",
    "care_plans",
    "implantable_devices",
    "patient_risk_assessments",
    "patient_physical_exams",
    "patient_interventions",
)
ICD10CM = re.compile(r"^[A-TV-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$|^U07\.1$")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")


@pytest.fixture(scope="module")
def dataset() -> SandboxDataset:
    return generate(patients=40, seed=7)


@pytest.fixture(scope="module")
def showcase(dataset: SandboxDataset) -> dict[str, dict[str, Any]]:
    adult, child, deceased = dataset.records["patients"][:3]
    return {"adult": adult, "child": child, "deceased": deceased}


def ids(dataset: SandboxDataset, endpoint: str) -> set[Any]:
    return {record["id"] for record in dataset.records[endpoint]}


def of_patient(
    dataset: SandboxDataset, endpoint: str, patient: dict[str, Any]
) -> list[dict[str, Any]]:
    return [r for r in dataset.records[endpoint] if r.get("patient") == patient["id"]]


def results_of_patient(dataset: SandboxDataset, patient: dict[str, Any]) -> list[dict[str, Any]]:
    orders = {order["id"] for order in of_patient(dataset, "lab_orders", patient)}
    return [r for r in dataset.records["lab_results"] if r["lab_order"] in orders]


# --- determinism ---


def test_same_patients_and_seed_give_identical_records() -> None:
    assert generate(patients=12, seed=3).records == generate(patients=12, seed=3).records


def test_different_seed_gives_different_records() -> None:
    assert generate(patients=12, seed=3).records != generate(patients=12, seed=4).records


def test_showcase_patients_do_not_depend_on_patient_count() -> None:
    small, large = generate(patients=3, seed=5), generate(patients=25, seed=5)
    assert small.records["patients"] == large.records["patients"][:3]
    small_ids = {p["id"] for p in small.records["patients"]}
    for endpoint in PATIENT_ENDPOINTS:
        in_large = [r for r in large.records[endpoint] if r["patient"] in small_ids]
        assert small.records[endpoint] == in_large, endpoint


def test_fewer_than_three_patients_generates_fewer_showcase_patients() -> None:
    assert len(generate(patients=2, seed=1).records["patients"]) == 2
    assert generate(patients=0, seed=1).records["patients"] == []


# --- shape of the practice ---


def test_every_endpoint_is_present_and_non_empty(dataset: SandboxDataset) -> None:
    assert set(dataset.records) == set(ENDPOINTS)
    for endpoint in ENDPOINTS:
        assert dataset.records[endpoint], endpoint


def test_ids_are_unique_per_endpoint_and_appointment_ids_are_strings(
    dataset: SandboxDataset,
) -> None:
    for endpoint in ENDPOINTS:
        records = dataset.records[endpoint]
        assert len({r["id"] for r in records}) == len(records), endpoint
        expected = str if endpoint == "appointments" else int
        assert all(type(r["id"]) is expected for r in records), endpoint


def test_patients_have_several_records_of_each_kind(dataset: SandboxDataset) -> None:
    patients = len(dataset.records["patients"])
    for endpoint in ("appointments", "problems", "procedures", "patient_vaccine_records"):
        assert len(dataset.records[endpoint]) >= 2 * patients, endpoint
    per_patient = Counter(r["patient"] for r in dataset.records["appointments"])
    assert all(per_patient[p["id"]] >= 2 for p in dataset.records["patients"])


def test_doctors_belong_to_the_practice_and_carry_valid_npis(dataset: SandboxDataset) -> None:
    assert 3 <= len(dataset.records["doctors"]) <= 6
    for doctor in dataset.records["doctors"]:
        assert doctor["practice_group"] == dataset.practice_group_id
        assert doctor["practice_group_name"] == dataset.practice_group_name
        assert is_valid_npi(doctor["npi_number"]) and is_valid_npi(doctor["group_npi_number"])
        assert doctor["timezone"] == "America/Chicago"
    assert any(doctor["suffix"] == "MD" for doctor in dataset.records["doctors"])


def test_npi_check_rejects_a_wrong_check_digit() -> None:
    assert is_valid_npi("1234567893")  # the CMS published example
    assert not is_valid_npi("1234567894")


def test_current_user_is_the_primary_doctors_user(dataset: SandboxDataset) -> None:
    user = dataset.by_id("users", str(dataset.current_user_id))
    assert user is not None and user["is_doctor"] and user["permissions"] == {}
    assert user["doctor"] == dataset.records["doctors"][0]["id"]
    assert any(u["is_staff"] and not u["is_doctor"] for u in dataset.records["users"])


def test_offices_list_their_exam_rooms(dataset: SandboxDataset) -> None:
    for office in dataset.records["offices"]:
        assert office["archived"] is False
        assert [room["index"] for room in office["exam_rooms"]] == list(
            range(1, len(office["exam_rooms"]) + 1)
        )


def test_custom_demographics_are_the_ones_facade_reads(dataset: SandboxDataset) -> None:
    by_template = {d["template_name"]: d for d in dataset.records["custom_demographics"]}
    assert set(by_template) == {
        "name_suffix",
        "previous_last_name",
        "previous_address",
        "tribal_affiliation",
    }
    assert by_template["previous_address"]["name"] == "Previous Address"


# --- referential integrity ---


def test_every_reference_points_at_an_existing_record(dataset: SandboxDataset) -> None:
    patients, doctors, offices = (ids(dataset, e) for e in ("patients", "doctors", "offices"))
    appointments = ids(dataset, "appointments")
    procedures = ids(dataset, "procedures")
    for endpoint in PATIENT_ENDPOINTS:
        for record in dataset.records[endpoint]:
            assert record["patient"] in patients, endpoint
            if "doctor" in record:
                assert record["doctor"] in doctors, endpoint
            if record.get("appointment") is not None:
                assert str(record["appointment"]) in appointments, endpoint
    for patient in dataset.records["patients"]:
        assert patient["doctor"] in doctors
        assert set(patient["offices"]) <= offices
    rooms = {o["id"]: len(o["exam_rooms"]) for o in dataset.records["offices"]}
    for appointment in dataset.records["appointments"]:
        assert 1 <= appointment["exam_room"] <= rooms[appointment["office"]]
    for device in dataset.records["implantable_devices"]:
        procedure = dataset.by_id("procedures", str(device["procedure"]))
        assert device["procedure"] in procedures and procedure is not None
        assert procedure["patient"] == device["patient"]
    for vaccine in dataset.records["patient_vaccine_records"]:
        assert vaccine["ordering_doctor"] in doctors and vaccine["administered_at"] in offices


def test_lab_results_join_to_their_patient_only_through_the_order(dataset: SandboxDataset) -> None:
    orders = {o["id"] for o in dataset.records["lab_orders"]}
    tests = {t["id"]: t for t in dataset.records["lab_tests"]}
    assert all(t["lab_order"] in orders for t in tests.values())
    for result in dataset.records["lab_results"]:
        assert "patient" not in result
        assert result["lab_order"] == tests[result["lab_test"]]["lab_order"]


def test_clinical_notes_are_one_per_completed_appointment(dataset: SandboxDataset) -> None:
    completed = {a["id"] for a in dataset.records["appointments"] if a["status"] == "Complete"}
    noted = [str(note["appointment"]) for note in dataset.records["clinical_notes"]]
    assert sorted(noted) == sorted(completed)
    for note in dataset.records["clinical_notes"]:
        appointment = dataset.by_id("appointments", str(note["appointment"]))
        assert appointment is not None and appointment["patient"] == note["patient"]
        for section in note["clinical_note_sections"]:
            assert {"clinical_note_template", "name", "values"} <= set(section)
            assert all({"clinical_note_field", "value"} <= set(v) for v in section["values"])


def test_custom_demographic_values_point_at_definitions(dataset: SandboxDataset) -> None:
    definitions = ids(dataset, "custom_demographics")
    for patient in dataset.records["patients"]:
        for value in patient["custom_demographics"]:
            assert value["field_type"] in definitions and value["value"]


# --- showcase patients ---


def custom_values(dataset: SandboxDataset, patient: dict[str, Any]) -> dict[str, str]:
    names = {d["id"]: d["template_name"] for d in dataset.records["custom_demographics"]}
    return {names[v["field_type"]]: v["value"] for v in patient["custom_demographics"]}


def test_showcase_adult_has_every_demographic_feature(
    dataset: SandboxDataset, showcase: dict[str, dict[str, Any]]
) -> None:
    adult = showcase["adult"]
    assert adult["gender"] == "Female" and adult["preferred_language"] == "spa"
    assert adult["race"] == "white" and adult["ethnicity"] == "hispanic"
    assert adult["emergency_contact_name"] and adult["emergency_contact_relation"]
    assert adult["primary_insurance"]["insurance_payer_id"]
    assert adult["secondary_insurance"]["insurance_company"]
    values = custom_values(dataset, adult)
    assert values["previous_last_name"]
    assert re.fullmatch(r"\d+ [A-Za-z ]+, [A-Za-z. ]+, [A-Z]{2} \d{5}", values["previous_address"])


def test_showcase_adult_has_pregnancy_occupation_and_screening_assessments(
    dataset: SandboxDataset, showcase: dict[str, dict[str, Any]]
) -> None:
    codes = {a["code"] for a in of_patient(dataset, "patient_risk_assessments", showcase["adult"])}
    assert {"82810-3", "86645-9", "11341-5", "86188-0", "72166-2", "76690-7"} <= codes
    assert {
        "88122-7",
        "83232-9",
        "69856-3",
        "11332-4",
    } <= codes  # sdoh, functional, disability, cognitive


def test_showcase_adult_has_every_vital_sign_on_some_visit(
    dataset: SandboxDataset, showcase: dict[str, dict[str, Any]]
) -> None:
    adult_keys = {
        "height",
        "weight",
        "bmi",
        "temperature",
        "blood_pressure_1",
        "blood_pressure_2",
        "pulse",
        "respiratory_rate",
        "oxygen_saturation",
        "pain",
        "smoking_status",
        "oxygen_concentration",
        "inhaled_oxygen_flow_rate",
    }
    vitals = [a["vitals"] for a in of_patient(dataset, "appointments", showcase["adult"])]
    assert any(all(v[key] not in (None, "") for key in adult_keys) for v in vitals)


def test_showcase_child_has_pediatric_percentiles(
    dataset: SandboxDataset, showcase: dict[str, dict[str, Any]]
) -> None:
    child = showcase["child"]
    assert 2 <= REFERENCE_DATE.year - int(child["date_of_birth"][:4]) <= 10
    vitals = [a["vitals"] for a in of_patient(dataset, "appointments", child)]
    for key in (
        "bmi_percentile",
        "weight_for_length_percentile",
        "head_occipital_frontal_circumference_percentile",
        "head_circumference",
    ):
        assert any(v[key] is not None for v in vitals), key
    assert child["responsible_party_name"]


def test_showcase_deceased_patient(
    dataset: SandboxDataset, showcase: dict[str, dict[str, Any]]
) -> None:
    deceased = showcase["deceased"]
    assert deceased["patient_status"] == "D" and deceased["date_of_death"]
    assert deceased["race"] == "declined"
    assert custom_values(dataset, deceased)["name_suffix"] == "Jr."
    visits = of_patient(dataset, "appointments", deceased)
    assert all(a["scheduled_time"][:10] <= deceased["date_of_death"] for a in visits)


@pytest.mark.parametrize("kind", ["adult", "child", "deceased"])
def test_showcase_patients_have_at_least_one_of_everything(
    dataset: SandboxDataset, showcase: dict[str, dict[str, Any]], kind: str
) -> None:
    patient = showcase[kind]
    for endpoint in PATIENT_ENDPOINTS:
        assert of_patient(dataset, endpoint, patient), endpoint
    assert results_of_patient(dataset, patient)


def test_showcase_immunizations_include_refused_and_not_administered(
    dataset: SandboxDataset, showcase: dict[str, dict[str, Any]]
) -> None:
    statuses = {
        v["completion_status"]
        for patient in showcase.values()
        for v in of_patient(dataset, "patient_vaccine_records", patient)
    }
    assert {"CP", "RE", "NA", "PA"} <= statuses


def test_showcase_adult_covers_every_clinical_note_type_and_care_plan_type(
    dataset: SandboxDataset, showcase: dict[str, dict[str, Any]]
) -> None:
    documents = of_patient(dataset, "documents", showcase["adult"])
    types = {row["display"] for row in load_table("loinc_document_types").rows}
    assert types <= {tag for d in documents for tag in d["metatags"]}
    plans = {p["plan_type"] for p in of_patient(dataset, "care_plans", showcase["adult"])}
    assert plans == {1, 2, 3, 4, 5, 6}
    problems = of_patient(dataset, "problems", showcase["adult"])
    assert any(p["category"] == "health-concern" and p["problem_type"] == "sdoh" for p in problems)


def test_showcase_procedures_use_every_coding_type(
    dataset: SandboxDataset, showcase: dict[str, dict[str, Any]]
) -> None:
    kinds = {p["procedure_type"] for p in of_patient(dataset, "procedures", showcase["adult"])}
    assert {"C", "H", "S"} <= kinds


# --- real-data quirks ---


def test_quirks_real_data_has_are_present(dataset: SandboxDataset) -> None:
    records = dataset.records
    patients = records["patients"]
    assert any("\n" in p["address"] for p in patients)
    assert {"declined", "blank"} & {p["race"] for p in patients}
    assert any(p["ethnicity"] in ("declined", "blank") for p in patients)
    assert any(p["email"] == "" for p in patients)
    assert any(not of_patient(dataset, "allergies", p) for p in patients)
    assert any(
        a["status"] in ("", "Confirmed") and a["scheduled_time"][:10] > REFERENCE_DATE.isoformat()
        for a in records["appointments"]
    )
    assert {"Cancelled", "No Show"} <= {a["status"] for a in records["appointments"]}
    assert any(p["verification_status"] == "" for p in records["problems"])
    assert any(m["date_prescribed"] is None for m in records["medications"])
    assert any(r["abnormal_status"] == "" for r in records["lab_results"])
    assert any(a["reaction"] == "" for a in records["allergies"])


def test_timestamps_are_naive(dataset: SandboxDataset) -> None:
    for endpoint in ENDPOINTS:
        for record in dataset.records[endpoint]:
            for key in ("created_at", "updated_at"):
                if record.get(key) is not None:
                    assert TIMESTAMP.match(record[key]), (endpoint, key, record[key])
    for appointment in dataset.records["appointments"]:
        assert TIMESTAMP.match(appointment["scheduled_time"])
        assert all(TIMESTAMP.match(t["datetime"]) for t in appointment["status_transitions"])


def _change_stamps(record: Any, key: str = "") -> list[tuple[str, str]]:
    """Every moment a record says it (or a part of it) was created, changed or moved on."""
    if isinstance(record, list):
        return [found for item in record for found in _change_stamps(item, key)]
    if not isinstance(record, dict):
        return []
    stamps = [
        (name, value)
        for name, value in record.items()
        if isinstance(value, str)
        and (
            name in ("created_at", "updated_at", "extended_updated_at")
            or key
            and name == "datetime"
        )
    ]
    for name, value in record.items():
        stamps += _change_stamps(value, name if name == "status_transitions" else "")
    return stamps


def test_no_record_is_stamped_with_a_change_after_the_practices_last_change_day(
    dataset: SandboxDataset,
) -> None:
    """A future visit is booked in the past: the sandbox's clock starts on the reference date,
    and no vendor stamps a change in the future (a mirror would keep the future version)."""
    last = LAST_CHANGE_DATE.isoformat()
    assert LAST_CHANGE_DATE < REFERENCE_DATE
    future = [a for a in dataset.records["appointments"] if a["scheduled_time"][:10] > last]
    assert future
    for endpoint in ENDPOINTS:
        for record in dataset.records[endpoint]:
            for name, stamp in _change_stamps(record):
                assert stamp[:10] <= last, (endpoint, record.get("id"), name, stamp)


def test_records_span_about_five_years_before_the_reference_date(dataset: SandboxDataset) -> None:
    days = sorted(a["scheduled_time"][:10] for a in dataset.records["appointments"])
    assert days[0] >= f"{REFERENCE_DATE.year - 6}-01-01"
    assert days[-1] <= f"{REFERENCE_DATE.year}-12-31"


def test_documents_point_at_file_paths(dataset: SandboxDataset) -> None:
    for document in dataset.records["documents"]:
        assert document["document"] == f"/files/documents/{document['id']}.pdf"


def test_device_udis_are_gs1_or_isbt_128_human_readable(dataset: SandboxDataset) -> None:
    """Devices carry GS1 UDIs with valid GTINs; tissue grafts carry ISBT 128 UDIs, whose
    donation identification number is the HCT/P distinct identification code."""
    kinds = set()
    for device in dataset.records["implantable_devices"]:
        tissue = isbt128.parse(device["udi"])
        if tissue is not None:
            kinds.add("isbt128")
            assert tissue.donation_identification_number
            assert tissue.lot_number == device["lot_number"]
            assert tissue.serial_number == device["serial_number"]
            assert tissue.expiration_date == device["expiration_date"]
            assert tissue.production_date == device["manufacturing_date"]
            continue
        kinds.add("gs1")
        match = re.fullmatch(
            r"\(01\)(\d{14})\(11\)\d{6}\(17\)\d{6}\(10\)(\w+)\(21\)(\w+)", device["udi"]
        )
        assert match, device["udi"]
        gtin = match.group(1)
        assert gs1_check_digit(gtin[:-1]) == int(gtin[-1])
        assert match.group(2) == device["lot_number"] and match.group(3) == device["serial_number"]
    assert kinds == {"gs1", "isbt128"}


# --- codes ---


def codes(table: str) -> frozenset[str]:
    return load_table(table).codes()


def test_every_table_names_its_system_and_source() -> None:
    names = table_names()
    assert {
        "icd10cm",
        "snomed",
        "rxnorm",
        "loinc_labs",
        "loinc_vitals",
        "loinc_assessments",
        "cvx",
        "cpt",
        "hcpcs",
        "omb_race",
        "omb_ethnicity",
        "languages",
        "names",
        "places",
    } <= set(names)
    for name in names:
        table = load_table(name)
        assert table.source and table.rows, name
        assert table.system or name in ("names", "places", "payers", "physical_exams"), name


def test_icd10cm_codes_are_well_formed_and_paired_with_snomed() -> None:
    for row in load_table("icd10cm").rows:
        assert ICD10CM.match(row["code"]), row["code"]
        assert row["snomed"] in codes("snomed")


def test_patient_codes_exist_in_their_tables(dataset: SandboxDataset) -> None:
    races, ethnicities = codes("omb_race"), codes("omb_ethnicity")
    languages = codes("languages")
    for patient in dataset.records["patients"]:
        assert patient["race"] in races and patient["ethnicity"] in ethnicities
        assert patient["preferred_language"] in languages


def test_clinical_codes_exist_in_their_tables(dataset: SandboxDataset) -> None:
    records = dataset.records
    icd, snomed, rxnorm = codes("icd10cm"), codes("snomed"), codes("rxnorm")
    for problem in records["problems"]:
        assert problem["icd_code"] in icd | {""} and problem["snomed_ct_code"] in snomed
    for appointment in records["appointments"]:
        assert set(appointment["icd10_codes"]) <= icd
        assert appointment["vitals"]["smoking_status"] in snomed | {""}
    for allergy in records["allergies"]:
        assert allergy["rxnorm"] in rxnorm | {""} and allergy["snomed_code"] in snomed | {""}
        assert allergy["snomed_reaction"] in snomed
    for medication in records["medications"]:
        assert medication["rxnorm"] in rxnorm | {""}
    by_type = {"C": codes("cpt"), "H": codes("hcpcs"), "S": snomed}
    for procedure in records["procedures"]:
        assert procedure["code"] in by_type[procedure["procedure_type"]]
    labs, panels = codes("loinc_labs"), codes("loinc_lab_panels")
    assert {r["observation_code"] for r in records["lab_results"]} <= labs
    assert {t["code"] for t in records["lab_tests"]} <= panels
    cvx = {row["code"]: row for row in load_table("cvx").rows}
    for vaccine in records["patient_vaccine_records"]:
        assert vaccine["cpt_code"] == cvx[vaccine["cvx_code"]]["cpt"]


def test_coded_observations_use_their_tables(dataset: SandboxDataset) -> None:
    system_codes = {
        "SNOMEDCT": codes("snomed"),
        "LOINC": codes("loinc_labs") | codes("loinc_assessments"),
        "CPT": codes("cpt"),
        "HCPCS": codes("hcpcs"),
    }
    answers = {a["code"] for row in load_table("loinc_assessments").rows for a in row["answers"]}
    answers |= {a["code"] for row in load_table("physical_exams").rows for a in row["answers"]}
    for assessment in dataset.records["patient_risk_assessments"]:
        assert assessment["code"] in codes("loinc_assessments")
        assert assessment["value_code"] in answers | {""}
        panel = load_table("loinc_assessments").row(assessment["code"])["value_kind"] == "panel"
        assert assessment["value_code"] or assessment["value_code_name"] or panel
    for exam in dataset.records["patient_physical_exams"]:
        assert exam["code"] in codes("physical_exams")
    for intervention in dataset.records["patient_interventions"]:
        assert intervention["code"] in system_codes[intervention["code_system"]]
    for plan in dataset.records["care_plans"]:
        assert plan["code"] in system_codes[plan["code_system"]]


def test_lab_units_are_the_tables_ucum_units(dataset: SandboxDataset) -> None:
    units = {row["code"]: row["unit"] for row in load_table("loinc_labs").rows}
    for result in dataset.records["lab_results"]:
        assert result["unit"] == units[result["observation_code"]]
        if not result["value_is_numeric"]:
            assert result["normal_range"] == "" and result["unit"] == ""
            continue
        low, high = (float(x) for x in result["normal_range"].split())
        assert low <= high
