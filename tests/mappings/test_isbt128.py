"""ISBT 128 UDIs of tissue products: the parts a Device is built from."""

from __future__ import annotations

from mappings.drchrono import isbt128

#: FHIR's Device example-udi2 (a demineralized bone putty), also AccessGUDID's parse_udi example.
EXAMPLE = "=/A9999XYZ100T0474=,000025=A99971312345600=>014032=}013032&,1000000000000XYZ123"


def test_the_fhir_example_parses_into_its_documented_parts() -> None:
    assert isbt128.parse(EXAMPLE) == isbt128.IsbtUdi(
        device_identifier="A9999XYZ100T0474",
        donation_identification_number="A99971312345600",
        serial_number="000025",
        lot_number="000000000000XYZ123",
        expiration_date="2014-02-01",
        production_date="2013-02-01",
    )


def test_what_is_not_wholly_isbt_128_is_not_parsed() -> None:
    assert isbt128.parse("(01)02259439511641(17)230519(10)L34813") is None
    assert isbt128.parse("=A99971312345600=>014032") is None  # no product code (the DI)
    assert isbt128.parse(EXAMPLE + "junk") is None
    assert isbt128.parse(EXAMPLE.replace("=>014032", "=>0140")) is None


def test_julian_dates_are_checked() -> None:
    assert isbt128.julian_date("024366") == "2024-12-31"  # a leap year
    assert isbt128.julian_date("023366") is None
    assert isbt128.julian_date("023000") is None
