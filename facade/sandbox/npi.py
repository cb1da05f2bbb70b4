"""National Provider Identifiers for the sandboxes' synthetic providers: valid check digits
(Luhn over the card-issuer prefix 80840), drawn from the generator's own random source."""

from __future__ import annotations

import random


def luhn_check_digit(payload: str) -> int:
    """The Luhn digit that makes `payload + digit` pass the check."""
    total = 0
    for position, char in enumerate(reversed(payload)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10


def npi_check_digit(first_nine: str) -> int:
    """NPI check digit: Luhn over the card-issuer prefix 80840 plus the first nine digits."""
    return luhn_check_digit("80840" + first_nine)


def is_valid_npi(npi: str) -> bool:
    return len(npi) == 10 and npi.isdigit() and npi_check_digit(npi[:9]) == int(npi[9])


def make_npi(rng: random.Random, first_digit: str) -> str:
    first_nine = first_digit + "".join(str(rng.randint(0, 9)) for _ in range(8))
    return first_nine + str(npi_check_digit(first_nine))
