"""The practice resources a Patient or Group export's lines point at (Practitioner,
Organization, Location, PractitionerRole), so a receiver can resolve every reference.

Each part notes the references its written lines make (kept in its checkpoint, so a resumed
part neither loses nor invents one); the export's last part writes each referenced resource
once, from the practice lists facade already holds. It never lists patient data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from facade.core.mapping import Record, Resource, ResourceMapping

if TYPE_CHECKING:
    from facade.bulk.planner import Consumer
    from facade.core.registry import MappingRegistry

#: The listing mode of the part that writes the referenced resources (always the last part).
REFERENCES = "references"


def reference_types(registry: MappingRegistry) -> tuple[str, ...]:
    """The practice's reference data (types read from small practice lists): what Patient and
    Group exports carry when their lines reference it."""
    return tuple(
        sorted(
            m.resource_type for m in registry if isinstance(m, ResourceMapping) and m.lookup_data
        )
    )


def collect_references(value: Any, types: frozenset[str], found: set[str]) -> None:
    """Adds to `found` every `Type/id` reference to one of `types` anywhere in `value`."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                target_type, sep, target_id = item.partition("/")
                if sep and target_id and target_type in types and "/" not in target_id:
                    found.add(item)
            else:
                collect_references(item, types, found)
    elif isinstance(value, list):
        for item in value:
            collect_references(item, types, found)


def local_reference(resource: Resource) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


class ReferenceWriter(Protocol):
    """The export writer, as the references part uses it."""

    references: set[str]

    def consume(self, consumer: Consumer, resources: list[Record]) -> list[Record]:
        """Writes the resources that pass the export's checks and returns them."""
        ...


async def write_referenced(
    wanted: Iterable[str],
    consumers: list[Consumer],
    load: Callable[[ResourceMapping], Awaitable[list[Resource]]],
    writer: ReferenceWriter,
) -> None:
    """Writes each resource in `wanted` (`Type/id`) once, and what those reference in turn
    (a PractitionerRole's Location, a Location's Organization). A reference no practice list
    holds (a doctor since removed at the vendor) is left unresolved rather than guessed."""
    by_type = {c.resource_type: c for c in consumers}
    loaded: dict[str, dict[str, Resource]] = {}
    done: set[str] = set()
    pending = sorted(set(wanted))
    while pending:
        reference = pending.pop(0)
        if reference in done:
            continue
        done.add(reference)
        resource_type, _, resource_id = reference.partition("/")
        consumer = by_type.get(resource_type)
        if consumer is None or consumer.mapping is None:
            continue
        if resource_type not in loaded:
            loaded[resource_type] = {str(r["id"]): r for r in await load(consumer.mapping)}
        resource = loaded[resource_type].get(resource_id)
        if resource is None:
            continue
        before = set(writer.references)
        writer.consume(consumer, [resource])
        pending.extend(sorted(writer.references - before - done))
