"""DrChrono's wire rules: what the generic code asks for, in DrChrono's query parameters.

`verbose=true` returns the fuller records some mappings need, at most 50 a page (250
otherwise); `page_size` sets the page size and `cursor` moves through pages; a read by id
keeps the list's verbose and show_inactive flags; inactive patients and archived offices
appear only when asked for; `order=` lists a lab order's tests or results (their
`lab_order`), `patient=` a patient's lab orders.
"""

from __future__ import annotations

from facade.core.vendor import Wire

WIRE = Wire(
    detail={"verbose": "true"},
    page_size_param="page_size",
    largest_page=250,
    largest_detail_page=50,
    paging_params=frozenset({"page_size", "cursor"}),
    since_param="since",
    record_params=frozenset({"verbose", "show_inactive"}),
    everything={"patients": {"show_inactive": "true"}, "offices": {"show_archived": "true"}},
    record_filters={
        "lab_tests": {"order": "lab_order"},
        "lab_results": {"order": "lab_order"},
        "lab_orders_summary": {"patient": "patient"},
    },
)

#: Words of DrChrono's API that only its own packages may spell (tests/test_vendor_neutral.py).
VOCABULARY = (
    "verbose",
    "page_size",
    "/api/",
    "show_inactive",
    "show_archived",
    "users/current",
    "secret_token",
)
