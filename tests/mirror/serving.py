"""Turning the mirror on under a test runtime: backfilled from its sandbox, answering
through the FHIR service (what `facade serve --mirror` does, without the scheduler: a test
runs the sync's passes itself)."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.fernet import Fernet

from facade.bulk.exports import build_exports
from facade.mirror import MirrorStore
from facade.mirror.serve import MirrorClient
from facade.mirror.sync import MirrorSync, SyncShare, plan_sync
from facade.runtime import Runtime
from facade.vendors import vendor

CONNECTION = "practice"


@dataclass
class Mirrored:
    store: MirrorStore
    sync: MirrorSync
    client: MirrorClient


async def mirror_on(runtime: Runtime, *, backfill: bool = True) -> Mirrored:
    """The runtime's service and Bulk exports answer through the mirror (backfilled unless
    told not to); start the exports' worker after this."""
    service = runtime.service
    clock = service.clock
    ctx = await service.context()
    store = MirrorStore(runtime.database, Fernet.generate_key(), clock)
    listings = plan_sync(service.registry, ctx, runtime.client.wire)
    sync = MirrorSync(
        store,
        runtime.client,
        ctx,
        listings,
        connection=CONNECTION,
        clock=clock,
        share=SyncShare(runtime.client.budget, clock, 1.0),
    )
    if backfill:
        assert (await sync.backfill()).finished
    client = MirrorClient(
        runtime.client, store, CONNECTION, lambda: listings, clock, timezone=lambda: ctx.timezone
    )
    service.client = client
    service.mirror = client
    runtime.exports = build_exports(
        runtime.settings,
        runtime.database,
        service,
        client,
        clock,
        vendor(runtime.settings.vendor).groups,
    )
    return Mirrored(store, sync, client)
