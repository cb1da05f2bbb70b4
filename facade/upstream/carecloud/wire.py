"""CareCloud's wire rules: what the generic code asks for, in CareCloud's query parameters.

One record shape (no detail switch); fixed page sizes (patients 50; appointments, providers,
locations 100) that cannot be asked for, `page` moving through them with a Link header; no
"changed since" filter on any list; a list without `status` holds active and inactive alike.
"""

from __future__ import annotations

from facade.core.vendor import Wire

WIRE = Wire(
    detail={},
    page_size_param="",
    largest_page=50,
    largest_detail_page=50,
    paging_params=frozenset({"page"}),
    since_param="",
    record_params=frozenset(),
    everything={},
)

#: Words of CareCloud's API that only its own packages may spell (tests/test_vendor_neutral.py).
VOCABULARY = (
    "business_entity",
    "session_token",
    "mfa_code",
    "/authenticate",
    "chart_number",
)
