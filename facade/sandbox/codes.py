"""The curated code tables the sandbox generator draws from (`tables/*.json`), loaded once.

Tables are data carried in the repo, each naming its code system and its source. This module
only reads them: it never fetches codes from a network and never makes a code up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

TABLES_DIR = Path(__file__).with_name("tables")


@dataclass(frozen=True)
class CodeTable:
    """One curated table: its FHIR system URI, where its codes come from, and its rows."""

    name: str
    system: str
    source: str
    note: str
    rows: tuple[dict[str, Any], ...]

    def codes(self) -> frozenset[str]:
        return frozenset(str(row["code"]) for row in self.rows)

    def row(self, code: str) -> dict[str, Any]:
        for row in self.rows:
            if row["code"] == code:
                return row
        raise KeyError(f"{code!r} is not in table {self.name!r}")

    def where(self, **match: Any) -> tuple[dict[str, Any], ...]:
        """The rows whose fields equal every given value, in table order."""
        return tuple(
            row for row in self.rows if all(row.get(key) == value for key, value in match.items())
        )


def table_names() -> tuple[str, ...]:
    return tuple(sorted(path.stem for path in TABLES_DIR.glob("*.json")))


@cache
def load_table(name: str) -> CodeTable:
    document = json.loads((TABLES_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return CodeTable(
        name=name,
        system=document["system"],
        source=document["source"],
        note=document.get("note", ""),
        rows=tuple(document["rows"]),
    )


@cache
def names(kind: str, sex: str = "") -> tuple[str, ...]:
    """The `names` table's names of one kind ("given", "family"), of one sex if given."""
    table = load_table("names")
    rows = table.where(kind=kind, sex=sex) if sex else table.where(kind=kind)
    return tuple(row["code"] for row in rows)


@cache
def places(kind: str) -> tuple[dict[str, Any], ...]:
    """The `places` table's rows of one kind ("street", "street_suffix", "city")."""
    return load_table("places").where(kind=kind)
