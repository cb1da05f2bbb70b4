"""The mirror as a running deployment has it (FACADE_MIRROR=on): its store, its connection,
the sync built once over the live vendor client, and the scheduler that runs it.

The sync needs the practice context (the service's, loaded once and shared with live reads),
so it is built on first use, not at start-up: a vendor that is down when facade starts only
delays the mirror. Nothing here serves requests; serving reads the store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from anyio import to_thread

from facade.clock import Clock
from facade.core.mapping import MappingContext, ResourceMapping
from facade.core.registry import MappingRegistry
from facade.core.service import FhirService
from facade.core.vendor import VendorClient
from facade.errors import FacadeError
from facade.mirror.progress import Progress, read_progress
from facade.mirror.scheduler import (
    Cadence,
    MirrorScheduler,
    SchedulerStatus,
    long_pass_calls_per_window,
)
from facade.mirror.serve import MirrorClient
from facade.mirror.store import MirrorStore, Watermark
from facade.mirror.sync import MirrorSync, SyncListing, SyncShare, plan_sync
from facade.settings import Settings
from facade.store.database import Database

#: How long a serving process waits to ask for the practice context again.
SERVING_RETRY_SECONDS = 60.0


@dataclass(frozen=True)
class MirrorStatus:
    """What `facade mirror status` shows, and what the running scheduler adds to it."""

    progress: Progress
    scheduler: SchedulerStatus


class Mirror:
    """One connection's mirror: `store`, `connection`, `listings()`, `sync()`, `scheduler`."""

    def __init__(
        self,
        store: MirrorStore,
        connection: str,
        client: VendorClient,
        registry: MappingRegistry,
        load_context: Callable[[], Awaitable[MappingContext]],
        share: SyncShare,
        clock: Clock,
        cadence: Cadence | None = None,
    ):
        self.store = store
        self.connection = connection
        self.client = client
        self.registry = registry
        self.load_context = load_context
        self.share = share
        self.clock = clock
        self._sync: MirrorSync | None = None
        self._building = asyncio.Lock()
        #: What serving needs when another process syncs: the listings and the timezone.
        self._serving: tuple[list[SyncListing], ZoneInfo | None] | None = None
        self._preparing: asyncio.Task[None] | None = None
        self.scheduler = MirrorScheduler(
            sync=self.sync,
            store=store,
            connection=connection,
            share=share,
            clock=clock,
            cadence=cadence or Cadence(),
        )

    @property
    def sync_if_built(self) -> MirrorSync | None:
        """The sync once `sync()` has built it (its listings and practice context), else None:
        for code that must not wait for the vendor (a request deciding whether the mirror
        can answer)."""
        return self._sync

    def serving_client(self) -> MirrorClient:
        """The client the FHIR service answers through: the mirror where it holds a
        listing whole (once the sync knows its listings), the vendor otherwise."""

        def listings() -> list[SyncListing] | None:
            if self._sync is not None:
                return self._sync.listings
            return self._serving[0] if self._serving is not None else None

        def timezone() -> ZoneInfo | None:
            if self._sync is not None:
                return self._sync.ctx.timezone
            return self._serving[1] if self._serving is not None else None

        return MirrorClient(
            self.client, self.store, self.connection, listings, self.clock, timezone
        )

    async def listings(self) -> list[SyncListing]:
        """What the mirror keeps: the sync's listings (the Bulk export's practice-wide plan)."""
        return (await self.sync()).listings

    async def sync(self) -> MirrorSync:
        """The sync, built once (the practice context is loaded for it, through the
        service's cache). Every listing gets a watermark at once, so status shows the whole
        plan and its estimate from the first pass on."""
        async with self._building:
            if self._sync is None:
                ctx = await self.load_context()
                listings = plan_sync(self.registry, ctx, self.client.wire)
                await to_thread.run_sync(self._register, listings, self.clock.now())
                self._sync = MirrorSync(
                    self.store,
                    self.client,
                    ctx,
                    listings,
                    connection=self.connection,
                    clock=self.clock,
                    share=self.share,
                )
            return self._sync

    def _register(self, listings: list[SyncListing], now: datetime) -> None:
        """A watermark for each listing not yet known, with the cursor its backfill starts
        from (dated now: a later start only makes its synced-through time conservative)."""
        for listing in listings:
            if self.store.watermark(self.connection, listing.endpoint, listing.key) is not None:
                continue
            cursor: dict[str, object] = {"started": now.isoformat(), "next": None}
            if listing.patient_param:
                cursor["after"] = None
            self.store.save_watermark(
                Watermark(self.connection, listing.endpoint, listing.key, backfill_cursor=cursor)
            )

    async def status(self) -> MirrorStatus:
        """The store's progress and the scheduler's state, read off the event loop."""
        progress = await to_thread.run_sync(self.progress)
        return MirrorStatus(progress=progress, scheduler=self.scheduler.status())

    def progress(self) -> Progress:
        """Per endpoint records, synced-through time, calls spent, backfill estimate; hints
        waiting (blocking: reads the store)."""
        return mirror_progress(
            self.store,
            self.connection,
            self.registry,
            self.share.allowed,
            self.share.window_seconds,
        )

    def serve_only(self) -> None:
        """Serve from the store while another process (a `facade worker`) syncs it: learn
        the listings the sync keeps (from the practice context, retried while the vendor
        cannot answer) and sync nothing here."""
        if self._preparing is None:
            self._preparing = asyncio.create_task(self._prepare_serving())

    async def _prepare_serving(self) -> None:
        while self._serving is None:
            try:
                ctx = await self.load_context()
            except FacadeError:
                await self.clock.sleep(SERVING_RETRY_SECONDS)
                continue
            self._serving = (plan_sync(self.registry, ctx, self.client.wire), ctx.timezone)

    async def aclose(self) -> None:
        if self._preparing is not None:
            self._preparing.cancel()
            with suppress(asyncio.CancelledError):
                await self._preparing
        await self.scheduler.stop()


def mirror_progress(
    store: MirrorStore,
    connection: str,
    registry: MappingRegistry,
    calls_allowed: int,
    window_seconds: float,
) -> Progress:
    """The mirror's progress at a sync share of `calls_allowed` per quota window."""
    patient = registry.get("Patient")
    assert isinstance(patient, ResourceMapping)
    return read_progress(
        store,
        connection,
        patient_endpoint=patient.endpoint,
        calls_per_window=long_pass_calls_per_window(calls_allowed),
        window_seconds=window_seconds,
    )


def build_mirror(
    settings: Settings,
    database: Database,
    key: bytes,
    client: VendorClient,
    service: FhirService,
    clock: Clock,
) -> Mirror | None:
    """The deployment's mirror, or None when FACADE_MIRROR is off. `key` is the deployment
    key (the webhook receiver's store uses the same); the connection is the vendor's name."""
    if not settings.mirror:
        return None
    return Mirror(
        store=MirrorStore(database, key, clock),
        connection=settings.vendor,
        client=client,
        registry=service.registry,
        load_context=service.context,
        share=SyncShare(client.budget, clock, settings.mirror_share),
        clock=clock,
        cadence=Cadence(
            poll_seconds=settings.mirror_poll_seconds,
            reconcile_seconds=settings.mirror_reconcile_seconds,
            hint_seconds=settings.mirror_hint_seconds,
        ),
    )
