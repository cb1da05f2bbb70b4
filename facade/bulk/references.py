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
#: Practice types that come with the exported resources they point at, though no line
#: references them: a Practitioner's roles (where and for whom the practitioner works).
COMES_WITH = {"PractitionerRole": "practitioner"}


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

    async def practice_list(consumer: Consumer) -> dict[str, Resource]:
        if consumer.resource_type not in loaded and consumer.mapping is not None:
            found = await load(consumer.mapping)
            loaded[consumer.resource_type] = {str(r["id"]): r for r in found}
        return loaded.get(consumer.resource_type, {})

    done: set[str] = set()
    pending = sorted(set(wanted))
    written: list[Resource] = []
    while pending:
        for reference in pending:
            if reference in done:
                continue
            done.add(reference)
            resource_type, _, resource_id = reference.partition("/")
            consumer = by_type.get(resource_type)
            resource = (await practice_list(consumer)).get(resource_id) if consumer else None
            if consumer is not None and resource is not None:
                written += writer.consume(consumer, [resource])
        pending = sorted(writer.references - done)
        if not pending:
            pending = await _coming_with(by_type, practice_list, written, done)


async def _coming_with(
    by_type: dict[str, Consumer],
    practice_list: Callable[[Consumer], Awaitable[dict[str, Resource]]],
    written: list[Resource],
    done: set[str],
) -> list[str]:
    """The COMES_WITH resources that point at a written one and were not considered yet."""
    exported = {local_reference(r) for r in written}
    found: list[str] = []
    for companion_type, path in COMES_WITH.items():
        consumer = by_type.get(companion_type)
        if consumer is None:
            continue
        for resource in (await practice_list(consumer)).values():
            target = resource.get(path)
            pointed = target.get("reference") if isinstance(target, dict) else None
            if pointed in exported and local_reference(resource) not in done:
                found.append(local_reference(resource))
    return sorted(found)
