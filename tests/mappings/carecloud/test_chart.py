"""The CareCloud chart types read from encounters: one shared vendor list per patient, a read
by id that costs exactly one GET /encounters/<guid>, the NDC→RxNorm crosswalk, and the
C-CDA and note files. A stateful fake client holds encounters keyed by GUID and records
every request it answers."""

from __future__ import annotations

import base64
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from facade.core import vendor as vendor_protocol
from facade.core.compartment import CompartmentMapping, FetchContext, Source, split_fhir_id
from facade.core.mapping import MappingContext
from facade.core.vendor import VendorPage
from facade.errors import InvalidParameterValue
from facade.fhir.query import parse_query
from facade.sandbox.codes import load_table
from mappings.carecloud import REGISTRY, document_reference, medication_request
from mappings.carecloud.docref import ccd_id, ccd_transform, docref, read_ccd
from mappings.carecloud.fields import expand_guid
from tests.fhir_models import assert_fhir_resources

GOLDEN_DIR = Path(__file__).parent / "golden"
CHART_TYPES = (
    "AllergyIntolerance",
    "Condition",
    "DiagnosticReport",
    "DocumentReference",
    "Immunization",
    "MedicationRequest",
    "Observation",
    "Procedure",
)
CTX = MappingContext(
    practice_group_id="5b7e2c4a-91d3-4f08-a6b2-3c8d1e9f0a47",
    practice_name="Harbor Point Family Practice",
    timezone=ZoneInfo("America/New_York"),
)
CCD = b"""<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3">
  <id root="2.16.840.1.113883.19.5.99999.1" extension="ccd-7f3a"/>
  <title>Continuity of Care Document</title>
  <effectiveTime value="20260304111500-0500"/>
</ClinicalDocument>
"""


class FakeCareCloud:
    """Encounters by GUID and C-CDAs by patient, answered like the CareCloud client does
    (records unwrapped); every request is recorded as (kind, path, params)."""

    vendor = "carecloud"
    # What the core's ConfinedClient copies from the client it wraps (the wire rules arrive
    # with the core's vendor-neutral refactoring; a default Wire asks for nothing special).
    wire = getattr(vendor_protocol, "Wire", lambda: None)()
    budget = None
    cache = None

    def __init__(self, encounters: list[dict[str, Any]], ccdas: dict[str, bytes]):
        self.encounters = {e["id"]: e for e in encounters}
        self.ccdas = ccdas
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    def list_url(self, endpoint: str, params: dict[str, str]) -> str:
        return f"/{endpoint}?" + "&".join(f"{k}={v}" for k, v in sorted(params.items()))

    async def fetch_page(
        self, url: str, *, reason: str, cache_ttl: float = 0.0, max_wait: float | None = None
    ) -> VendorPage:
        raise AssertionError("chart sources list through list_all")

    async def list_all(
        self, endpoint: str, params: dict[str, str], *, reason: str, cache_ttl: float = 0.0
    ) -> list[dict[str, Any]]:
        self.requests.append(("list", endpoint, dict(params)))
        assert endpoint == "encounters" and set(params) == {"patient_id"}
        return [e for e in self.encounters.values() if e["patient_id"] == params["patient_id"]]

    async def get_record(
        self,
        endpoint: str,
        record_id: str,
        params: dict[str, str] | None = None,
        *,
        reason: str,
        cache_ttl: float = 0.0,
    ) -> dict[str, Any] | None:
        self.requests.append(("get", f"{endpoint}/{record_id}", dict(params or {})))
        return self.encounters.get(record_id) if endpoint == "encounters" else None

    async def get_document(
        self,
        path: str,
        params: dict[str, str] | None = None,
        *,
        reason: str,
        cache_ttl: float = 0.0,
    ) -> bytes | None:
        self.requests.append(("document", path, dict(params or {})))
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "patients" and parts[2] == "ccda":
            return self.ccdas.get(parts[1])
        return None

    async def fetch_file(self, url: str, *, max_bytes: int = 0) -> tuple[str, bytes]:
        raise AssertionError("no vendor files behind chart types")


def _golden() -> list[dict[str, Any]]:
    cases = []
    for path in sorted(GOLDEN_DIR.glob("*/*.json")):
        data = json.loads(path.read_text())
        if data["resource_type"] in CHART_TYPES:
            cases.append(data)
    return cases


GOLDEN = _golden()
FC = FetchContext(ctx=CTX, cache_ttl=0.0, reason="test")


def _mapping(resource_type: str) -> CompartmentMapping:
    mapping = REGISTRY.get(resource_type)
    assert isinstance(mapping, CompartmentMapping)
    return mapping


def _chart_sources() -> list[tuple[str, Source]]:
    return [
        (resource_type, source)
        for resource_type in CHART_TYPES
        for source in _mapping(resource_type).sources
        if source.name != "ccd"
    ]


@pytest.mark.parametrize(
    "resource_type,source", _chart_sources(), ids=lambda v: getattr(v, "name", v)
)
def test_every_chart_source_lists_the_one_encounters_call_encounter_makes(
    resource_type: str, source: Source
) -> None:
    """Same endpoint, patient parameter and fixed parameters as Encounter's own source, so
    the client's cache serves every chart type of a patient from one vendor call."""
    encounter = _mapping("Encounter").sources[0]
    assert (source.endpoint, source.patient_param, dict(source.fixed_params)) == (
        encounter.endpoint,
        encounter.patient_param,
        dict(encounter.fixed_params),
    )
    assert source.fetch is None, "the default fetch is the shared list"
    assert source.read is not None and source.last_updated is not None


@pytest.mark.parametrize("data", GOLDEN, ids=lambda d: f"{d['resource_type']}-{d['source']}")
async def test_each_resource_is_read_by_id_with_one_encounter_call(data: dict[str, Any]) -> None:
    mapping = _mapping(data["resource_type"])
    source = mapping.source(data["source"])
    assert source is not None and source.read is not None
    for expected in data["expected"]:
        client = FakeCareCloud([data["input"]], {})
        located = split_fhir_id(expected["id"])
        assert located is not None and located[0] == source.name
        assert expand_guid(located[1]) == data["input"]["id"]
        records = await source.read(client, located[1], FC)
        found = [r for rec in records for r in source.resources(rec, CTX)]
        assert [r for r in found if r["id"] == expected["id"]] == [expected]
        assert client.requests == [("get", f"encounters/{data['input']['id']}", {})]


async def test_a_patient_search_of_every_chart_type_is_one_list_of_that_patient() -> None:
    encounters = [data["input"] for data in GOLDEN]
    client = FakeCareCloud(encounters, {})
    patient = encounters[0]["patient_id"]
    for _, source in _chart_sources():
        for record in await client.list_all(
            source.endpoint, {source.patient_param: patient, **source.fixed_params}, reason="t"
        ):
            for resource in source.resources(record, CTX):
                named = resource.get("subject", resource.get("patient"))
                assert named == {"reference": f"Patient/{patient}"}
    assert {json.dumps(r, sort_keys=True) for r in client.requests} == {
        json.dumps(("list", "encounters", {"patient_id": patient}), sort_keys=True)
    }


async def test_an_id_that_names_no_encounter_is_not_read() -> None:
    source = _mapping("Condition").source("problem")
    assert source is not None and source.read is not None
    client = FakeCareCloud([], {})
    assert await source.read(client, "notahexguid", FC) == []
    assert client.requests == []


def test_an_open_encounter_has_no_note() -> None:
    data = next(d for d in GOLDEN if d["source"] == "note")
    open_visit = {**data["input"], "status": "open", "note": None, "signed_at": None}
    assert document_reference.note_transform(open_visit, CTX) == []


async def test_the_note_binary_is_the_signed_text_of_its_encounter() -> None:
    data = next(d for d in GOLDEN if d["source"] == "note")
    note = data["expected"][0]
    assert note["content"][0]["attachment"]["url"] == f"Binary/{note['id']}"
    client = FakeCareCloud([data["input"]], {})
    located = split_fhir_id(note["id"])
    assert located is not None
    content = await document_reference.read_note_text(client, located[1], FC)
    assert content is not None
    assert content.content_type == "text/plain; charset=utf-8"
    assert content.data.decode() == data["input"]["note"]["text"] + "\n"
    assert content.patient_id == data["input"]["patient_id"]


def test_every_crosswalk_row_names_an_rxnorm_drug_facade_knows() -> None:
    crosswalk = load_table(medication_request.CROSSWALK_TABLE)
    rxnorm = load_table("rxnorm")
    assert crosswalk.system == "http://hl7.org/fhir/sid/ndc" and crosswalk.source
    for row in crosswalk.rows:
        assert rxnorm.row(row["rxnorm"])["display"] == row["display"]


def test_an_ndc_without_a_crosswalk_row_keeps_its_ndc_and_text_and_is_listed() -> None:
    known = load_table(medication_request.CROSSWALK_TABLE).rows[0]["code"]
    unknown = "00536-1047-01"
    assert medication_request.unmapped_ndcs([known, unknown, unknown]) == [unknown]
    concept = medication_request.medication_code({"ndc": unknown, "name": "Vitamin D3"})
    assert concept == {
        "coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": unknown}],
        "text": "Vitamin D3",
    }


async def test_the_ccd_is_read_by_its_patient_keyed_id() -> None:
    patient = "9c1d7e2a-4b5f-4a3c-8e6d-1f2a3b4c5d6e"
    client = FakeCareCloud([], {patient: CCD})
    resource_id = ccd_id(patient)
    located = split_fhir_id(resource_id)
    assert located is not None and located[0] == "ccd"
    records = await read_ccd(client, located[1], FC)
    assert client.requests == [("document", f"/patients/{patient}/ccda", {})]
    [resource] = ccd_transform(records[0], CTX)
    assert resource["id"] == resource_id
    assert resource["subject"] == {"reference": f"Patient/{patient}"}
    assert resource["type"]["coding"][0]["code"] == "34133-9"
    assert resource["date"] == "2026-03-04T11:15:00-05:00"
    assert resource["identifier"] == [
        {"system": "urn:oid:2.16.840.1.113883.19.5.99999.1", "value": "ccd-7f3a"}
    ]
    assert base64.b64decode(resource["content"][0]["attachment"]["data"]) == CCD


def test_golden_outputs_miss_exactly_the_documented_must_support_gaps() -> None:
    from tests.validation.test_must_support import missing_must_support, profile_requirements

    resources = [r for data in GOLDEN for r in data["expected"]]
    shared = Path(os.environ.get("FACADE_SHARED_DIR", "/work/shared"))
    for resource_type in CHART_TYPES:
        for profile in _mapping(resource_type).profiles:
            name = profile.rsplit("/", 1)[1]
            claiming = [r for r in resources if profile in r["meta"]["profile"]]
            assert claiming, f"no golden case yields {name}"
            missing = missing_must_support(profile_requirements(shared, profile), claiming)
            # A slice's optional children (a BP component's data-absent reason) are
            # situational: only top-level gaps must be documented.
            missing = [m for m in missing if "component:" not in m]
            assert sorted(missing) == sorted(REGISTRY.must_support_gaps.get(name, {})), name


class FakeService:
    """What $docref reads of the service: the practice context, the client, its cache
    policy, the base URL and the clock."""

    base_url = "https://facade.test/fhir"

    def __init__(self, client: FakeCareCloud, today: str):
        self.client = client
        self.limits = _Limits()
        self._clock = _Clock(today)

    async def context(self) -> MappingContext:
        return CTX


class _Limits:
    page_cache_seconds = 0.0


class _Clock:
    def __init__(self, today: str):
        self.today = today

    def now(self) -> datetime:
        return datetime.fromisoformat(f"{self.today}T12:00:00+00:00")


async def test_docref_answers_the_whole_record_ccd_generated_now() -> None:
    patient = "9c1d7e2a-4b5f-4a3c-8e6d-1f2a3b4c5d6e"
    client = FakeCareCloud([], {patient: CCD})
    service = FakeService(client, "2026-03-06")
    query = parse_query([("patient", f"Patient/{patient}"), ("start", "2026-01-01")])
    bundle = await docref(service, query)
    [entry] = bundle["entry"]
    assert entry["resource"]["id"] == ccd_id(patient)
    assert "context" not in entry["resource"], "CareCloud's CCD is not limited to a period"
    assert client.requests == [("document", f"/patients/{patient}/ccda", {})]


@pytest.mark.parametrize("dates", [[("start", "9999-12-31")], [("end", "0001-01-01")]])
async def test_docref_with_a_range_that_holds_no_date_is_refused_before_any_call(
    dates: list[tuple[str, str]],
) -> None:
    patient = "9c1d7e2a-4b5f-4a3c-8e6d-1f2a3b4c5d6e"
    client = FakeCareCloud([], {patient: CCD})
    with pytest.raises(InvalidParameterValue):
        await docref(FakeService(client, "2026-03-06"), parse_query([("patient", patient), *dates]))
    assert client.requests == []


async def test_docref_for_another_code_than_the_ccd_is_empty_and_calls_nothing() -> None:
    patient = "9c1d7e2a-4b5f-4a3c-8e6d-1f2a3b4c5d6e"
    client = FakeCareCloud([], {patient: CCD})
    query = parse_query([("patient", patient), ("type", "http://loinc.org|11506-3")])
    bundle = await docref(FakeService(client, "2026-03-06"), query)
    assert bundle.get("entry", []) == [] and client.requests == []


def _sandbox_chart() -> tuple[list[dict[str, Any]], list[tuple[str, Source, dict[str, Any]]]]:
    """Every chart resource the sandbox generator's encounters yield, with its source."""
    from facade.upstream.carecloud.sandbox.generator import generate

    dataset = generate(12, 7)
    mapped: list[tuple[str, Source, dict[str, Any]]] = []
    for encounter in dataset.encounters:
        for resource_type, source in _chart_sources():
            for resource in source.resources(encounter, CTX):
                mapped.append((resource_type, source, resource))
    return dataset.encounters, mapped


async def test_the_sandbox_chart_maps_to_distinct_resources_each_readable_by_id() -> None:
    encounters, mapped = _sandbox_chart()
    assert {t for t, _, _ in mapped} == set(CHART_TYPES), "the sandbox feeds every chart type"
    ids = [(t, r["id"]) for t, _, r in mapped]
    assert len(ids) == len(set(ids)), "two chart items map to one id"
    assert_fhir_resources([r for _, _, r in mapped])
    client = FakeCareCloud(encounters, {})
    for _, source, resource in mapped[:: max(1, len(mapped) // 60)]:
        located = split_fhir_id(resource["id"])
        assert located is not None and source.read is not None
        records = await source.read(client, located[1], FC)
        assert resource in [r for rec in records for r in source.resources(rec, CTX)]


def test_every_sandbox_ndc_has_a_crosswalk_row() -> None:
    encounters, _ = _sandbox_chart()
    ndcs = [str(m["ndc"]) for e in encounters for m in e.get("medications") or []]
    assert ndcs and medication_request.unmapped_ndcs(ndcs) == []


def _service(client: FakeCareCloud) -> Any:
    from facade.core.service import FhirService
    from facade.fhir.paging import CursorCodec

    async def context() -> MappingContext:
        return CTX

    return FhirService(REGISTRY, client, context, CursorCodec(b"k" * 32), "https://f.test/fhir")


def _grant(patient_id: str | None) -> Any:
    from facade.auth.grant import Grant
    from facade.auth.scopes import ScopeSet

    if patient_id is None:
        return Grant(client_id="t", scopes=ScopeSet.parse("system/*.rs"), backend=True)
    return Grant(client_id="t", scopes=ScopeSet.parse("patient/*.rs"), patient_id=patient_id)


async def test_the_service_reads_each_chart_type_with_one_call_and_confines_it() -> None:
    """Through the framework's read: one GET /encounters/<guid> per read, and a patient
    grant reading another patient's item gets the same 404 as an unknown id, after that one
    call. (A patient grant reading its own GUID patient's item needs the core to read GUID
    patient references; see the report.)"""
    from facade.errors import ResourceNotFound

    encounters, mapped = _sandbox_chart()
    first: dict[str, dict[str, Any]] = {}
    for resource_type, _, resource in mapped:
        first.setdefault(resource_type, resource)
    for resource_type, resource in first.items():
        owner = str(resource.get("subject", resource.get("patient", {}))["reference"])[8:]
        other = next(e["patient_id"] for e in encounters if e["patient_id"] != owner)
        client = FakeCareCloud(encounters, {})
        service = _service(client)
        read = await service.read(resource_type, resource["id"], grant=_grant(None))
        assert read == resource and len(client.requests) == 1
        with pytest.raises(ResourceNotFound):
            await service.read(resource_type, resource["id"], grant=_grant(other))
        assert len(client.requests) <= 2


async def test_the_note_binary_is_served_and_kept_from_other_patients() -> None:
    from facade.errors import ResourceNotFound

    encounters, mapped = _sandbox_chart()
    note = next(r for t, s, r in mapped if s.name == "note")
    owner = note["subject"]["reference"][8:]
    other = next(e["patient_id"] for e in encounters if e["patient_id"] != owner)
    service = _service(FakeCareCloud(encounters, {}))
    content = await service.binary(note["id"], grant=_grant(None))
    assert content.content_type.startswith("text/plain") and content.data
    with pytest.raises(ResourceNotFound):
        await service.binary(note["id"], grant=_grant(other))


@pytest.mark.parametrize(
    "resource_type,source", _chart_sources(), ids=lambda v: getattr(v, "name", v)
)
def test_provenance_ids_fit_fhir_even_for_the_largest_row_ids(
    resource_type: str, source: Source
) -> None:
    """A Provenance id is `<type>-<target id>`; with a 32-bit row id (10 digits) or a LOINC
    panel code it must still be a FHIR id (at most 64 characters)."""
    from mappings.carecloud.chart import item_id

    encounter = {"id": "9c1d7e2a-4b5f-4a3c-8e6d-1f2a3b4c5d6e"}
    for part in ("2147483647", "100000-9"):
        assert len(f"{resource_type}-{item_id(source.name, encounter, part)}") <= 64
