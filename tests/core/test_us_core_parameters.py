"""US Core's search parameters and combinations are declared once (facade/fhir/uscore.py,
from the US Core server CapabilityStatement); every vendor mapping declares how it serves each
parameter of its type (pushed down, read by id, filtered locally, or Unsupported with its
reason), and the CapabilityStatement claims only combinations it serves."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from facade.core.mapping import Unsupported
from facade.fhir.uscore import SERVER, us_core_search
from facade.vendors import vendor, vendor_names

SHARED = Path(os.environ.get("FACADE_SHARED_DIR", Path(__file__).parents[3] / "shared"))


def test_the_carried_statement_is_the_published_one() -> None:
    published = SHARED / "fhir" / "us-core-6.1.0" / SERVER.name
    assert json.loads(SERVER.read_text()) == json.loads(published.read_text())


def test_us_core_lists_parameters_and_combinations() -> None:
    patient = us_core_search("Patient")
    assert {"_id", "identifier", "name", "birthdate", "gender"} <= set(patient.codes)
    assert (("birthdate", "name"), "SHALL") in patient.combinations
    assert us_core_search("Group").params == ()


@pytest.mark.parametrize("name", vendor_names())
def test_every_mapping_declares_how_it_serves_each_us_core_parameter(name: str) -> None:
    missing = [
        f"{mapping.resource_type}?{code}"
        for mapping in vendor(name).registry()
        for code in us_core_search(mapping.resource_type).codes
        if mapping.param(code) is None
    ]
    assert missing == []


@pytest.mark.parametrize("name", vendor_names())
def test_unsupported_parameters_say_why(name: str) -> None:
    for mapping in vendor(name).registry():
        for param in mapping.search_params:
            if isinstance(param.serve, Unsupported):
                assert param.serve.reason.strip(), (mapping.resource_type, param.code)
