"""The mirror: an opt-in local copy of the vendor's records, kept fresh by the vendor's
change signals, so that answers cost no vendor calls and only changes do.

This package is the store (records sealed at rest, watermarks, webhook deliveries and the
refresh hints they bring), the webhook receiver, and the sync (backfill, poll, reconcile),
the only part that calls the vendor, within its share of the quota; it holds PHI only sealed.
"""

from facade.mirror.cipher import MirrorRecordUnreadable, RecordCipher
from facade.mirror.store import (
    EndpointStatus,
    Hint,
    MirrorStore,
    StoredRecord,
    VendorRecord,
    Watermark,
)

__all__ = [
    "EndpointStatus",
    "Hint",
    "MirrorRecordUnreadable",
    "MirrorStore",
    "RecordCipher",
    "StoredRecord",
    "VendorRecord",
    "Watermark",
]
