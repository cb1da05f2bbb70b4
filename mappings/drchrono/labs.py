"""One patient's lab chart from DrChrono, for Observation (lab results), DiagnosticReport,
ServiceRequest and Specimen. A helper module: it defines no MAPPING.

DrChrono's lab endpoints are linked by ids, not by patient: `/api/lab_orders`, `/api/lab_tests`
and `/api/lab_results` have no patient filter (tests and results filter by `order`). Only
`/api/lab_orders_summary` filters by `patient`. So one patient's labs cost

    1 call   lab_orders_summary?patient=X            (the patient's orders)
  + 2 calls  per order: lab_tests?order=ID, lab_results?order=ID

i.e. 1 + 2·N calls for N orders (our sandbox: 0-3 orders, so 1-7 calls). The alternative,
listing the whole practice's lab_tests and lab_results (no filter) and joining locally, costs
1 + ⌈tests/250⌉ + ⌈results/250⌉ calls, which grows with the practice (a CMP alone is 14
results per test; a 40-patient practice already needs ~4 result pages, a real practice
hundreds), so the per-order plan is the cheaper one for any practice beyond a handful of
patients, and its cost is bounded by the patient's own chart. Every call is cached per URL,
so the four resource types share them: a DiagnosticReport search right after an Observation
lab search costs no vendor call.

Reads by id re-use the same per-order URLs: a lab result id costs GET lab_results/<id> then
the order's three calls; a lab test id (report, request, specimen) GET lab_tests/<id> + three.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from facade.core.compartment import FetchContext
from facade.core.mapping import Record
from mappings.drchrono.fields import text
from mappings.valuemaps import LOINC

if TYPE_CHECKING:
    from facade.core.vendor import VendorClient

SUMMARY = "lab_orders_summary"


async def _order_parts(
    client: VendorClient, order: Record, fc: FetchContext
) -> tuple[list[Record], list[Record]]:
    order_id = str(order["id"])
    tests = await client.list_all(
        "lab_tests", {"order": order_id}, reason=fc.reason, cache_ttl=fc.cache_ttl
    )
    results = await client.list_all(
        "lab_results", {"order": order_id}, reason=fc.reason, cache_ttl=fc.cache_ttl
    )
    return tests, results


async def patient_orders(client: VendorClient, patient_id: str, fc: FetchContext) -> list[Record]:
    """The patient's lab orders, each as {"order": summary, "tests": [...], "results": [...]}."""
    orders = await client.list_all(
        SUMMARY, {"patient": patient_id}, reason=fc.reason, cache_ttl=fc.cache_ttl
    )
    joined: list[Record] = []
    for order in orders:
        tests, results = await _order_parts(client, order, fc)
        joined.append({"order": order, "tests": tests, "results": results})
    return joined


async def one_order(client: VendorClient, order_id: Any, fc: FetchContext) -> list[Record]:
    """One order joined like `patient_orders` (empty when the order does not exist)."""
    raw = text(order_id)
    if raw is None:
        return []
    order = await client.get_record(SUMMARY, raw, reason=fc.reason, cache_ttl=fc.cache_ttl)
    if order is None:
        return []
    tests, results = await _order_parts(client, order, fc)
    return [{"order": order, "tests": tests, "results": results}]


async def order_of_test(client: VendorClient, test_id: str, fc: FetchContext) -> list[Record]:
    test = await client.get_record("lab_tests", test_id, reason=fc.reason, cache_ttl=fc.cache_ttl)
    return await one_order(client, test.get("lab_order"), fc) if test else []


async def order_of_result(client: VendorClient, result_id: str, fc: FetchContext) -> list[Record]:
    result = await client.get_record(
        "lab_results", result_id, reason=fc.reason, cache_ttl=fc.cache_ttl
    )
    return await one_order(client, result.get("lab_order"), fc) if result else []


def per_test(joined: list[Record]) -> list[Record]:
    """One record per lab test: {"order", "test", "results" (of that test)}."""
    records: list[Record] = []
    for item in joined:
        for test in item["tests"]:
            results = [r for r in item["results"] if str(r.get("lab_test")) == str(test["id"])]
            records.append({"order": item["order"], "test": test, "results": results})
    return records


def per_result(joined: list[Record]) -> list[Record]:
    """One record per lab result: {"order", "test" (or {}), "result"}."""
    records: list[Record] = []
    for item in joined:
        tests = {str(t["id"]): t for t in item["tests"]}
        for result in item["results"]:
            test = tests.get(str(result.get("lab_test")), {})
            records.append({"order": item["order"], "test": test, "result": result})
    return records


async def fetch_tests(client: VendorClient, patient_id: str, fc: FetchContext) -> list[Record]:
    return per_test(await patient_orders(client, patient_id, fc))


async def read_test(client: VendorClient, test_id: str, fc: FetchContext) -> list[Record]:
    return per_test(await order_of_test(client, test_id, fc))


async def fetch_results(client: VendorClient, patient_id: str, fc: FetchContext) -> list[Record]:
    return per_result(await patient_orders(client, patient_id, fc))


async def read_result(client: VendorClient, result_id: str, fc: FetchContext) -> list[Record]:
    return per_result(await order_of_result(client, result_id, fc))


def lab_test_code(test: Record) -> dict[str, Any]:
    """The ordered test's code: LOINC when DrChrono's `code` is one, else text only."""
    code = text(test.get("code"))
    name = text(test.get("name")) or text(test.get("description"))
    concept: dict[str, Any] = {}
    if code and is_loinc(code):
        coding: dict[str, str] = {"system": LOINC, "code": code}
        if name:
            coding["display"] = name
        concept["coding"] = [coding]
    if name:
        concept["text"] = name
    return concept or {"text": "Laboratory test"}


def is_loinc(code: str) -> bool:
    number, dash, check = code.partition("-")
    return bool(dash) and number.isdigit() and len(number) <= 6 and check.isdigit()
