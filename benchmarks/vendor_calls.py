"""(c) Upstream calls spent per FHIR search, the planner's rule for each clause, and the floor.

Every search runs through facade over the sandbox with the vendor page cache cleared first
(what the search costs on its own, all pages followed) and then once more (what a repeat
within the cache TTL costs). Calls are read from X-Upstream-Calls and the sandbox's request
log; rules from the plan. The once-an-hour practice-context cost is shown apart.
"""

from __future__ import annotations

import argparse
import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from benchmarks.sandwich import Sandwich, sandwich
from facade.auth.grant import INTERNAL
from facade.fhir.query import parse_query
from facade.upstream.budget import metered
from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from facade.upstream.drchrono.wire import WIRE
from facade.vendors import DEFAULT_VENDOR, vendor_names

#: Vendor query values longer than this are shortened in the listing (paging cursors).
SHOWN_VALUE_CHARS = 24


@dataclass(frozen=True)
class Search:
    label: str
    resource_type: str
    params: list[tuple[str, str]]
    #: The fewest vendor calls that can answer it completely, and why.
    minimum: int | None
    why: str

    @property
    def query(self) -> str:
        return f"{self.resource_type}?{urlencode(self.params)}"


@dataclass(frozen=True)
class SearchCost:
    search: Search
    fhir_pages: int
    entries: int
    #: Sum of X-Upstream-Calls over all FHIR pages, cache cleared before the first.
    calls: int
    vendor_requests: list[str]
    rules: list[str]
    #: Calls when the same first page is asked again within the cache TTL.
    repeat_calls: int


@dataclass(frozen=True)
class CallsReport:
    context_calls: list[str]
    costs: list[SearchCost]

    def calls_for(self, label: str) -> int:
        return next(c.calls for c in self.costs if c.search.label == label)


def representative_searches(vendor_name: str, state: Any) -> list[Search]:
    """The same kinds of search for every vendor, each with the floor that vendor's API allows."""
    if vendor_name == "drchrono":
        return _drchrono_searches(state.dataset)
    return _carecloud_searches(state)


def _drchrono_searches(dataset: SandboxDataset) -> list[Search]:
    patients = dataset.endpoint("patients")
    everyone = len(patients)
    one = patients[min(3, everyone - 1)]
    female = next((p for p in patients if p.get("gender") == "Female"), one)
    male = next((p for p in patients if p.get("gender") == "Male"), one)
    doctor = dataset.endpoint("doctors")[0]
    office = dataset.endpoint("offices")[0]

    def pages(count: int) -> int:
        return max(1, math.ceil(count / WIRE.largest_detail_page))

    def gendered(gender: str) -> int:
        return sum(1 for p in patients if p.get("gender") == gender)

    same_birthday = sum(1 for p in patients if p["date_of_birth"] == one["date_of_birth"])
    scan = pages(everyone)
    scan_why = f"full scan of {everyone} verbose patients at {WIRE.largest_detail_page}/page"
    return [
        Search("Patient?_id=X", "Patient", [("_id", str(one["id"]))], 1, "one record by id"),
        Search(
            "Patient?identifier=chart",
            "Patient",
            [("identifier", str(one["chart_id"]))],
            scan,
            f"{scan_why}: DrChrono cannot filter by chart_id",
        ),
        Search(
            "Patient?identifier=urn:drchrono:patient|id",
            "Patient",
            [("identifier", f"urn:drchrono:patient|{one['id']}")],
            1,
            "one record by id",
        ),
        Search(
            "Patient?name=X",
            "Patient",
            [("name", str(one["last_name"]))],
            scan,
            f"{scan_why}: vendor name filters miss middle, previous and nick names",
        ),
        Search(
            "Patient?birthdate=D&name=X",
            "Patient",
            [("birthdate", str(one["date_of_birth"])), ("name", str(one["last_name"]))],
            pages(same_birthday),
            f"date_of_birth pushed down ({same_birthday} born that day)",
        ),
        Search(
            "Patient?gender=female&name=X",
            "Patient",
            [("gender", "female"), ("name", str(female["last_name"]))],
            pages(gendered("Female")),
            f"gender pushed down, then a scan of {gendered('Female')} women",
        ),
        Search(
            "Patient?family=X&gender=male",
            "Patient",
            [("family", str(male["last_name"])), ("gender", "male")],
            pages(gendered("Male")),
            f"gender pushed down, then a scan of {gendered('Male')} men",
        ),
        Search(
            "Patient?_count=50 (all pages)",
            "Patient",
            [("_count", "50")],
            scan,
            f"{scan_why} (custom demographics need verbose; {math.ceil(everyone / 250)} without)",
        ),
        Search(
            "Patient?birthdate=ge1990-01-01",
            "Patient",
            [("birthdate", "ge1990-01-01")],
            scan,
            f"{scan_why}: DrChrono filters date_of_birth by exact day only",
        ),
        Search(
            "Practitioner?name=X",
            "Practitioner",
            [("name", str(doctor["last_name"]))],
            2,
            "doctors + offices lists (doctors already cached by the context: 1)",
        ),
        Search(
            "Practitioner?identifier=NPI",
            "Practitioner",
            [("identifier", f"http://hl7.org/fhir/sid/us-npi|{doctor['npi_number']}")],
            2,
            "doctors + offices lists (doctors already cached by the context: 1)",
        ),
        Search(
            "Organization?name=X",
            "Organization",
            [("name", dataset.practice_group_name.split()[0])],
            2,
            "doctors + offices lists (doctors already cached by the context: 1)",
        ),
        Search(
            "Location?address-city=X",
            "Location",
            [("address-city", str(office["city"]))],
            1,
            "offices list",
        ),
    ]


def _carecloud_searches(state: Any) -> list[Search]:
    """CareCloud: patients 50 a page with no page-size parameter; filters by first_name,
    last_name (prefix) and date_of_birth only; providers, locations and the business entity
    are one call each; a patient's whole chart is one /encounters call."""
    from facade.upstream.carecloud.sandbox.paging import PAGE_SIZES
    from mappings.carecloud.fields import PATIENT_ID_SYSTEM

    patients = state.dataset.patients
    everyone = len(patients)
    one = patients[min(3, everyone - 1)]
    guid = str(one["id"]).lower()
    female = next((p for p in patients if p["gender_code"] == "F"), one)
    male = next((p for p in patients if p["gender_code"] == "M"), one)
    provider = state.dataset.providers[0]
    location = state.dataset.locations[0]
    per_page = PAGE_SIZES["patients"]

    def pages(count: int) -> int:
        return max(1, math.ceil(count / per_page))

    def named(last: str) -> int:
        return sum(1 for p in patients if str(p["last_name"]).lower().startswith(last.lower()))

    same_birthday = sum(1 for p in patients if p["date_of_birth"] == one["date_of_birth"])
    scan = pages(everyone)
    scan_why = f"full scan of {everyone} patients at {per_page}/page (CareCloud's fixed page)"
    practice = "providers + locations lists (a provider's location is joined in)"
    return [
        Search("Patient?_id=X", "Patient", [("_id", guid)], 1, "one record by id"),
        Search(
            "Patient?identifier=chart",
            "Patient",
            [("identifier", str(one["chart_number"]))],
            scan,
            f"{scan_why}: CareCloud cannot filter by chart number",
        ),
        Search(
            "Patient?identifier=urn:carecloud:patient|guid",
            "Patient",
            [("identifier", f"{PATIENT_ID_SYSTEM}|{guid}")],
            1,
            "one record by id",
        ),
        Search(
            "Patient?name=X",
            "Patient",
            [("name", str(one["last_name"]))],
            scan,
            f"{scan_why}: `name` matches any part of any name (middle, preferred)",
        ),
        Search(
            "Patient?birthdate=D&name=X",
            "Patient",
            [("birthdate", str(one["date_of_birth"])), ("name", str(one["last_name"]))],
            pages(same_birthday),
            f"date_of_birth pushed down ({same_birthday} born that day)",
        ),
        Search(
            "Patient?gender=female&name=X",
            "Patient",
            [("gender", "female"), ("name", str(female["last_name"]))],
            scan,
            f"{scan_why}: CareCloud has no gender filter",
        ),
        Search(
            "Patient?family=X&gender=male",
            "Patient",
            [("family", str(male["last_name"])), ("gender", "male")],
            pages(named(str(male["last_name"]))),
            f"last_name pushed down ({named(str(male['last_name']))} match the prefix)",
        ),
        Search("Patient?_count=50 (all pages)", "Patient", [("_count", "50")], scan, scan_why),
        Search(
            "Patient?birthdate=ge1990-01-01",
            "Patient",
            [("birthdate", "ge1990-01-01")],
            scan,
            f"{scan_why}: CareCloud filters date_of_birth by exact day only",
        ),
        Search(
            "Practitioner?name=X",
            "Practitioner",
            [("name", str(provider["last_name"]))],
            2,
            practice,
        ),
        Search(
            "Practitioner?identifier=NPI",
            "Practitioner",
            [("identifier", f"http://hl7.org/fhir/sid/us-npi|{provider['npi']}")],
            2,
            practice,
        ),
        Search(
            "Organization?name=X",
            "Organization",
            [("name", str(state.dataset.business_entity["name"]).split()[0])],
            1,
            "the business entity (/authorization, also read by the context)",
        ),
        Search(
            "Location?address-city=X",
            "Location",
            [("address-city", str(location["address"]["city"]))],
            1,
            "locations list",
        ),
        Search(
            "Condition?patient=X",
            "Condition",
            [("patient", guid)],
            1,
            "the patient's encounters: one /encounters call holds the whole chart",
        ),
    ]


def describe_request(path: str, query: dict[str, str]) -> str:
    shown = {
        k: (v if len(v) <= SHOWN_VALUE_CHARS else v[:SHOWN_VALUE_CHARS] + "…")
        for k, v in sorted(query.items())
    }
    return f"GET {path}" + ("?" + "&".join(f"{k}={v}" for k, v in shown.items()) if shown else "")


def logged_since(bench: Sandwich, start: int) -> list[str]:
    return [
        f"{describe_request(e.path, e.query)} → {e.status}"
        for e in bench.state.api_requests()[start:]
    ]


async def cost_of(bench: Sandwich, search: Search) -> SearchCost:
    bench.runtime.client.cache.clear()
    start = bench.api_log_size()
    url: str | None = f"/fhir/{search.query}"
    calls = pages = entries = 0
    while url is not None:
        response = await bench.fhir.get(url)
        response.raise_for_status()
        calls += int(response.headers["X-Upstream-Calls"])
        bundle = response.json()
        entries += len(bundle.get("entry", []))
        pages += 1
        url = next((x["url"] for x in bundle["link"] if x["relation"] == "next"), None)
    requests = logged_since(bench, start)
    # Same first page again, through the service itself: the plan's rules and the repeat cost.
    with metered() as meter:
        result = await bench.runtime.service.search(
            search.resource_type, parse_query(search.params), grant=INTERNAL
        )
    return SearchCost(
        search=search,
        fhir_pages=pages,
        entries=entries,
        calls=calls,
        vendor_requests=requests,
        rules=result.plan.rules or ["(no search parameters: list everything)"],
        repeat_calls=meter.count,
    )


async def measure(patients: int, vendor_name: str) -> CallsReport:
    async with sandwich(patients, vendor_name=vendor_name) as bench:
        start = bench.api_log_size()
        await bench.runtime.service.context()
        context_calls = logged_since(bench, start)
        searches = representative_searches(vendor_name, bench.state)
        costs = [await cost_of(bench, search) for search in searches]
        return CallsReport(context_calls=context_calls, costs=costs)


def run(
    patients: int, out: Callable[[str], None] = print, vendor_name: str = DEFAULT_VENDOR
) -> CallsReport:
    report = asyncio.run(measure(patients, vendor_name))
    out(f"== (c) vendor calls per FHIR search, {patients} {vendor_name} sandbox patients ==")
    out(f"practice context (once an hour, before any search): {len(report.context_calls)} calls")
    for line in report.context_calls:
        out(f"    {line}")
    out(
        "each search: vendor page cache cleared, every FHIR page followed; 'repeat' = the first"
        " page again within the cache TTL"
    )
    for cost in report.costs:
        search = cost.search
        floor = "?" if search.minimum is None else str(search.minimum)
        out("")
        out(
            f"{search.label}: {cost.calls} calls (minimum {floor}; repeat {cost.repeat_calls})"
            f" — {cost.entries} entries on {cost.fhir_pages} FHIR page(s)"
        )
        out(f"  query    {search.query}")
        for rule in cost.rules:
            out(f"  rule     {rule}")
        out(f"  minimum  {floor}: {search.why}")
        for line in cost.vendor_requests[:4]:
            out(f"  vendor   {line}")
        if len(cost.vendor_requests) > 4:
            out(f"  vendor   … {len(cost.vendor_requests) - 4} more pages of the same listing")
    out("")
    out(f"{'search':<46} {'calls':>5} {'min':>5} {'repeat':>6}")
    for cost in report.costs:
        floor = "?" if cost.search.minimum is None else str(cost.search.minimum)
        out(f"{cost.search.label:<46} {cost.calls:>5} {floor:>5} {cost.repeat_calls:>6}")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.vendor_calls")
    parser.add_argument("--patients", type=int, default=1000, help="sandbox patients (1000)")
    parser.add_argument(
        "--iterations", type=int, default=1, help="accepted for symmetry; calls are counted once"
    )
    parser.add_argument("--vendor", choices=vendor_names(), default=DEFAULT_VENDOR)
    args = parser.parse_args(argv)
    run(args.patients, vendor_name=args.vendor)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
