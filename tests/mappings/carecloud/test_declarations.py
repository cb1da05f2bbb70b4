"""Every US Core search parameter facade carries for a CareCloud type is declared (pushed
down, read by id, filtered locally or refused with a reason), and CareCloud's missing
updated-since filter is said, not hidden."""

from __future__ import annotations

from facade.core.mapping import LocalFilter, Unsupported
from facade.fhir.definitions import DEFINITIONS_DIR
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
