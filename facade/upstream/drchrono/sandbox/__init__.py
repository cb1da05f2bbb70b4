"""An embedded look-alike of the DrChrono v4 API (OAuth, /api endpoints, paging, limits, faults).

It exists so that facade runs and is tested end to end without a vendor account. It must
stay faithful to the vendor's contract (shared/seeds/drchrono-v4-api-reference.txt) and never
grow behaviour the real API does not have.
"""

from facade.upstream.drchrono.sandbox.dataset import ENDPOINTS, SandboxDataset

__all__ = ["ENDPOINTS", "SandboxDataset"]
