"""Every US Core search parameter facade carries for a CareCloud type is declared (pushed
down, read by id, filtered locally or refused with a reason), and CareCloud's missing
updated-since filter is said, not hidden."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from facade.core.mapping import LocalFilter, MappingContext, ResourceMapping, Unsupported
from facade.core.planner import LocalCheck, SearchPlan, plan_search
from facade.fhir.definitions import DEFINITIONS_DIR
from facade.fhir.query import parse_query
from mappings.carecloud import REGISTRY


def us_core_parameters(resource_type: str) -> set[str]:
    prefix = f"SearchParameter-us-core-{resource_type.lower()}-"
    return {
        path.stem.removeprefix("SearchParameter-") for path in DEFINITIONS_DIR.glob(prefix + "*")
    }


def test_every_us_core_parameter_of_every_type_is_declared() -> None:
    for mapping in REGISTRY:
        declared = {param.definition_id for param in mapping.search_params}
        missing = us_core_parameters(mapping.resource_type) - declared
        assert not missing, (mapping.resource_type, sorted(missing))


def test_refusals_say_why() -> None:
    for mapping in REGISTRY:
        for param in mapping.search_params:
            if isinstance(param.serve, Unsupported):
                assert len(param.serve.reason) > 20, (mapping.resource_type, param.code)


def test_last_updated_is_never_pushed_down() -> None:
    for mapping in REGISTRY:
        param = mapping.param("_lastUpdated")
        if param is not None:
            assert isinstance(param.serve, LocalFilter), mapping.resource_type


def plan(resource_type: str, *pairs: tuple[str, str]) -> SearchPlan:
    mapping = REGISTRY.get(resource_type)
    assert isinstance(mapping, ResourceMapping)
    ctx = MappingContext(practice_group_id="p", practice_name="P", timezone=ZoneInfo("UTC"))
    return plan_search(mapping, parse_query(list(pairs)), ctx, lenient=False)


def local_names(found: SearchPlan) -> list[str]:
    return [check.clause.name for check in found.local if isinstance(check, LocalCheck)]


def test_patient_birthdate_and_family_reach_carecloud_filters() -> None:
    found = plan("Patient", ("birthdate", "1984-07-19"), ("family", "Ram"))
    assert found.vendor_params == {"date_of_birth": "1984-07-19", "last_name": "Ram"}
    # last_name is a prefix match that does not fold accents: re-checked locally.
    assert local_names(found) == ["family"]


def test_what_carecloud_cannot_filter_stays_local() -> None:
    found = plan("Patient", ("birthdate", "ge1984-07-19"), ("family", "Peña"), ("gender", "female"))
    assert found.vendor_params == {}
    assert sorted(local_names(found)) == ["birthdate", "family", "gender"]


def test_a_patient_identifier_in_the_patient_id_system_is_read_by_id() -> None:
    guid = "61b339ff-2481-44e5-998b-88dbaa99e079"
    assert plan("Patient", ("identifier", f"urn:carecloud:patient|{guid}")).ids == [guid]
    assert plan("Patient", ("identifier", "urn:other|CC-000123")).ids is None
