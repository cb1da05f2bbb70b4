"""The generated practice: deterministic per seed, GUID and integer ids where the contract
puts them, the three showcase patients, valid NPIs, and only codes from the curated tables.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from facade.sandbox.codes import load_table
from facade.sandbox.npi import is_valid_npi
from facade.upstream.carecloud.sandbox.dataset import CareCloudDataset
from facade.upstream.carecloud.sandbox.generator import generate

NDC_11 = re.compile(r"^\d{5}-\d{4}-\d{2}$")
SYSTOLIC, DIASTOLIC = "8480-6", "8462-4"


def dumped(dataset: CareCloudDataset) -> str:
    return json.dumps(dataset.as_json(), sort_keys=True)


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    assert dumped(generate(30, 5)) == dumped(generate(30, 5))
    assert dumped(generate(30, 5)) != dumped(generate(30, 6))


def test_the_showcase_does_not_depend_on_the_patient_count() -> None:
    small, large = generate(3, 9), generate(40, 9)

    assert small.patients == large.patients[:3]


def test_guid_ids_are_lowercase_uuid4_and_clinical_row_ids_are_unique_integers(
    generated: CareCloudDataset,
) -> None:
    for record in [*generated.patients, *generated.appointments, *generated.encounters]:
        assert str(uuid.UUID(record["id"])) == record["id"]
        assert uuid.UUID(record["id"]).version == 4
    rows = [
        row["id"]
        for encounter in generated.encounters
        for key in (
            "problems",
            "medications",
            "allergies",
            "vitals",
            "immunizations",
            "lab_results",
            "procedures",
        )
        for row in encounter[key]
    ]
    assert all(isinstance(row_id, int) for row_id in rows)
    assert len(rows) == len(set(rows))
    assert all(isinstance(p["id"], int) for p in [*generated.providers, *generated.locations])


def test_timestamps_carry_offsets(generated: CareCloudDataset) -> None:
    stamps = [a["start_time"] for a in generated.appointments] + [
        e["signed_at"] for e in generated.encounters if e["signed_at"]
    ]
    assert all(datetime.fromisoformat(stamp).tzinfo is not None for stamp in stamps)


def test_providers_have_valid_npis_and_nucc_taxonomies(generated: CareCloudDataset) -> None:
    taxonomies = load_table("nucc_taxonomy").codes()
    assert len(generated.providers) >= 3
    for provider in generated.providers:
        assert is_valid_npi(provider["npi"])
        assert provider["specialty"]["taxonomy"] in taxonomies
        assert provider["location_ids"]
    assert is_valid_npi(generated.business_entity["npi"])
    assert {loc["time_zone"] for loc in generated.locations} == {"America/New_York"}


def test_the_showcase_adult_has_a_rich_chart(generated: CareCloudDataset) -> None:
    adult = generated.patients[0]
    encounters = generated.encounters_of(adult["id"])

    def every(key: str) -> list[dict[str, Any]]:
        return [row for e in encounters for row in e[key]]

    assert len(adult["insurances"]) == 2
    assert {p["code"] for p in every("problems")} >= {"I10", "E11.9", "E78.5"}
    assert {m["status"] for m in every("medications")} == {"active", "discontinued"}
    assert len(every("allergies")) == 2
    assert {v["loinc_code"] for v in every("vitals")} >= {
        "8480-6",
        "8462-4",
        "39156-5",
        "29463-7",
        "8302-2",
    }
    assert {i["status"] for i in every("immunizations")} == {"completed", "refused"}
    assert {r["panel_loinc"] for r in every("lab_results")} >= {"4548-4", "57698-3"}
    assert any(e["smoking_status"] for e in encounters)
    assert [e["status"] for e in encounters].count("open") == 1
    assert all(e["note"] for e in encounters if e["status"] != "open")


def test_the_showcase_child_has_pediatric_vitals(generated: CareCloudDataset) -> None:
    child = generated.patients[1]
    loincs = {v["loinc_code"] for e in generated.encounters_of(child["id"]) for v in e["vitals"]}

    assert {"9843-4", "8289-1", "77606-2", "59576-9"} <= loincs
    assert child["insurances"][0]["relationship_to_insured_code"] == "19"


def test_the_third_patient_is_deceased_and_seen_only_before_death(
    generated: CareCloudDataset,
) -> None:
    deceased = generated.patients[2]

    assert deceased["deceased_at"] is not None
    assert deceased["status"] == "I"
    died = datetime.fromisoformat(deceased["deceased_at"])
    assert all(
        datetime.fromisoformat(e["start_time"]) < died
        for e in generated.encounters_of(deceased["id"])
    )
    assert all(
        datetime.fromisoformat(a["start_time"]) < died
        for a in generated.appointments
        if a["patient_id"] == deceased["id"]
    )


def _pressure_halves(encounter: dict[str, Any]) -> set[str]:
    return {v["loinc_code"] for v in encounter["vitals"]} & {SYSTOLIC, DIASTOLIC}


def test_the_deceased_showcase_has_one_half_blood_pressures_and_home_oxygen(
    generated: CareCloudDataset,
) -> None:
    encounters = generated.encounters_of(generated.patients[2]["id"])
    halves = [_pressure_halves(e) for e in encounters]
    last = {v["loinc_code"]: v for v in encounters[-1]["vitals"]}

    assert {SYSTOLIC} in halves
    assert {DIASTOLIC} in halves
    assert (last["3151-8"]["value"], last["3151-8"]["unit"]) == ("2", "L/min")
    assert (last["3150-0"]["value"], last["3150-0"]["unit"]) == ("29", "%")
    assert last["59408-5"]["observed_at"] == last["3151-8"]["observed_at"]


def test_qualitative_lab_results_are_text_with_their_normal_value_as_range(
    generated: CareCloudDataset,
) -> None:
    text = [
        lab for e in generated.encounters for lab in e["lab_results"] if lab["value_type"] == "text"
    ]
    protein = [lab for lab in text if lab["loinc_code"] == "20454-5"]

    assert {lab["value"] for lab in text} == {"Yellow", "Negative", "Positive"}
    assert all(lab["unit"] == "" for lab in text)
    assert {(lab["value"], lab["abnormal_flag"]) for lab in protein} == {
        ("Negative", "N"),
        ("Positive", "A"),
    }
    assert {lab["reference_range"] for lab in protein} == {"Negative"}


def test_the_unusual_vitals_and_labs_are_a_few_percent_of_their_kind(
    generated: CareCloudDataset,
) -> None:
    pressures = [h for e in generated.encounters if (h := _pressure_halves(e))]
    oximetries = [
        e for e in generated.encounters for v in e["vitals"] if v["loinc_code"] == "59408-5"
    ]
    on_oxygen = [e for e in oximetries if any(v["loinc_code"] == "3151-8" for v in e["vitals"])]
    labs = [lab for e in generated.encounters for lab in e["lab_results"]]
    text = [lab for lab in labs if lab["value_type"] == "text"]

    assert 0 < sum(len(h) == 1 for h in pressures) <= 0.08 * len(pressures)
    assert 0 < len(on_oxygen) <= 0.08 * len(oximetries)
    assert 0 < len(text) <= 0.08 * len(labs)


def _codes(dataset: CareCloudDataset) -> Iterator[tuple[str, str]]:
    """(table, code) for every coded value in the dataset."""
    for patient in dataset.patients:
        yield "omb_race", patient["race_code"]
        yield "omb_ethnicity", patient["ethnicity_code"]
        yield "languages", patient["language_code"]
        for insurance in patient["insurances"]:
            yield "payers", insurance["payer_id"]
    for encounter in dataset.encounters:
        yield "cpt", encounter["visit_code"]["code"]
        for diagnosis in encounter["diagnoses"]:
            yield "icd10cm", diagnosis["code"]
        for problem in encounter["problems"]:
            yield (
                {"ICD10CM": "icd10cm", "SNOMED": "snomed"}[problem["code_system"]],
                problem["code"],
            )
        for procedure in encounter["procedures"]:
            yield (
                {"CPT": "cpt", "SNOMED": "snomed", "HCPCS": "hcpcs"}[procedure["code_system"]],
                procedure["code"],
            )
        for vital in encounter["vitals"]:
            yield "loinc_vitals", vital["loinc_code"]
        for medication in encounter["medications"]:
            yield "ndc_rxnorm", medication["ndc"]
        for allergy in encounter["allergies"]:
            yield (
                {"RXNORM": "rxnorm", "SNOMED": "snomed"}[allergy["code_system"]],
                allergy["allergen_code"],
            )
            if allergy["reaction_code"]:
                yield "snomed", allergy["reaction_code"]
        for shot in encounter["immunizations"]:
            yield "cvx", shot["cvx_code"]
        for lab in encounter["lab_results"]:
            yield "loinc_labs", lab["loinc_code"]
            yield "loinc_lab_panels", lab["panel_loinc"]
        if encounter["smoking_status"]:
            yield "snomed", encounter["smoking_status"]["code"]


def test_every_code_in_the_data_is_in_a_curated_table(generated: CareCloudDataset) -> None:
    lookups = {
        "omb_race": {row["omb"] for row in load_table("omb_race").rows},
        "omb_ethnicity": {row["omb"] for row in load_table("omb_ethnicity").rows},
        "languages": {row["bcp47"] for row in load_table("languages").rows},
        "payers": {row["insurance_payer_id"] for row in load_table("payers").rows},
    }
    missing = [
        (table, code)
        for table, code in _codes(generated)
        if code not in lookups.get(table, load_table(table).codes())
    ]
    assert missing == []


def test_medications_carry_eleven_digit_ndcs_whose_rxnorm_is_a_curated_drug(
    generated: CareCloudDataset,
) -> None:
    rxnorm = load_table("rxnorm").codes()
    crosswalk = {row["code"]: row["rxnorm"] for row in load_table("ndc_rxnorm").rows}
    meds = [m for e in generated.encounters for m in e["medications"]]

    assert meds
    for med in meds:
        assert NDC_11.match(med["ndc"])
        assert crosswalk[med["ndc"]] in rxnorm


@pytest.mark.parametrize("row", load_table("ndc_rxnorm").rows, ids=lambda row: row["code"])
def test_the_ndc_table_is_well_formed(row: dict[str, Any]) -> None:
    assert NDC_11.match(row["code"])
    assert load_table("rxnorm").row(row["rxnorm"])["display"] == row["display"]
    labeler, product, package = row["label_ndc"].split("-")
    assert len(labeler + product + package) == 10
    padded = f"{labeler.zfill(5)}-{product.zfill(4)}-{package.zfill(2)}"
    assert padded == row["code"]
