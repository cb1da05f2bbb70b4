"""The CareCloud endpoints behind the pipeline: reads (patients, appointments, encounters,
providers, locations, eligibility, claims, C-CDA) and writes (create_appointment,
submit_claim, webhooks).

Each handler takes the state and the request and returns a response; failures are
`BadRequest`s the app turns into `{"error": ...}`. Handlers never check auth or budgets.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from facade.upstream.carecloud.sandbox.ccda import build_ccd
from facade.upstream.carecloud.sandbox.context import PRACTICE_ZONE, Record, iso
from facade.upstream.carecloud.sandbox.paging import (
    PAGE_SIZES,
    InvalidPage,
    link_header,
    page_number,
    page_of,
)
from facade.upstream.carecloud.sandbox.params import (
    BadRequest,
    date_range,
    integer,
    parse_day,
    timestamp,
)
from facade.upstream.carecloud.sandbox.state import APPOINTMENT_STATUSES, SandboxState
from facade.upstream.carecloud.sandbox.webhooks import EVENTS

Predicate = Callable[[Record], bool]


def json_response(
    body: object, status: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def not_found(what: str) -> JSONResponse:
    return json_response({"error": f"{what} not found"}, 404)


def _listing(request: Request, plural: str, records: list[Record]) -> Response:
    try:
        number = page_number(request.query_params.get("page"))
    except InvalidPage:
        raise BadRequest("Invalid page") from None
    page = page_of(records, number, PAGE_SIZES[plural])
    return json_response({plural: page.records}, headers={"Link": link_header(request.url, page)})


def _local_day(moment: str) -> date:
    return datetime.fromisoformat(moment).astimezone(PRACTICE_ZONE).date()


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        raise BadRequest("Request body must be JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object")
    return body


# -- authorization, providers, locations ------------------------------------------------------


async def authorization(state: SandboxState, request: Request, username: str) -> Response:
    user = state.users[username]
    return json_response(
        {
            "user": {
                "id": user.id,
                "username": user.username,
                "first_name": user.first_name,
                "last_name": user.last_name,
            },
            "business_entity": state.dataset.business_entity,
        }
    )


async def providers(state: SandboxState, request: Request, username: str) -> Response:
    return _listing(request, "providers", state.dataset.providers)


async def provider(state: SandboxState, request: Request, username: str) -> Response:
    raw = str(request.path_params["id"])
    found = state.dataset.provider(int(raw)) if raw.isdigit() else None
    return json_response({"provider": found}) if found else not_found("Provider")


async def locations(state: SandboxState, request: Request, username: str) -> Response:
    return _listing(request, "locations", state.dataset.locations)


async def location(state: SandboxState, request: Request, username: str) -> Response:
    raw = str(request.path_params["id"])
    found = state.dataset.location(int(raw)) if raw.isdigit() else None
    return json_response({"location": found}) if found else not_found("Location")


# -- patients ----------------------------------------------------------------------------------


def _starts_with(field: str, prefix: str) -> Predicate:
    return lambda record: str(record[field]).lower().startswith(prefix)


def _equals(field: str, wanted: object) -> Predicate:
    return lambda record: bool(record[field] == wanted)


def _patient_filters(params: dict[str, str]) -> list[Predicate]:
    predicates: list[Predicate] = []
    if params.get("provider_id"):
        provider_id = integer("provider_id", params["provider_id"])
        predicates.append(lambda p: p["primary_provider_id"] == provider_id)
    if params.get("location_id"):
        location_id = integer("location_id", params["location_id"])
        predicates.append(lambda p: p["primary_location_id"] == location_id)
    if params.get("status"):
        status = params["status"].upper()
        if status not in ("A", "I"):
            raise BadRequest("Invalid status: expected A or I")
        predicates.append(lambda p: p["status"] == status)
    for name in ("first_name", "last_name"):
        if params.get(name):
            prefix = params[name].strip().lower()
            predicates.append(_starts_with(name, prefix))
    if params.get("date_of_birth"):
        born = parse_day("date_of_birth", params["date_of_birth"]).isoformat()
        predicates.append(lambda p: p["date_of_birth"] == born)
    return predicates


async def patients(state: SandboxState, request: Request, username: str) -> Response:
    predicates = _patient_filters(dict(request.query_params))
    found = [p for p in state.dataset.patients if all(test(p) for test in predicates)]
    return _listing(request, "patients", found)


async def patient(state: SandboxState, request: Request, username: str) -> Response:
    found = state.dataset.patient(str(request.path_params["id"]))
    return json_response({"patient": found}) if found else not_found("Patient")


async def ccda(state: SandboxState, request: Request, username: str) -> Response:
    found = state.dataset.patient(str(request.path_params["id"]))
    if found is None:
        return not_found("Patient")
    xml = build_ccd(state.dataset, found, now=state.clock())
    return Response(xml, media_type="application/xml")


# -- appointments ------------------------------------------------------------------------------


async def appointments(state: SandboxState, request: Request, username: str) -> Response:
    params = dict(request.query_params)
    window = date_range(params)
    if window is None:
        today = state.now_local().date()
        window = (today, today)
    start, end = window
    predicates: list[Predicate] = [lambda a: start <= _local_day(a["start_time"]) <= end]
    if params.get("patient_id"):
        patient_id = params["patient_id"]
        predicates.append(lambda a: a["patient_id"] == patient_id)
    for name in ("provider_id", "location_id"):
        if params.get(name):
            wanted = integer(name, params[name])
            predicates.append(_equals(name, wanted))
    if params.get("status"):
        status = params["status"]
        if status not in APPOINTMENT_STATUSES:
            raise BadRequest("Invalid status")
        predicates.append(lambda a: a["status"] == status)
    found = [a for a in state.dataset.appointments if all(test(a) for test in predicates)]
    found.sort(key=lambda a: (datetime.fromisoformat(a["start_time"]), a["id"]))
    return _listing(request, "appointments", found)


async def appointment(state: SandboxState, request: Request, username: str) -> Response:
    found = state.dataset.appointment(str(request.path_params["id"]))
    return json_response({"appointment": found}) if found else not_found("Appointment")


def _overlaps(a_start: datetime, a_end: datetime, record: Record) -> bool:
    b_start = datetime.fromisoformat(record["start_time"])
    b_end = datetime.fromisoformat(record["end_time"])
    return a_start < b_end and b_start < a_end


async def create_appointment(state: SandboxState, request: Request, username: str) -> Response:
    body = (await _json_body(request)).get("appointment")
    if not isinstance(body, dict):
        raise BadRequest("appointment is required", 422)
    start = timestamp("start_time", body.get("start_time"))
    end = timestamp("end_time", body.get("end_time"))
    if end <= start:
        raise BadRequest("end_time must be after start_time", 422)
    provider_id = integer("provider_id", body.get("provider_id"), 422)
    location_id = integer("location_id", body.get("location_id"), 422)
    if state.dataset.provider(provider_id) is None:
        raise BadRequest("Unknown provider_id", 422)
    if state.dataset.location(location_id) is None:
        raise BadRequest("Unknown location_id", 422)
    reason = body.get("visit_reason_name")
    if not isinstance(reason, str) or not reason.strip():
        raise BadRequest("visit_reason_name is required", 422)
    patient_ref = body.get("patient")
    patient_id = patient_ref.get("id") if isinstance(patient_ref, dict) else None
    if not isinstance(patient_id, str) or state.dataset.patient(patient_id) is None:
        raise BadRequest("Unknown patient", 422)
    clash = any(
        a["provider_id"] == provider_id
        and a["status"] not in ("cancelled", "no_show")
        and _overlaps(start, end, a)
        for a in state.dataset.appointments
    )
    if clash:
        return json_response({"error": "Provider already has an appointment at that time"}, 409)
    now = iso(state.clock())
    record = {
        "id": state.new_guid(),
        "patient_id": patient_id,
        "provider_id": provider_id,
        "location_id": location_id,
        "visit_reason_name": reason.strip(),
        "start_time": iso(start),
        "end_time": iso(end),
        "status": "scheduled",
        "cancellation_reason": None,
        "comments": str(body.get("comments") or ""),
        "created_at": now,
        "updated_at": now,
    }
    await state.add_appointment(record)
    return json_response({"appointment": record["id"]}, 201)


# -- encounters, eligibility ---------------------------------------------------------------------


async def encounters(state: SandboxState, request: Request, username: str) -> Response:
    params = dict(request.query_params)
    patient_id = params.get("patient_id")
    if not patient_id:
        raise BadRequest("patient_id is required")
    if state.dataset.patient(patient_id) is None:
        return not_found("Patient")
    window = date_range(params, limit=None)
    found = state.dataset.encounters_of(patient_id)
    if window is not None:
        start, end = (day.isoformat() for day in window)
        found = [e for e in found if start <= e["date_of_service"] <= end]
    return json_response({"encounters": found})


async def encounter(state: SandboxState, request: Request, username: str) -> Response:
    found = state.dataset.encounter(str(request.path_params["id"]))
    return json_response({"encounter": found}) if found else not_found("Encounter")


async def eligibility(state: SandboxState, request: Request, username: str) -> Response:
    params = dict(request.query_params)
    if not params.get("patient_id"):
        raise BadRequest("patient_id is required")
    found = state.dataset.patient(params["patient_id"])
    if found is None:
        return not_found("Patient")
    service_day = (
        parse_day("service_date", params["service_date"])
        if params.get("service_date")
        else state.now_local().date()
    )
    candidates = [
        i
        for i in found["insurances"]
        if (not params.get("payer_id") or i["payer_id"] == params["payer_id"])
        and (not params.get("member_id") or i["member_id"] == params["member_id"])
    ]
    if not candidates:
        return not_found("Coverage")
    insurance = min(candidates, key=lambda i: i["priority"])
    benefits = state.dataset.benefits.get(insurance["id"], {})
    started = insurance["effective_date"] <= service_day.isoformat()
    ended = insurance["termination_date"] is not None and (
        insurance["termination_date"] < service_day.isoformat()
    )
    deductible = benefits.get("deductible", {}).get("individual", 0)
    return json_response(
        {
            "eligibility": {
                "status": "active" if started and not ended else "inactive",
                "payer_id": insurance["payer_id"],
                "member_id": insurance["member_id"],
                "plan_name": insurance["plan_name"],
                "coverage_start": insurance["effective_date"],
                "coverage_end": insurance["termination_date"],
                "copay": benefits.get("copay", {"office_visit": None}),
                "deductible": {
                    "individual": deductible,
                    "remaining": deductible - benefits.get("deductible_met", 0),
                },
                "checked_at": iso(state.clock()),
            }
        }
    )


# -- claims ----------------------------------------------------------------------------------------


def _service_lines(raw: object) -> list[Record]:
    if not isinstance(raw, list) or not raw:
        raise BadRequest("service_lines is required", 422)
    lines = []
    for line in raw:
        if not isinstance(line, dict) or not isinstance(line.get("cpt_code"), str):
            raise BadRequest("Each service line needs a cpt_code", 422)
        units = integer("units", line.get("units", 1), 422)
        charge = line.get("charge")
        if isinstance(charge, bool) or not isinstance(charge, int | float) or charge < 0:
            raise BadRequest("Invalid charge", 422)
        if units < 1:
            raise BadRequest("Invalid units", 422)
        lines.append(
            {
                "cpt_code": line["cpt_code"],
                "modifiers": list(line.get("modifiers") or []),
                "units": units,
                "charge": charge,
                "diagnosis_pointers": list(line.get("diagnosis_pointers") or [1]),
            }
        )
    return lines


async def submit_claim(state: SandboxState, request: Request, username: str) -> Response:
    body = (await _json_body(request)).get("claim")
    if not isinstance(body, dict):
        raise BadRequest("claim is required", 422)
    found = state.dataset.encounter(str(body.get("encounter_id") or ""))
    if found is None:
        raise BadRequest("Unknown encounter_id", 422)
    provider_id = integer("rendering_provider_id", body.get("rendering_provider_id"), 422)
    if state.dataset.provider(provider_id) is None:
        raise BadRequest("Unknown rendering_provider_id", 422)
    for name in ("payer_id", "member_id"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise BadRequest(f"{name} is required", 422)
    diagnoses = body.get("diagnoses")
    if not isinstance(diagnoses, list) or not diagnoses:
        raise BadRequest("diagnoses is required", 422)
    lines = _service_lines(body.get("service_lines"))
    claim = {
        "id": state.new_guid(),
        "status": "submitted",
        "control_number": state.random_digits(12),
        "submitted_at": iso(state.clock()),
        "encounter_id": found["id"],
        "patient_id": found["patient_id"],
        "rendering_provider_id": provider_id,
        "payer_id": body["payer_id"],
        "member_id": body["member_id"],
        "diagnoses": diagnoses,
        "service_lines": lines,
        "total_charge": round(sum(line["charge"] * line["units"] for line in lines), 2),
    }
    state.dataset.claims.append(claim)
    summary = {key: claim[key] for key in ("id", "status", "control_number", "submitted_at")}
    return json_response({"claim": summary}, 202)


async def claim(state: SandboxState, request: Request, username: str) -> Response:
    found = state.dataset.claim(str(request.path_params["id"]))
    return json_response({"claim": found}) if found else not_found("Claim")


# -- webhooks ----------------------------------------------------------------------------------


async def create_webhook(state: SandboxState, request: Request, username: str) -> Response:
    body = await _json_body(request)
    url, secret, events = body.get("url"), body.get("secret"), body.get("events")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise BadRequest("url must be an http(s) URL", 422)
    if not isinstance(secret, str) or not secret:
        raise BadRequest("secret is required", 422)
    if not isinstance(events, list) or not events or any(e not in EVENTS for e in events):
        raise BadRequest(f"events must be a non-empty subset of {', '.join(EVENTS)}", 422)
    subscription = state.subscribe(url, secret, [str(e) for e in events])
    return json_response({"webhook": subscription.as_json()}, 201)


async def list_webhooks(state: SandboxState, request: Request, username: str) -> Response:
    return json_response({"webhooks": [s.as_json() for s in state.subscriptions]})


async def delete_webhook(state: SandboxState, request: Request, username: str) -> Response:
    if state.unsubscribe(str(request.path_params["id"])):
        return Response(status_code=204)
    return not_found("Webhook")
