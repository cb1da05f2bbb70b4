"""An embedded look-alike of CareCloud's API: session login with TOTP, page-numbered lists with
a Link header, encounters carrying the chart, writes that stick, throttling, faults, webhooks,
and a practice that keeps changing on the sandbox's clock if asked (changes.py).

It exists so that facade runs and is tested end to end without a vendor account. It follows
the wire contract in the lead's plan (shared/seeds/carecloud-api-overview.txt and research
§2.5) and must never grow behaviour that contract does not describe.
"""

from facade.upstream.carecloud.sandbox.changes import ChangeGenerator
from facade.upstream.carecloud.sandbox.dataset import CareCloudDataset
from facade.upstream.carecloud.sandbox.generator import generate

__all__ = ["CareCloudDataset", "ChangeGenerator", "generate"]
