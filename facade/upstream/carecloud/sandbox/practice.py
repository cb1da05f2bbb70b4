"""The sandbox's business entity (one practice, one tenant), its providers and its locations.

Providers carry valid NPIs (Luhn over the 80840 prefix) and NUCC taxonomies from the curated
table; phone numbers use the fictional 555-01xx exchange. It never reads the clock.
"""

from __future__ import annotations

import random

from facade.sandbox.codes import load_table
from facade.sandbox.npi import make_npi
from facade.upstream.carecloud.sandbox.context import (
    PRACTICE_TIME_ZONE,
    Practice,
    Record,
    new_guid,
)

PRACTICE_NAME = "Scioto Valley Family Health"
PRACTICE_CITY = ("Columbus", "OH", "43215")
AREA_CODE = "614"

#: first, last, NUCC taxonomy code, location indexes they work at
PROVIDERS: tuple[tuple[str, str, str, tuple[int, ...]], ...] = (
    ("Nadia", "Harmon", "207Q00000X", (0, 1)),
    ("Victor", "Adeyemi", "207R00000X", (0,)),
    ("Lucia", "Moreno", "208000000X", (2,)),
    ("Grace", "Lindqvist", "363LF0000X", (1, 2)),
)

#: name, line1, line2, zip
LOCATIONS: tuple[tuple[str, str, str, str], ...] = (
    ("Scioto Valley Main Campus", "250 E Broad St", "Suite 400", "43215"),
    ("Scioto Valley Clintonville", "3340 N High St", "", "43202"),
    ("Scioto Valley Pediatrics", "1180 Kenny Rd", "Building B", "43212"),
)


def phone(rng: random.Random, area_code: str = AREA_CODE) -> str:
    return f"{area_code}-555-01{rng.randint(0, 99):02d}"


def make_practice(seed: int) -> Practice:
    rng = random.Random(f"facade-carecloud-sandbox:{seed}:practice")
    city, state, zip_code = PRACTICE_CITY
    locations: list[Record] = []
    location_id = 300 + rng.randint(0, 20)
    for name, line1, line2, zip_code_of_location in LOCATIONS:
        location_id += rng.randint(1, 9)
        locations.append(
            {
                "id": location_id,
                "name": name,
                "place_of_service_code": "11",
                "time_zone": PRACTICE_TIME_ZONE,
                "address": {
                    "line1": line1,
                    "line2": line2,
                    "city": city,
                    "state": state,
                    "zip_code": zip_code_of_location,
                    "country_name": "United States",
                },
                "phones": [{"phone_number": phone(rng), "phone_type": "Main"}],
            }
        )
    taxonomy = load_table("nucc_taxonomy")
    providers: list[Record] = []
    provider_id = 4100 + rng.randint(0, 50)
    for first, last, code, location_indexes in PROVIDERS:
        provider_id += rng.randint(1, 9)
        row = taxonomy.row(code)
        providers.append(
            {
                "id": provider_id,
                "npi": make_npi(rng, "1"),
                "first_name": first,
                "last_name": last,
                "name": f"{first} {last}, {row['credentials']}",
                "credentials": row["credentials"],
                "email": f"{first.lower()}.{last.lower()}@sciotovalley.example.org",
                "phone_number": phone(rng),
                "specialty": {"name": row["specialty"], "taxonomy": code},
                "location_ids": [locations[i]["id"] for i in location_indexes],
            }
        )
    business_entity: Record = {
        "id": new_guid(rng),
        "name": PRACTICE_NAME,
        "npi": make_npi(rng, "1"),
        "time_zone": PRACTICE_TIME_ZONE,
        "address": {
            "line1": LOCATIONS[0][1],
            "line2": LOCATIONS[0][2],
            "city": city,
            "state": state,
            "zip_code": zip_code,
        },
        "phone_number": locations[0]["phones"][0]["phone_number"],
    }
    user: Record = {
        "id": 70_000 + rng.randint(100, 999),
        "username": "facade.api",
        "first_name": "Facade",
        "last_name": "Integration",
    }
    return Practice(
        business_entity=business_entity, user=user, providers=providers, locations=locations
    )
