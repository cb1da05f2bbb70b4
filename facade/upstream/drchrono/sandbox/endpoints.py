"""What each /api list endpoint does: filters, hidden rows, ordering, verbose-only fields.

This table is the single source of truth the app reads; its content comes from the seed
(shared/seeds/drchrono-v4-api-reference.txt). Handlers must never special-case an endpoint
with an `if`; they read it from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from facade.upstream.drchrono.sandbox.dataset import ENDPOINTS, Record
from facade.upstream.drchrono.sandbox.filters import (
    Filter,
    Lookup,
    first_of,
    ids_in,
    in_date_range,
    integer,
    integer_any_of,
    joined,
    on_date,
    own,
    own_or_joined,
    text_contains,
    text_equals,
    updated_since,
)
from facade.upstream.drchrono.sandbox.state import SandboxLimits

SortKey = tuple[Any, ...]


def id_key(value: Any) -> tuple[int, int, str]:
    """Ids are usually numeric but not always (appointments); numbers sort first, numerically."""
    text = str(value)
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def by_id(record: Record) -> SortKey:
    return id_key(record.get("id"))


def by_scheduled_time(record: Record) -> SortKey:
    return (str(record.get("scheduled_time") or ""), *id_key(record.get("id")))


@dataclass(frozen=True)
class HiddenUnless:
    """Rows `hidden` matches are left out of lists unless `param` is passed as true."""

    param: str
    hidden: Callable[[Record], bool]
    #: "If present": any value but false/0 shows them (show_archived); else it must be "true".
    present_is_enough: bool = True


@dataclass(frozen=True)
class EndpointSpec:
    filters: tuple[Filter, ...] = ()
    hidden_unless: tuple[HiddenUnless, ...] = ()
    #: A list request must carry one of these (appointments, clinical_notes).
    requires_one_of: tuple[str, ...] = ()
    order_by: Callable[[Record], SortKey] = by_id
    #: Fields stripped unless `verbose=true`; `("a", "b")` means key `b` of each item of list `a`.
    verbose_only: tuple[str | tuple[str, str], ...] = ()
    #: Fields shown only when a parameter is true, e.g. patients' date_of_death with show_inactive.
    fields_unless: tuple[tuple[str, str], ...] = ()
    #: (default, max) page size before `verbose=true` lowers both to its own cap.
    page_sizes: Callable[[SandboxLimits], tuple[int, int]] = lambda limits: (
        limits.page_size_max,
        limits.page_size_max,
    )

    def page_size_bounds(self, limits: SandboxLimits, verbose: bool) -> tuple[int, int]:
        default, maximum = self.page_sizes(limits)
        if verbose:
            default = min(default, limits.verbose_page_size_max)
            maximum = min(maximum, limits.verbose_page_size_max)
        return default, maximum


def _archived(field_name: str = "archived") -> HiddenUnless:
    return HiddenUnless("show_archived", lambda record: record.get(field_name) is True)


def _patient_has_appointment_at(record: Record, lookup: Lookup, offices: set[int]) -> bool:
    appointments = lookup.having("appointments", "patient", record.get("id"))
    return bool(ids_in(a.get("office") for a in appointments) & offices)


_DOCTOR = integer("doctor", own("doctor"))
_PATIENT = integer("patient", own("patient"))
_SINCE = updated_since("since", own("updated_at"))
_APPOINTMENT_DATE = joined("appointment", "appointments", "scheduled_time")

#: Per endpoint, from the seed's "Filtering parameters" and "Keys requiring verbose=true".
ENDPOINT_SPECS: dict[str, EndpointSpec] = {
    "patients": EndpointSpec(
        filters=(
            on_date("date_of_birth", own("date_of_birth")),
            _DOCTOR,
            text_equals("email", own("email"), ignore_case=True),
            text_equals("ethnicity", own("ethnicity")),
            text_contains("first_name", own("first_name")),
            text_equals("gender", own("gender")),
            text_contains("last_name", own("last_name")),
            integer_any_of("offices", _patient_has_appointment_at),
            text_equals("preferred_language", own("preferred_language")),
            text_equals("race", own("race")),
            _SINCE,
        ),
        hidden_unless=(
            HiddenUnless(
                "show_inactive",
                lambda record: record.get("patient_status") in ("I", "D"),
                present_is_enough=False,
            ),
        ),
        verbose_only=(
            "auto_accident_insurance",
            "custom_demographics",
            "patient_flags",
            "patient_flags_attached",
            "primary_insurance",
            "referring_doctor",
            "secondary_insurance",
            "tertiary_insurance",
            "workers_comp_insurance",
        ),
        fields_unless=(("date_of_death", "show_inactive"),),
    ),
    "doctors": EndpointSpec(),
    "offices": EndpointSpec(hidden_unless=(_archived(),), verbose_only=("online_timeslots",)),
    "users": EndpointSpec(),
    "custom_demographics": EndpointSpec(filters=(_DOCTOR,), hidden_unless=(_archived(),)),
    "appointments": EndpointSpec(
        filters=(
            on_date("date", own("scheduled_time")),
            in_date_range("date_range", own("scheduled_time")),
            _DOCTOR,
            integer("office", own("office")),
            _PATIENT,
            _SINCE,
            text_equals("status", own("status")),
        ),
        hidden_unless=(_archived("deleted_flag"),),
        requires_one_of=("since", "date", "date_range"),
        order_by=by_scheduled_time,
        verbose_only=(
            "clinical_note",
            "custom_fields",
            "custom_vitals",
            "extended_updated_at",
            "reminders",
            "status_transitions",
            "vitals",
        ),
    ),
    "problems": EndpointSpec(filters=(_PATIENT,)),
    "allergies": EndpointSpec(filters=(_PATIENT,), verbose_only=("description",)),
    "medications": EndpointSpec(filters=(_PATIENT,)),
    "procedures": EndpointSpec(
        filters=(
            integer("appointment", own("appointment")),
            _DOCTOR,
            _PATIENT,
            on_date("service_date", own("service_date")),
        )
    ),
    "lab_orders": EndpointSpec(
        filters=(_DOCTOR, updated_since("since", first_of("created_at", "timestamp")))
    ),
    # "Retrieve summary of lab orders": the one lab endpoint with a patient filter.
    "lab_orders_summary": EndpointSpec(filters=(_DOCTOR, _PATIENT, _SINCE)),
    "lab_tests": EndpointSpec(filters=(integer("order", own("lab_order")),)),
    "lab_results": EndpointSpec(
        filters=(
            integer("doctor", own_or_joined("doctor", "lab_order", "lab_orders")),
            integer("order", own("lab_order")),
        )
    ),
    "patient_vaccine_records": EndpointSpec(
        filters=(
            integer("doctor", first_of("doctor", "ordering_doctor")),
            _PATIENT,
            text_equals("cvx_code", own("cvx_code")),
            _SINCE,
        )
    ),
    "clinical_notes": EndpointSpec(
        filters=(
            on_date("date", _APPOINTMENT_DATE),
            in_date_range("date_range", _APPOINTMENT_DATE),
            integer("office", own_or_joined("office", "appointment", "appointments")),
            _PATIENT,
            updated_since("since", own_or_joined("updated_at", "appointment", "appointments")),
        ),
        hidden_unless=(_archived(),),
        requires_one_of=("since", "date", "date_range"),
        verbose_only=(("clinical_note_sections", "values"),),
        # "This endpoint returns 5 objects per page, and the maximum page size is 20."
        page_sizes=lambda limits: (
            limits.clinical_notes_page_size_default,
            limits.clinical_notes_page_size_max,
        ),
    ),
    "documents": EndpointSpec(filters=(_DOCTOR, _PATIENT, _SINCE)),
    "care_plans": EndpointSpec(
        filters=(
            integer("doctor", own_or_joined("doctor", "appointment", "appointments")),
            _PATIENT,
            integer("plan_type", own("plan_type")),
        )
    ),
    "implantable_devices": EndpointSpec(
        filters=(integer("doctor", own_or_joined("doctor", "procedure", "procedures")), _PATIENT)
    ),
    "patient_risk_assessments": EndpointSpec(filters=(_DOCTOR, _PATIENT)),
    "patient_physical_exams": EndpointSpec(filters=(_DOCTOR, _PATIENT)),
    "patient_interventions": EndpointSpec(filters=(_DOCTOR, _PATIENT)),
}

assert set(ENDPOINT_SPECS) == set(ENDPOINTS), "every served endpoint needs a declaration"
